"""Colonoscopy forward model: sampled params are JSON-able and reproducible, poses stay in the lumen,
rendering is deterministic and looks like lit mucosa."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.render.camera import camera_rays
from simreal.render.colonoscopy import (
    ColonoscopyRenderer,
    FrameParams,
    camera_from_params,
    render_frame,
    sample_frame_params,
)
from simreal.render.config import (
    AppearanceConfig,
    ColonoscopyConfig,
    LensConfig,
    PolypViewConfig,
    PoseConfig,
    override,
)
from simreal.render.raycast import MeshScene
from simreal.render.tube import tube_mesh

R = 12.0


@pytest.fixture(scope="module")
def mesh():
    return tube_mesh(radius=R, length=150.0, segments=64, rings=30, polyps=((75.0, 90.0, 4.0),))


@pytest.fixture(scope="module")
def scene(mesh):
    return MeshScene(mesh)


def _params(mesh, seed, index, config=ColonoscopyConfig()):
    return sample_frame_params(np.random.default_rng(np.random.SeedSequence([seed, index])), mesh, config)


def test_params_are_json_and_reproducible(mesh):
    a, b, c = _params(mesh, 0, 3), _params(mesh, 0, 3), _params(mesh, 0, 4)
    plain = a.to_dict()
    assert json.loads(json.dumps(plain)) == plain
    assert FrameParams.from_dict(json.loads(json.dumps(plain))) == a
    assert a == b and a != c
    assert 100.0 <= a.fov_deg <= 140.0
    assert "light_power" not in plain["shading"]  # cancelled by auto-exposure: not a parameter


def test_bad_record_params_name_the_field(mesh):
    plain = _params(mesh, 0, 3).to_dict()
    with pytest.raises(SimrealError, match=r"shading\.gamma: expected a number"):
        FrameParams.from_dict({**plain, "shading": {**plain["shading"], "gamma": "x"}})
    with pytest.raises(SimrealError, match=r"shading\.exposure: must be > 0"):
        FrameParams.from_dict({**plain, "shading": {**plain["shading"], "exposure": 0.0}})
    with pytest.raises(SimrealError, match="unknown field 'light_power' in shading"):
        FrameParams.from_dict({**plain, "shading": {**plain["shading"], "light_power": 100.0}})
    with pytest.raises(SimrealError, match="pose: expected a rigid"):
        FrameParams.from_dict({**plain, "pose": [[2, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]})


def test_poses_stay_inside_the_lumen(mesh):
    cfg = ColonoscopyConfig(pose=PoseConfig(offset_frac=0.6, look_deg=30.0), polyp_view=PolypViewConfig(prob=0.0))
    for i in range(40):
        p = _params(mesh, 1, i, cfg)
        pose = np.asarray(p.pose)
        rot, pos = pose[:3, :3], pose[:3, 3]
        assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9) and np.linalg.det(rot) == pytest.approx(1.0)
        assert np.hypot(pos[0], pos[1]) <= 0.6 * R + 1e-9
        assert 0.08 * 150 - 1e-9 <= pos[2] <= 0.92 * 150 + 1e-9
        # Looking roughly along the lumen: within the look-around cone of +z or -z.
        assert abs(rot[2, 2]) >= np.cos(np.radians(30.0 * np.sqrt(2))) - 1e-9
        assert p.placement.view == "lumen" and p.placement.offset_mm <= 0.6 * R + 1e-9
        assert np.hypot(pos[0], pos[1]) == pytest.approx(p.placement.offset_mm)  # the record says where it is


def test_render_frame_is_deterministic_and_consistent(scene, mesh):
    p = _params(mesh, 0, 1)
    frame = render_frame(scene, p, 24)
    a = frame.arrays()
    b = render_frame(scene, json.loads(json.dumps(p.to_dict())), 24).arrays()  # from a stored record
    assert set(a) == {"image", "depth", "normals", "mask", "instance"}
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
    assert a["image"].shape == (24, 24, 3) and a["image"].dtype == np.uint8
    assert a["depth"].dtype == np.float32 and (a["depth"] >= 0).all()
    hit = a["depth"] > 0
    assert np.allclose(np.linalg.norm(a["normals"][hit], axis=-1), 1.0, atol=1e-4)
    assert (a["image"][~hit] == 0).all()
    cam = camera_from_params(p, 24)
    assert cam == frame.camera and (cam.width, cam.height) == (24, 24) and np.allclose(cam.pose_matrix(), p.pose)
    assert (cam.cx, cam.cy) == (11.5, 11.5)  # OpenCV convention: (W - 1) / 2
    assert "normals" not in render_frame(scene, p, 24, normals=False).arrays()
    record = frame.record("000001", group="tube")
    assert record.params == p.to_dict() and record.camera == cam and record.group == "tube"


def test_renderer_object_reads_like_the_pipeline(mesh):
    renderer = ColonoscopyRenderer(mesh, ColonoscopyConfig(normals=False))
    params = renderer.sample(np.random.default_rng(np.random.SeedSequence([0, 1])))
    assert params == _params(mesh, 0, 1)  # same draws as the function
    frame = renderer.render(params, size=(12, 16))
    assert frame.image.shape == (12, 16, 3) and frame.normals is None and "normals" not in frame.arrays()
    assert frame.camera.cx == 7.5 and frame.camera.cy == 5.5


def test_frames_look_like_lit_mucosa(scene, mesh):
    """Red dominates; nearer surfaces are brighter than the far lumen (light at the tip)."""
    cfg = ColonoscopyConfig(
        appearance=AppearanceConfig(noise_std=(0.0, 0.0), vignetting=(0.0, 0.0), spot_exponent=(0.5, 1.0)),
        pose=PoseConfig(look_deg=0.0, offset_frac=0.0), polyp_view=PolypViewConfig(prob=0.0),
    )
    reds, near_far = [], []
    for i in range(6):
        params = _params(mesh, 2, i, cfg)
        a = render_frame(scene, params, 48)
        img = a.image.astype(float)
        hit = a.depth > 0
        reds.append(img[hit].mean(axis=0))
        ray_z = camera_rays(camera_from_params(params, 48))[:, 2].reshape(48, 48)
        d = (a.depth / ray_z)[hit]  # distance from the tip, where the light is
        lum = img[hit].mean(axis=1)
        near_far.append(lum[d < np.quantile(d, 0.2)].mean() > lum[d > np.quantile(d, 0.8)].mean())
    r, g, b = np.mean(reds, axis=0)
    assert r > g and r > b
    assert all(near_far)


def test_exposure_sets_the_brightness(scene, mesh):
    """Auto-exposure: the 90th percentile of the diffuse level is the target, so a higher target is brighter."""
    p = _params(mesh, 0, 1, ColonoscopyConfig(appearance=AppearanceConfig(noise_std=(0.0, 0.0))))
    means = []
    for exposure in (0.2, 0.4, 0.8):
        q = dataclasses.replace(p, shading=dataclasses.replace(p.shading, exposure=exposure))
        means.append(render_frame(scene, q, 32).image.mean())
    assert means[0] < means[1] < means[2]


@pytest.mark.parametrize("make, message", [
    (lambda: LensConfig(fov_deg=(140.0, 100.0)), "lens.fov_deg: low 140.0 above high 100.0"),
    (lambda: LensConfig(fov_deg=(100.0, 175.0), fisheye=True), "lens.fov_deg: must be < 170"),
    (lambda: LensConfig(fisheye_k1=(-0.3, 0.0)), "lens.fisheye_k1: must be >"),
    (lambda: PoseConfig(offset_frac=1.5), "pose.offset_frac: must be < 1, got 1.5"),
    (lambda: PolypViewConfig(prob=-0.1), "polyp_view.prob: must be >= 0"),
    (lambda: PolypViewConfig(distance_mm=(0.0, 10.0)), "polyp_view.distance_mm: must be > 0"),
    (lambda: AppearanceConfig(exposure=(0.0, 0.5)), "appearance.exposure: must be > 0"),
    (lambda: AppearanceConfig(base_rgb=((0.9, 0.3, 0.1), (0.8, 0.5, 0.3))), "appearance.base_rgb: low"),
    (lambda: AppearanceConfig(gamma=(float("nan"), 2.0)), "appearance.gamma: expected finite numbers"),
    (lambda: ColonoscopyConfig(field_stop="square"), "field_stop: must be one of none, circle, octagon"),
])
def test_bad_config_names_the_field(make, message):
    with pytest.raises(SimrealError) as exc:
        make()
    assert message in str(exc.value)


def test_override_changes_nested_fields_and_validates():
    cfg = override(ColonoscopyConfig(), {"lens": {"fisheye": True}, "appearance": {"gamma": [2.2, 2.2]}})
    assert cfg.lens.fisheye and cfg.appearance.gamma == (2.2, 2.2) and cfg.lens.fov_deg == (100.0, 140.0)
    assert ColonoscopyConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(SimrealError, match="unknown field 'gama' in appearance"):
        override(cfg, {"appearance": {"gama": [2.2, 2.2]}})


def test_polyp_views_show_the_polyp():
    """With polyp_view.prob=1 the camera looks at a polyp from 8-40 mm, inside the lumen, and sees it."""
    from simreal.anatomy.colon import make_colon
    from simreal.render.colonoscopy import PlacementIndex, polyp_targets

    colon = make_colon(1, length_mm=140.0, n_polyps=3)
    sc, tg = MeshScene(colon), polyp_targets(colon)
    assert [k for k, _, _ in tg] == [1, 2, 3]
    cfg = ColonoscopyConfig(polyp_view=PolypViewConfig(prob=1.0))
    index = PlacementIndex(colon)
    seen = []
    for i in range(20):
        rng = np.random.default_rng(np.random.SeedSequence([5, i]))
        p = sample_frame_params(rng, colon, cfg, index=index)
        assert p.placement.view == "polyp" and 8.0 <= p.placement.polyp_distance_mm <= 40.0
        centre = dict((k, c) for k, c, _ in tg)[p.placement.polyp_instance]
        assert np.linalg.norm(np.asarray(p.pose)[:3, 3] - centre) == pytest.approx(p.placement.polyp_distance_mm)
        seen.append(bool(render_frame(sc, p, 32, normals=False).mask.any()))
    assert np.mean(seen) >= 0.8
    # Without polyps (or with prob 0) every frame is a lumen view.
    p0 = _params(tube_mesh(radius=R, length=150.0, segments=32, rings=10, polyps=()), 0, 0, cfg)
    assert p0.placement.view == "lumen"


def test_field_stop_shape():
    from simreal.render.colonoscopy import field_stop_mask

    oct_ = field_stop_mask(32, 32, "octagon")
    assert not oct_[0, 0] and oct_[16, 16] and oct_[16, 0] and 0.8 < oct_.mean() < 0.95
    assert field_stop_mask(32, 32, "circle").mean() == pytest.approx(np.pi / 4, abs=0.03)
    assert field_stop_mask(32, 32, "none").all()
    with pytest.raises(SimrealError):
        ColonoscopyConfig(field_stop="square")


@pytest.mark.parametrize("stop", ["octagon", "circle"])
def test_field_stop_blanks_image_and_labels_on_the_same_pixels(scene, mesh, stop):
    """Outside the stop: black image AND depth 0, normals 0, mask 0, instance 0; inside: as without a stop."""
    from simreal.render.colonoscopy import field_stop_mask

    inside = field_stop_mask(32, 32, stop)
    # Polyp views far off-centre, so the unstopped render has polyp labels in the border to remove.
    cfg = ColonoscopyConfig(field_stop=stop, polyp_view=PolypViewConfig(prob=1.0, offcentre=0.99))
    border_polyp = False
    for i in range(4):
        p = _params(mesh, 0, i, cfg)
        a = render_frame(scene, p, 32).arrays()
        b = render_frame(scene, dataclasses.replace(p, field_stop="none"), 32).arrays()
        assert set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape for k in a)
        # The stop is what blackens these pixels: the unstopped frame sees lit surface there.
        assert (b["image"][~inside] > 0).any() and (b["depth"][~inside] > 0).any()
        for k in ("image", "depth", "normals", "mask", "instance"):
            assert (a[k][~inside] == 0).all(), k
            assert a[k][inside].tobytes() == b[k][inside].tobytes(), k
        border_polyp |= bool(b["mask"][~inside].any() and b["instance"][~inside].any())
    assert border_polyp
    # The cast's arrays were not written to: an unstopped render of the same params still has border depth.
    assert (render_frame(scene, dataclasses.replace(p, field_stop="none"), 32).depth[~inside] > 0).any()


def test_no_field_stop_leaves_labels_untouched(scene, mesh):
    """Default "none": labels are the raw cast (depth > 0 and unit normals up to the image corners)."""
    a = render_frame(scene, _params(mesh, 0, 2, ColonoscopyConfig(polyp_view=PolypViewConfig(prob=0.0))), 32)
    assert a.depth[0, 0] > 0 and np.linalg.norm(a.normals[0, 0]) == pytest.approx(1.0, abs=1e-4)
