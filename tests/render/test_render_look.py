"""The realistic look (``ColonoscopyConfig(look="realistic")``): the same frames as the training look with
realism on top. Labels and geometry never change with the look; the training look renders the bytes it
rendered before the realistic look existed; the effects are deterministic functions of drawn params."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.render.colonoscopy import FrameParams, PlacementIndex, render_frame, sample_frame_params
from simreal.render.config import ColonoscopyConfig, RealismConfig, override
from simreal.render.look import _cast_gains, _optics, _psf, sample_realism, surface_noise
from simreal.render.raycast import MeshScene
from simreal.render.tube import tube_mesh

LABELS = ("depth", "normals", "mask", "instance")


@pytest.fixture(scope="module")
def mesh():
    return tube_mesh(radius=12.0, length=150.0, segments=64, rings=30, polyps=((75.0, 90.0, 5.0),))


@pytest.fixture(scope="module")
def scene(mesh):
    return MeshScene(mesh)


def _params(mesh, cfg, i, seed=5):
    return sample_frame_params(np.random.default_rng(np.random.SeedSequence([seed, i])), mesh, cfg)


# --- the training look is unchanged ----------------------------------------------------------------------

#: sha256 of training-look frames (every array, then the params' JSON) on an x86-64 machine (numpy 2
#: without AVX-512). First recorded at 218205e, before the realistic look existed; re-recorded when the
#: hit distance and barycentrics came to be Embree's own hit record instead of a float32 Moller-Trumbore
#: recompute (issue 12): depth moved by at most 9e-6 relative, normals by 1e-4, masks and ids not at all
#: (checked on 45 frames of the procedural colon at 256^2). The ray grid rebuilt per field of view kept
#: these digests before that. These are the bytes of visibility="embree", which renders every older
#: dataset.json again (its job names no visibility); RASTER_DIGESTS are the default's.
TRAINING_DIGESTS = {
    "default/0": "a21013503b3d46ac0179d1e5059f787a70e75a1dde3782bbfaad973b899b9679",
    "default/1": "a99d0dd2e545d683cee802be16ec900a6cef0241ce4be8b276a88dad08c4b0d5",
    "default/2": "0edfb2e2ad93037ac1f988c893714fba39a3f1c33804165bb3d87775734c9c87",
    "fisheye_octagon/0": "f9c301b1c151f39d14443dba4dd1adf672fcda3936c7e084350e34a653fa88fa",
    "fisheye_octagon/1": "815d33f1751a5ff05c4d39fb95c6a2cbeba33584c805453a8e77ce65b7ec2684",
    "fisheye_octagon/2": "4ba725362247599a59b3bcfc19340ad6841f33e0df6829377be8b9843f0c1bcd",
    "protocol/0": "05aa37a7839a25620dce5c99b2530ce7ea56b553422b4e471076d8b893aa0ec3",
    "protocol/1": "9266a79d287b12a5d684e3ca5e61cb2645816a40b863cb28b209770c2a772b12",
    "protocol/2": "2442b3a405ea6edc0b91dffff7bc2ea5fb852ca276330433453cdd21814ce480",
}

#: The same frames with visibility="raster" (the default since it was measured faster, issue 12): fisheye frames
#: are cast by Embree, so theirs are unchanged; on the pinhole ones mask, instance, the hit pixels and the image
#: are identical to Embree's, depth differs by at most 4.3e-7 relative and normals by 1.2e-6 (the rasteriser
#: intersects the same float32 rays in float64, Embree in float32).
RASTER_DIGESTS = {
    **TRAINING_DIGESTS,
    "default/0": "b54d17d7dab5556524ef1935b944973d6a2e2eabe63e75814dfad3620dde3de1",
    "default/1": "a1812e9da93d70ec77c7ef57f62805e5aa8b976673fb1e42aaa0c5af712f2ff2",
    "default/2": "cba8802c61a11d1e9151f77606d42610a7538b369464c02ffd2a03fc0e59d31e",
    "protocol/0": "2e92d7d6b21abacde3e26181ae186db8cff9ed246170d18e48d5354316340ddf",
    "protocol/1": "be9acca406707da1036f8b30c6d3a02b9ebafd3e59ffb8633cb2f894e7a70b74",
    "protocol/2": "425d8b0371e5ea7378223c233bf0b635463174dd8c8f2ddba90063b7f6358684",
}

#: sha256 of the float maths the digests depend on (float32 powers, the gamma table), on that machine.
MATHS_CANARY = "ceea86ba859d331451554eb28320ef336ff623d6acb8692a8d5ff22afcc4ffeb"


def _maths_canary() -> str:
    f32 = np.float32
    x = np.linspace(0.001, 1, 4099, dtype=f32)
    h = hashlib.sha256()
    for e in (0.7, 1.9, 137.3):
        h.update((x ** f32(e)).tobytes())
    h.update(np.floor(255.0 * np.linspace(0, 1, 65536) ** (1 / 2.2) + 0.5).tobytes())
    return h.hexdigest()


def _digest(frame) -> str:
    h = hashlib.sha256()
    for k, a in sorted(frame.arrays().items()):
        h.update(k.encode())
        h.update(a.tobytes())
    h.update(json.dumps(frame.params.to_dict(), sort_keys=True).encode())
    return h.hexdigest()


@pytest.mark.parametrize("visibility, digests", [("embree", TRAINING_DIGESTS), ("raster", RASTER_DIGESTS)])
def test_training_look_renders_the_bytes_it_rendered_before(mesh, scene, visibility, digests):
    if _maths_canary() != MATHS_CANARY:
        pytest.skip("this machine's float32 powers differ from the machine the digests were recorded on")
    configs = {
        "default": ColonoscopyConfig(),
        "fisheye_octagon": override(ColonoscopyConfig(), {"lens": {"fisheye": True}, "field_stop": "octagon",
                                                          "polyp_view": {"prob": 0.9}}),
        "protocol": override(ColonoscopyConfig(), {"normals": False, "polyp_view": {
            "prob": 0.6, "distance_mm": [5.0, 30.0], "distance_diameters": 1.6}}),
    }
    index = PlacementIndex(mesh)
    got = {}
    for name, cfg in configs.items():
        for i in range(3):
            p = sample_frame_params(np.random.default_rng(np.random.SeedSequence([5, i])), mesh, cfg, index=index)
            got[f"{name}/{i}"] = _digest(render_frame(scene, p, 24, normals=cfg.normals, visibility=visibility))
    assert got == digests


def test_training_look_writes_no_realism_fields(mesh):
    cfg = ColonoscopyConfig()
    assert "look" not in cfg.to_dict() and "realism" not in cfg.to_dict()
    assert "realism" not in _params(mesh, cfg, 0).to_dict()
    real = ColonoscopyConfig(look="realistic")
    plain = real.to_dict()
    assert plain["look"] == "realistic" and plain["realism"]["jpeg_quality"] == [50, 90]
    assert ColonoscopyConfig.from_dict(plain) == real and ColonoscopyConfig.from_dict(cfg.to_dict()) == cfg
    # Non-default realism ranges are kept even in the training look (nothing is silently dropped).
    tuned = override(cfg, {"realism": {"jpeg_quality": [40, 60]}})
    assert ColonoscopyConfig.from_dict(tuned.to_dict()) == tuned


# --- same frames, same labels ----------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [
    {}, {"lens": {"fisheye": True}, "field_stop": "octagon", "polyp_view": {"prob": 1.0}}])
def test_realistic_frames_are_pixel_aligned_with_the_training_frames(mesh, scene, extra):
    train_cfg = override(ColonoscopyConfig(), extra)
    real_cfg = override(train_cfg, {"look": "realistic"})
    for i in range(4):
        train, real = _params(mesh, train_cfg, i), _params(mesh, real_cfg, i)
        # Realism is drawn after everything else: the rest of the params are the training frame's.
        assert real.realism is not None and dataclasses.replace(real, realism=None) == train
        a, b = render_frame(scene, train, 32), render_frame(scene, real, 32)
        assert a.camera == b.camera
        for k in LABELS:
            assert np.array_equal(getattr(a, k), getattr(b, k)), k
        assert b.image.dtype == np.uint8 and b.image.shape == a.image.shape
        assert not np.array_equal(a.image, b.image)


def test_realistic_frames_are_deterministic_and_their_params_json(mesh, scene):
    cfg = ColonoscopyConfig(look="realistic", field_stop="circle")
    p = _params(mesh, cfg, 2)
    assert p == _params(mesh, cfg, 2) and p != _params(mesh, cfg, 3)
    plain = json.loads(json.dumps(p.to_dict()))
    q = FrameParams.from_dict(plain)
    assert q == p
    a, b = render_frame(scene, p, 40), render_frame(scene, q, 40)
    assert all(np.array_equal(x, y) for x, y in zip(a.arrays().values(), b.arrays().values()))


def test_realistic_surround_is_the_flat_black_level_and_labels_are_zero_there(mesh, scene):
    cfg = override(ColonoscopyConfig(), {"look": "realistic", "field_stop": "octagon",
                                         "realism": {"black_level": [0.06, 0.06], "jpeg_quality": [95, 95]}})
    frame = render_frame(scene, _params(mesh, cfg, 1), 96)
    corner = frame.image[:3, :3].astype(float)
    # Flat grey; JPEG's 4:2:0 chroma blocks reach into the image, so a channel may move a few levels.
    assert corner.mean() == pytest.approx(0.06 * 255, abs=1.0) and np.abs(corner - 0.06 * 255).max() <= 6
    assert frame.depth[:3, :3].max() == 0 and frame.mask[:3, :3].max() == 0


def test_the_sensor_noise_is_stronger_relative_to_the_signal_in_the_dark(mesh, scene):
    # Only shot noise: its variance grows with the signal, so its relative size falls with brightness.
    cfg = override(ColonoscopyConfig(), {"look": "realistic", "appearance": {"noise_std": [0.0, 0.0]}, "realism": {
        "shot_noise": [0.05, 0.05], "read_noise": [0.0, 0.0], "jpeg_quality": [100, 100], "lens_blur": [0.0, 0.0],
        "motion_blur": [0.0, 0.0], "defocus": [0.0, 0.0], "black_level": [0.0, 0.0]}})
    p = _params(mesh, cfg, 0)
    quiet = dataclasses.replace(p, realism=dataclasses.replace(p.realism, shot_noise=0.0))
    noisy, clean = (render_frame(scene, q, 64).image.astype(float) for q in (p, quiet))
    diff = np.abs(noisy - clean).mean(-1)
    level = clean.mean(-1)
    # In display (gamma) units shot noise stays visible in dark regions, unlike a constant gain would.
    dark, bright = (level > 20) & (level < 70), level > 140
    assert dark.sum() > 20 and bright.sum() > 20
    assert (diff[dark] / level[dark]).mean() > (diff[bright] / level[bright]).mean()


# --- the pieces --------------------------------------------------------------------------------------------


def test_surface_noise_depends_on_the_world_point_alone():
    pts = np.random.default_rng(0).uniform(-50, 50, (3, 4000)).astype(np.float32)
    a = surface_noise(pts, 2.0, seed=7, layer=0)
    assert a.dtype == np.float32 and a.shape == (4000,)
    assert 0.7 < a.std() < 1.3 and abs(a.mean()) < 0.15
    # Reordering the points reorders the values (nothing depends on the pixel grid).
    order = np.random.default_rng(1).permutation(4000)
    assert np.array_equal(surface_noise(pts[:, order], 2.0, 7, 0), a[order])
    # Other layers and seeds are independent fields.
    for other in (surface_noise(pts, 2.0, 7, 1), surface_noise(pts, 2.0, 8, 0)):
        assert abs(np.corrcoef(a, other)[0, 1]) < 0.1
    # Smooth at its wavelength: neighbours 0.1 mm apart agree closely, 20 mm apart not at all.
    near = surface_noise(pts + np.float32(0.1), 2.0, 7, 0)
    far = surface_noise(pts + np.float32(20.0), 2.0, 7, 0)
    assert np.corrcoef(a, near)[0, 1] > 0.9 and abs(np.corrcoef(a, far)[0, 1]) < 0.1


def test_psf_sums_to_one_and_blurs_along_the_motion():
    k = _psf(sigma=0.0, length=6.0, angle=0.0, radius=0.0)
    assert k.sum() == pytest.approx(1.0)
    rows, cols = np.nonzero(k > 1e-9)
    assert set(rows) == {k.shape[0] // 2} and cols.max() - cols.min() >= 6  # horizontal only
    disc = _psf(sigma=0.0, length=0.0, angle=0.0, radius=3.0)
    assert disc.sum() == pytest.approx(1.0) and (disc > 1e-9).sum() > 25


def test_optics_keep_a_flat_image_flat_and_blur_only_near_tissue():
    r = sample_realism(np.random.default_rng(0), RealismConfig(
        lens_blur=(0.0, 0.0), motion_blur=(0.0, 0.0), chromatic_aberration=(0.0, 0.0), defocus=(0.02, 0.02),
        defocus_near_mm=(10.0, 10.0)))
    flat = np.full((32, 32, 3), 0.4, np.float32)
    depth = np.full((32, 32), 30.0, np.float32)
    depth[:, :16] = 3.0  # the left half is near: out of focus
    assert np.allclose(_optics(flat, depth, r), 0.4, atol=1e-5)
    edge = flat.copy()
    edge[::4] = 0.8  # stripes across both halves
    out = _optics(edge, depth, r)
    assert np.allclose(out[:, 20:], edge[:, 20:], atol=1e-5)  # far: sharp
    assert np.abs(out[4:-4, 2:12] - edge[4:-4, 2:12]).max() > 0.05  # near: blurred


def test_colour_cast_keeps_the_luminance():
    g = _cast_gains((1.0, 0.8, 0.5)).astype(float)
    assert g @ (0.2126, 0.7152, 0.0722) == pytest.approx(1.0, rel=1e-6)
    assert g[0] / g[2] == pytest.approx(2.0, rel=1e-6)


def test_fixed_ranges_fix_the_drawn_values():
    cfg = RealismConfig(jpeg_quality=(70, 70), wet_strength=(3.0, 3.0), fluid_prob=0.0)
    r = sample_realism(np.random.default_rng(4), cfg)
    assert r.jpeg_quality == 70 and r.wet_strength == 3.0 and r.fluid_opacity == 0.0
    lo, hi = RealismConfig().vessel_scale_mm
    assert lo <= r.vessel_scale_mm <= hi


def test_bad_realism_values_name_the_field():
    with pytest.raises(SimrealError, match=r"realism\.jpeg_quality: must be >= 1"):
        RealismConfig(jpeg_quality=(0, 50))
    with pytest.raises(SimrealError, match=r"realism\.white_level"):
        RealismConfig(white_level=(0.3, 0.9))
    with pytest.raises(SimrealError, match=r"realism\.defocus: low 0.2 above high 0.1"):
        RealismConfig(defocus=(0.2, 0.1))
    with pytest.raises(SimrealError, match=r"look: expected one of 'training', 'realistic'"):
        override(ColonoscopyConfig(), {"look": "real"})
    with pytest.raises(SimrealError, match=r"look: must be one of training, realistic"):
        ColonoscopyConfig(look="real")  # type: ignore[arg-type]
    with pytest.raises(SimrealError, match=r"realism\.jpeg_quality: expected an integer"):
        FrameParams.from_dict({**_plain_realistic(), "realism": {**_plain_realistic()["realism"], "jpeg_quality": 0}})


def _plain_realistic() -> dict:
    m = tube_mesh(radius=12.0, length=150.0, segments=16, rings=8)
    return _params(m, ColonoscopyConfig(look="realistic"), 0).to_dict()


def test_workers_do_not_change_a_realistic_set(tmp_path):
    from simreal.render.job import RenderJob
    from simreal.render.run import render_job

    job = RenderJob(n=3, size=16, seed=2, config=ColonoscopyConfig(look="realistic", normals=False))
    one = render_job(tmp_path / "one", job, workers=1, progress=False)
    two = render_job(tmp_path / "two", job, workers=2, progress=False)
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)
    info = json.loads((one / "dataset.json").read_text())
    assert info["generator"]["job"]["config"]["look"] == "realistic"
