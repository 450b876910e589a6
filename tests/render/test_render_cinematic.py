"""Cinematic renderer (Mitsuba 3): the sensor casts the fast model's rays, Mitsuba's depth equals the Embree
depth labels, the medium grid lies on the CT's voxels, the tip light falls off as cos^k / r^2, renders are
deterministic, and the transfer-function and lighting presets behave.

Renders are tiny (16-24 px, 1-4 spp) on the CPU (llvm_ad_rgb)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

mi = pytest.importorskip("mitsuba")

from simreal.data.format import Camera  # noqa: E402
from simreal.data.volumes import Volume  # noqa: E402
from simreal.errors import SimrealError  # noqa: E402
from simreal.render.camera import camera_rays, make_camera, rays_to_world  # noqa: E402
from simreal.render.cinematic import CinematicConfig, CinematicRenderer, expose  # noqa: E402
from simreal.render.cinematic_scene import (  # noqa: E402
    LLVM_HINT,
    fill_outside,
    grid_to_world,
    lights_dict,
    mitsuba_depth,
    select_variant,
    sensor_dict,
)
from simreal.render.cinematic_source import phantom_source, prepare_source  # noqa: E402
from simreal.render.lighting import Lighting, LightingRanges, sample_lighting, spot_profile  # noqa: E402
from simreal.render.raycast import MeshScene, cast_camera  # noqa: E402
from simreal.render.transfer import (  # noqa: E402
    TRANSFER_PRESETS,
    TransferFunction,
    TransferJitter,
    TransferPoint,
    apply_transfer,
    diffuse_reflectance,
    sample_transfer,
    transfer_preset,
)
from simreal.render.tube import tube_mesh  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cpu_variant():
    select_variant("cpu")


@pytest.fixture(scope="module")
def phantom():
    """The CT phantom of a 60 mm procedural colon at 2 mm voxels, prepared for endoluminal views."""
    return phantom_source(3, view="endoluminal", voxel_mm=2.0, length_mm=60.0, n_polyps=2)


def _pose(angles_deg=(20.0, -30.0, 50.0), t=(5.0, -3.0, 7.0)) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", angles_deg, degrees=True).as_matrix()
    pose[:3, 3] = t
    return pose


def _off_centre_camera() -> Camera:
    cam = make_camera(20, 12, fov_deg=90.0, pose=_pose())
    return dataclasses.replace(cam, cx=cam.cx + 2.3, cy=cam.cy - 1.1)


# --- the sensor -------------------------------------------------------------------------------------------


def test_sensor_casts_the_camera_rays_through_pixel_centres():
    cam = _off_centre_camera()
    sensor = mi.load_dict(sensor_dict(cam, spp=1, jitter=False))
    u, v = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    film = mi.Point2f(((u.ravel() + 0.5) / cam.width).astype(np.float32), ((v.ravel() + 0.5) / cam.height).astype(np.float32))
    ray, _ = sensor.sample_ray(0.0, 0.5, film, mi.Point2f(0.5, 0.5))
    origins, directions = rays_to_world(camera_rays(cam), cam.pose_matrix())
    np.testing.assert_allclose(np.array(ray.d).T, directions, atol=2e-6)
    # Mitsuba starts rays on the near plane (1e-3 mm ahead): the same rays.
    assert np.abs(np.array(ray.o).T - origins).max() < 2e-3


def test_a_world_point_projects_to_the_same_pixel_in_both():
    cam = _off_centre_camera()
    pose = cam.pose_matrix()
    p_cam = np.array([0.7, -0.4, 3.0])  # camera frame, mm
    p_world = pose[:3, :3] @ p_cam + pose[:3, 3]
    u_cv = cam.fx * p_cam[0] / p_cam[2] + cam.cx  # OpenCV projection (pixel centres at integers)
    v_cv = cam.fy * p_cam[1] / p_cam[2] + cam.cy
    sensor = mi.load_dict(sensor_dict(cam))
    it = mi.Interaction3f()
    it.p = mi.Point3f(*(float(x) for x in p_world))
    ds, _ = sensor.sample_direction(it, mi.Point2f(0.5, 0.5))
    uv = np.array(ds.uv).ravel()  # Mitsuba film coordinates: pixel corners at integers
    np.testing.assert_allclose(uv - 0.5, [u_cv, v_cv], atol=1e-4)


def test_mitsuba_depth_of_the_mesh_equals_the_embree_depth_labels():
    mesh = tube_mesh(radius=10.0, length=100.0, segments=64, rings=40)
    pose = np.eye(4)
    pose[:3, :3] = _pose((5.0, 10.0, 30.0))[:3, :3]
    pose[:3, 3] = [2.0, -1.0, 20.0]
    cam = make_camera(24, 20, fov_deg=100.0, pose=pose)
    cam = dataclasses.replace(cam, cx=cam.cx + 1.5)
    geo = cast_camera(MeshScene(mesh), cam)
    depth = mitsuba_depth(mesh, cam)
    assert geo.hit.mean() > 0.9
    np.testing.assert_array_equal(depth > 0, geo.hit)
    np.testing.assert_allclose(depth, geo.depth, atol=2e-3, rtol=1e-4)


def test_the_rendered_frame_depth_is_the_mitsuba_depth_of_the_lumen_wall(phantom):
    r = CinematicRenderer(phantom, CinematicConfig(), device="cpu")
    view = r.sample_view(np.random.default_rng(0))
    cond = r.sample_condition(np.random.default_rng(1), 0)
    frame = r.render(view, cond, size=16, spp=1, seed=3)
    assert frame.depth.shape == (16, 16) and frame.depth.dtype == np.float32
    assert (frame.depth > 0).all()
    np.testing.assert_allclose(frame.depth, mitsuba_depth(phantom.lumen, frame.camera), atol=2e-3, rtol=1e-4)
    assert frame.camera.cx == 7.5 and frame.camera.model == "pinhole"


def test_the_medium_grid_lies_on_the_ct_voxels():
    a = np.arange(24, dtype=np.float32).reshape(4, 3, 2)  # (X, Y, Z)
    affine = np.array([[0.0, -2.0, 0.0, 10.0], [1.5, 0.0, 0.0, -4.0], [0.0, 0.0, 3.0, 7.0], [0, 0, 0, 1.0]])
    from simreal.render.cinematic_scene import _volume_grid

    vol = mi.load_dict({"type": "gridvolume", "grid": _volume_grid(a), "filter_type": "nearest",
                        "to_world": mi.ScalarTransform4f(grid_to_world(affine, a.shape).tolist())})
    for ijk in ((0, 0, 0), (3, 2, 1), (1, 2, 0), (2, 0, 1)):
        it = mi.Interaction3f()
        it.p = mi.Point3f(*(float(x) for x in affine[:3, :3] @ np.array(ijk, float) + affine[:3, 3]))
        assert float(np.array(vol.eval_1(it))[0]) == a[ijk]


def test_tip_spot_light_falls_off_as_cos_k_over_r_squared():
    k = 2.0
    cam = make_camera(16, 16, fov_deg=100.0, pose=np.eye(4))
    plane_z = 20.0
    plane = np.diag([200.0, 200.0, 1.0, 1.0])
    plane[2, 3] = plane_z
    scene = {
        "type": "scene",
        "integrator": {"type": "direct", "emitter_samples": 1, "bsdf_samples": 0},
        "sensor": sensor_dict(cam, spp=1, jitter=False),
        "plane": {"type": "rectangle", "to_world": mi.ScalarTransform4f(plane.tolist()),
                  "bsdf": {"type": "twosided", "bsdf": {"type": "diffuse", "reflectance": 0.5}}},
        **lights_dict(Lighting(kind="tip-spot", spot_exponent=k), cam.pose_matrix(), target_mm=plane_z),
    }
    img = np.array(mi.render(mi.load_dict(scene), spp=1), dtype=np.float64)[..., 0]
    cos = camera_rays(cam)[:, 2].reshape(16, 16).astype(np.float64)
    # Radiance of a Lambertian plane facing the light: I cos^k(theta) cos(theta) / r^2 with r = z / cos(theta).
    expected = cos**k * cos * cos**2 / plane_z**2
    ratio = img / expected
    assert ratio.std() / ratio.mean() < 0.01


def test_spot_profile_is_cos_k_at_the_texel_centres():
    prof = spot_profile(1.5, cutoff_deg=60.0, n=8)[..., 0]
    q = ((np.arange(8) + 0.5) / 8 * 2 - 1) * math.tan(math.radians(60.0))
    theta = np.arctan(np.hypot(q[None, :], q[:, None]))
    np.testing.assert_allclose(prof, np.cos(theta) ** 1.5, rtol=1e-5)


# --- rendering --------------------------------------------------------------------------------------------


def test_same_params_same_bytes_other_seed_other_noise(phantom):
    r = CinematicRenderer(phantom, CinematicConfig(), device="cpu")
    view = r.sample_view(np.random.default_rng(4))
    cond = r.sample_condition(np.random.default_rng(5), 1)
    a = r.render(view, cond, size=16, spp=2, seed=11)
    b = r.render(view, cond, size=16, spp=2, seed=11)
    c = r.render(view, cond, size=16, spp=2, seed=12)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.depth, b.depth)
    assert not np.array_equal(a.radiance, c.radiance)
    np.testing.assert_array_equal(a.depth, c.depth)  # labels do not depend on the Monte Carlo seed
    # A fresh renderer (scene loaded anew) gives the same bytes too.
    d = CinematicRenderer(phantom, CinematicConfig(), device="cpu").render(view, cond, size=16, spp=2, seed=11)
    assert np.array_equal(a.image, d.image)


def test_frames_look_like_a_lit_lumen_not_black_or_fog(phantom):
    r = CinematicRenderer(phantom, CinematicConfig(), device="cpu")
    view = r.sample_view(np.random.default_rng(1))  # down the lumen
    for k in range(2):  # both colon presets
        cond = r.sample_condition(np.random.default_rng(10 + k), k)
        f = r.render(view, cond, size=24, spp=4, seed=1)
        assert f.image.mean() > 20, "black frame"
        lum = f.image.astype(float).mean(axis=2)
        near, far = f.depth < np.percentile(f.depth, 25), f.depth > np.percentile(f.depth, 90)
        assert lum[near].mean() > 1.5 * lum[far].mean(), "no light fall-off with distance"
        corr = np.corrcoef(np.log(f.radiance.mean(axis=2) + 1e-6).ravel(), np.log(f.depth).ravel())[0, 1]
        assert corr < -0.5, "fog: brightness does not follow the distance to the wall"
        r_, g_, b_ = (f.image[..., c].astype(float).mean() for c in range(3))
        assert r_ > g_ > b_, "mucosa is red-orange"


def test_polyp_views_carry_polyp_masks_and_instances(phantom):
    from simreal.render.config import PolypViewConfig

    assert phantom.has_mask and phantom.has_instances
    r = CinematicRenderer(phantom, CinematicConfig(polyp_view=PolypViewConfig(prob=1.0)), device="cpu")
    cond = r.sample_condition(np.random.default_rng(0), 0)
    seen = 0
    for s in range(3):
        view = r.sample_view(np.random.default_rng(s))
        f = r.render(view, cond, size=16, spp=1, seed=0)
        assert view.lumen is not None and view.lumen.view == "polyp"
        assert set(np.unique(f.mask)) <= {0, 1}
        assert ((f.instance > 0) == (f.mask == 1)).all()
        geo = cast_camera(MeshScene(phantom.lumen), f.camera)
        np.testing.assert_array_equal(f.mask, geo.mask)
        seen += int(f.mask.sum() > 0)
    assert seen >= 2


def test_external_views_of_a_small_ct_with_bone_as_a_surface():
    # 40^3 voxels of 2 mm: a soft-tissue ball with a bone core (label 1), in air.
    idx = np.indices((40, 40, 40)).astype(float)
    r = np.sqrt(((idx - 19.5) ** 2).sum(axis=0)) * 2.0
    hu = np.where(r < 30, 40.0, -1000.0)
    hu[r < 12] = 700.0
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    labels = Volume(array=(r < 12).astype(np.float32), affine=affine)
    src = prepare_source(Volume(array=hu.astype(np.float32), affine=affine), view="external", name="ball",
                         labels=labels, label_id=1, label_name="bone")
    cfg = CinematicConfig(view="external", presets=("bone", "abdomen-soft"), lights=("key-fill", "environment"))
    renderer = CinematicRenderer(src, cfg, device="cpu")
    view = renderer.sample_view(np.random.default_rng(0))
    for k in range(2):
        cond = renderer.sample_condition(np.random.default_rng(k), k)
        f = renderer.render(view, cond, size=16, spp=2, seed=0)
        surface = src.surface_mesh(cond.transfer.surface_hu)
        np.testing.assert_allclose(f.depth, mitsuba_depth(surface, f.camera), atol=2e-3, rtol=1e-4)
        hit = f.depth > 0
        assert 0.05 < hit.mean() < 0.95 and f.image[hit].mean() > f.image[~hit].mean()
        # The bone preset's first surface is the bone: labelled; the soft preset's is the skin: not.
        assert (f.mask[hit] == 1).mean() > 0.9 if k == 0 else f.mask.sum() == 0
    # The orbit keeps the whole ball in view from outside it.
    centre, radius = src.body_box()
    assert np.linalg.norm(np.asarray(view.pose)[:3, 3] - centre) > radius
    # A pure volume in the grid's box (no boundary mesh) renders too; depth still follows surface_hu.
    box = dataclasses.replace(transfer_preset("abdomen-soft"), boundary="box")
    cond = dataclasses.replace(renderer.sample_condition(np.random.default_rng(0), 0), transfer=box)
    f = renderer.render(view, cond, size=16, spp=2, seed=0)
    assert f.image[f.depth > 0].mean() > f.image[f.depth == 0].mean()
    np.testing.assert_allclose(f.depth, mitsuba_depth(src.surface_mesh(box.surface_hu), f.camera), atol=2e-3, rtol=1e-4)


def test_the_library_imports_without_mitsuba():
    import subprocess
    import sys

    code = ("import sys; sys.modules['mitsuba'] = None; sys.modules['drjit'] = None\n"
            "import simreal.render.cinematic, simreal.render.cinematic_run, simreal.render.cinematic_source\n"
            "import simreal.render.transfer, simreal.render.lighting, simreal.anatomy.ct_phantom\n"
            "import simreal.cli.render_cinematic, simreal.bench.cinematic\n"
            "from simreal.render.cinematic_scene import select_variant\n"
            "from simreal.errors import SimrealError\n"
            "try:\n    select_variant('cpu')\nexcept SimrealError as e:\n    print('ERR', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "ERR the cinematic renderer needs Mitsuba 3 (pip install mitsuba)" in run.stdout


def test_expose_hits_its_target_and_handles_black():
    rad = np.linspace(0, 1, 300, dtype=np.float32).reshape(10, 10, 3)
    img = expose(rad, np.ones((10, 10), bool), exposure=0.5, gamma=1.0)
    lum = img.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])
    assert img.dtype == np.uint8 and abs(np.percentile(lum, 90) - 127.5) < 1.5
    bright = expose(rad * 7.0, np.ones((10, 10), bool), exposure=0.5, gamma=1.0)
    assert np.abs(bright.astype(int) - img.astype(int)).max() <= 1  # the light's power cancels
    # Only valid pixels set the level: a bright invalid pixel changes nothing.
    valid = np.ones((10, 10), bool)
    valid[0, 0] = False
    spiked = rad.copy()
    spiked[0, 0] = 1e6
    assert np.array_equal(expose(spiked, valid, 0.5, 1.0)[1:], expose(rad, valid, 0.5, 1.0)[1:])
    assert not expose(np.zeros((4, 4, 3), np.float32), np.ones((4, 4), bool), 0.5, 2.2).any()


def test_fill_outside_replaces_the_empty_side_and_the_shell():
    hu = np.full((9, 1, 1), 40.0, np.float32)
    hu[:3] = -1000.0
    hu[3] = -300.0  # partial volume
    hu[4] = 10.0
    hu[8] = 80.0
    out = fill_outside(hu, -500.0, shell_voxels=1.0)
    np.testing.assert_array_equal(out[:4, 0, 0], [10.0] * 4)  # from the first voxel beyond the 1-voxel shell
    np.testing.assert_array_equal(out[4:, 0, 0], hu[4:, 0, 0])
    np.testing.assert_array_equal(fill_outside(hu, -500.0, 0.0)[:3, 0, 0], [-300.0] * 3)


# --- presets ----------------------------------------------------------------------------------------------


def test_transfer_functions_interpolate_between_points_and_hold_beyond():
    tf = TransferFunction(name="t", points=(TransferPoint(-100.0, 0.0, (0.1, 0.2, 0.3)),
                                            TransferPoint(100.0, 2.0, (0.5, 0.6, 0.7))))
    d, a = apply_transfer(tf, np.array([[-500.0, -100.0, 0.0, 100.0, 900.0]]))
    np.testing.assert_allclose(d, [[0.0, 0.0, 1.0, 2.0, 2.0]])
    np.testing.assert_allclose(a[0, 2], [0.3, 0.4, 0.5], rtol=1e-6)
    assert tf.max_density == 2.0
    r = diffuse_reflectance(np.array([0.0, 0.5, 0.9, 0.99]))
    assert r[0] == 0.0 and (np.diff(r) > 0).all() and r[-1] < 1.0


def test_presets_are_valid_and_unknown_names_are_listed():
    assert {"colon-mucosa", "colon-pale", "abdomen-soft", "bone"} <= set(TRANSFER_PRESETS)
    for name, tf in TRANSFER_PRESETS.items():
        assert tf.name == name and TransferFunction.from_dict(tf.to_dict()) == tf
    with pytest.raises(SimrealError, match="unknown transfer-function preset 'skin'; known: colon-mucosa"):
        transfer_preset("skin")
    with pytest.raises(SimrealError, match="HU must increase"):
        TransferFunction(name="x", points=(TransferPoint(0.0, 1.0, (0.5,) * 3), TransferPoint(0.0, 1.0, (0.5,) * 3)))
    with pytest.raises(SimrealError, match="albedo"):
        TransferPoint(0.0, 1.0, (0.5, 0.5, 1.5))


def test_jittered_transfer_is_drawn_then_stored():
    base = transfer_preset("colon-mucosa")
    jitter = TransferJitter()
    a = sample_transfer(np.random.default_rng(7), base, jitter)
    b = sample_transfer(np.random.default_rng(7), base, jitter)
    c = sample_transfer(np.random.default_rng(8), base, jitter)
    assert a == b and a != c
    assert TransferFunction.from_dict(a.to_dict()) == a
    shift = a.points[0].hu - base.points[0].hu
    assert jitter.hu_shift[0] <= shift <= jitter.hu_shift[1]
    assert all(abs((p.hu - q.hu) - shift) < 1e-9 for p, q in zip(a.points, base.points))
    lo, hi = jitter.density_scale
    assert lo * base.density_scale <= a.density_scale <= hi * base.density_scale
    off = TransferJitter(hu_shift=(0, 0), albedo_scale=(1, 1), density_scale=(1, 1), g_shift=(0, 0),
                         translucency_scale=(1, 1), specular_scale=(1, 1), roughness_scale=(1, 1))
    assert sample_transfer(np.random.default_rng(0), base, off) == base


def test_lighting_is_drawn_within_its_ranges_and_round_trips():
    ranges = LightingRanges()
    for kind in ("tip-spot", "twin-guides", "key-fill", "environment"):
        light = sample_lighting(np.random.default_rng(3), kind, ranges)
        assert light.kind == kind and Lighting.from_dict(light.to_dict()) == light
        assert ranges.spot_exponent[0] <= light.spot_exponent <= ranges.spot_exponent[1]
        assert (light.environment > 0) == (kind in ("key-fill", "environment"))
    with pytest.raises(SimrealError, match="unknown lighting preset 'torch'"):
        sample_lighting(np.random.default_rng(0), "torch", ranges)


def test_twin_guides_sit_either_side_of_the_lens():
    from simreal.render.cinematic_scene import light_transforms

    pose = _pose()
    t = light_transforms(Lighting(kind="twin-guides", guide_offset_mm=2.0), pose, target_mm=30.0)
    left, right = t["tip0"][:3, 3], t["tip1"][:3, 3]
    np.testing.assert_allclose(np.linalg.norm(left - right), 4.0)
    np.testing.assert_allclose((left + right) / 2, pose[:3, 3], atol=1e-9)
    np.testing.assert_allclose(t["tip0"][:3, 2], pose[:3, 2], atol=1e-12)  # both along the optical axis


# --- errors -----------------------------------------------------------------------------------------------


def test_missing_llvm_is_one_clear_error(monkeypatch):
    import mitsuba

    def fail(variant):
        raise ImportError('jit_init_thread_state(): the LLVM backend is inactive because the LLVM shared library '
                          '("libLLVM.so") could not be found! Set the DRJIT_LIBLLVM_PATH environment variable to '
                          "specify its path.")

    monkeypatch.setattr(mitsuba, "variant", lambda: None)
    monkeypatch.setattr(mitsuba, "set_variant", fail)
    with pytest.raises(SimrealError) as exc:
        select_variant("cpu")
    assert str(exc.value) == LLVM_HINT and "apt-get install libllvm19" in str(exc.value)


def test_cuda_without_a_gpu_and_unknown_devices_are_refused(monkeypatch):
    import simreal.render.cinematic_scene as cs

    monkeypatch.setattr(cs, "_cuda_available", lambda: False)
    with pytest.raises(SimrealError, match="no CUDA GPU"):
        select_variant("cuda")
    assert cs.resolve_device("auto") == "cpu"
    with pytest.raises(SimrealError, match="--device must be one of"):
        select_variant("tpu")


def test_bad_volumes_are_refused_with_the_file_named(tmp_path):
    affine = np.eye(4)
    nan = np.zeros((20, 20, 20), np.float32)
    nan[3, 4, 5] = np.nan
    with pytest.raises(SimrealError, match="1 NaN/inf voxels") as exc:
        prepare_source(Volume(array=nan, affine=affine, path=tmp_path / "ct.nii.gz"), view="external", name="x")
    assert "ct.nii.gz" in str(exc.value)
    with pytest.raises(SimrealError, match="too small to render: 16x16x4 voxels"):
        prepare_source(Volume(array=np.zeros((16, 16, 4), np.float32), affine=affine), view="external", name="x")
    with pytest.raises(SimrealError, match="endoluminal views need a segmentation"):
        prepare_source(Volume(array=np.zeros((20, 20, 20), np.float32), affine=affine), view="endoluminal", name="x")


def test_non_pinhole_cameras_are_refused():
    cam = make_camera(8, 8, fov_deg=120.0, model="fisheye", distortion=(0.01,), pose=np.eye(4))
    with pytest.raises(SimrealError, match="pinhole cameras only"):
        sensor_dict(cam)
    with pytest.raises(SimrealError, match="square pixels"):
        sensor_dict(dataclasses.replace(make_camera(8, 8, fov_deg=90.0, pose=np.eye(4)), fy=3.0))


def test_prbvolpath_renders_the_same_scene(phantom):
    cfg = CinematicConfig(integrator="prbvolpath", max_depth=4)
    r = CinematicRenderer(phantom, cfg, device="cpu")
    view = r.sample_view(np.random.default_rng(1))
    f = r.render(view, r.sample_condition(np.random.default_rng(0), 0), size=16, spp=2, seed=0)
    assert f.params["integrator"] == "prbvolpath" and f.image.mean() > 20
