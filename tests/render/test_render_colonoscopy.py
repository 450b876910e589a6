"""Colonoscopy forward model: sampled params are JSON-able and reproducible, poses stay in the lumen,
rendering is deterministic and looks like lit mucosa."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.render.camera import camera_rays
from simreal.render.colonoscopy import ColonoscopyConfig, camera_from_params, render_frame, sample_frame_params
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
    assert json.loads(json.dumps(a)) == a
    assert a == b and a != c
    assert 100.0 <= a["fov_deg"] <= 140.0


def test_poses_stay_inside_the_lumen(mesh):
    cfg = ColonoscopyConfig(offset_frac=0.6, look_deg=30.0, polyp_view_prob=0.0)
    for i in range(40):
        p = _params(mesh, 1, i, cfg)
        pose = np.asarray(p["pose"])
        rot, pos = pose[:3, :3], pose[:3, 3]
        assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9) and np.linalg.det(rot) == pytest.approx(1.0)
        assert np.hypot(pos[0], pos[1]) <= 0.6 * R + 1e-9
        assert 0.08 * 150 - 1e-9 <= pos[2] <= 0.92 * 150 + 1e-9
        # Looking roughly along the lumen: within the look-around cone of +z or -z.
        assert abs(rot[2, 2]) >= np.cos(np.radians(30.0 * np.sqrt(2))) - 1e-9
        assert p["offset_mm"] <= 0.6 * R + 1e-9


def test_render_frame_is_deterministic_and_consistent(scene, mesh):
    p = _params(mesh, 0, 1)
    a = render_frame(scene, p, 24)
    b = render_frame(scene, json.loads(json.dumps(p)), 24)
    assert set(a) == {"image", "depth", "normals", "mask", "instance"}
    for k in a:
        assert a[k].tobytes() == b[k].tobytes()
    assert a["image"].shape == (24, 24, 3) and a["image"].dtype == np.uint8
    assert a["depth"].dtype == np.float32 and (a["depth"] >= 0).all()
    hit = a["depth"] > 0
    assert np.allclose(np.linalg.norm(a["normals"][hit], axis=-1), 1.0, atol=1e-4)
    assert (a["image"][~hit] == 0).all()
    cam = camera_from_params(p, 24)
    assert (cam.width, cam.height) == (24, 24) and np.allclose(cam.pose_matrix(), p["pose"])
    assert "normals" not in render_frame(scene, p, 24, normals=False)


def test_frames_look_like_lit_mucosa(scene, mesh):
    """Red dominates; nearer surfaces are brighter than the far lumen (light at the tip)."""
    cfg = ColonoscopyConfig(
        noise_std=(0.0, 0.0), vignetting=(0.0, 0.0), look_deg=0.0, offset_frac=0.0, spot_exponent=(0.5, 1.0),
        polyp_view_prob=0.0,
    )
    reds, near_far = [], []
    for i in range(6):
        params = _params(mesh, 2, i, cfg)
        a = render_frame(scene, params, 48)
        img = a["image"].astype(float)
        hit = a["depth"] > 0
        reds.append(img[hit].mean(axis=0))
        ray_z = camera_rays(camera_from_params(params, 48))[:, 2].reshape(48, 48)
        d = (a["depth"] / ray_z)[hit]  # distance from the tip, where the light is
        lum = img[hit].mean(axis=1)
        near_far.append(lum[d < np.quantile(d, 0.2)].mean() > lum[d > np.quantile(d, 0.8)].mean())
    r, g, b = np.mean(reds, axis=0)
    assert r > g and r > b
    assert all(near_far)


def test_bad_config_raises():
    with pytest.raises(SimrealError):
        ColonoscopyConfig(fov_deg=(140.0, 100.0))
    with pytest.raises(SimrealError):
        ColonoscopyConfig(offset_frac=1.5)


def test_polyp_views_show_the_polyp():
    """With polyp_view_prob=1 the camera looks at a polyp from 8-40 mm, inside the lumen, and sees it."""
    from scipy.spatial import cKDTree

    from simreal.anatomy.colon import make_colon
    from simreal.render.colonoscopy import polyp_targets

    colon = make_colon(1, length_mm=140.0, n_polyps=3)
    sc, kd, vn, tg = MeshScene(colon), cKDTree(colon.vertices), colon.vertex_normals(), polyp_targets(colon)
    assert [k for k, _, _ in tg] == [1, 2, 3]
    cfg = ColonoscopyConfig(polyp_view_prob=1.0)
    seen = []
    for i in range(20):
        rng = np.random.default_rng(np.random.SeedSequence([5, i]))
        p = sample_frame_params(rng, colon, cfg, kdtree=kd, vertex_normals=vn, targets=tg)
        assert p["view"] == "polyp" and 8.0 <= p["polyp_distance_mm"] <= 40.0
        centre = dict((k, c) for k, c, _ in tg)[p["polyp_instance"]]
        assert np.linalg.norm(np.asarray(p["pose"])[:3, 3] - centre) <= 40.0 + 1e-6
        seen.append(bool(render_frame(sc, p, 32, normals=False)["mask"].any()))
    assert np.mean(seen) >= 0.8
    # Without polyps (or with prob 0) every frame is a lumen view.
    p0 = _params(tube_mesh(radius=R, length=150.0, segments=32, rings=10, polyps=()), 0, 0, cfg)
    assert p0["view"] == "lumen"


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
    cfg = ColonoscopyConfig(field_stop=stop, polyp_view_prob=1.0, polyp_offcentre=0.99)
    border_polyp = False
    for i in range(4):
        p = _params(mesh, 0, i, cfg)
        a = render_frame(scene, p, 32)
        b = render_frame(scene, {**p, "field_stop": "none"}, 32)
        assert set(a) == set(b) and all(a[k].dtype == b[k].dtype and a[k].shape == b[k].shape for k in a)
        # The stop is what blackens these pixels: the unstopped frame sees lit surface there.
        assert (b["image"][~inside] > 0).any() and (b["depth"][~inside] > 0).any()
        for k in ("image", "depth", "normals", "mask", "instance"):
            assert (a[k][~inside] == 0).all(), k
            assert a[k][inside].tobytes() == b[k][inside].tobytes(), k
        border_polyp |= bool(b["mask"][~inside].any() and b["instance"][~inside].any())
    assert border_polyp
    # The cast's arrays were not written to: an unstopped render of the same params still has border depth.
    assert (render_frame(scene, {**p, "field_stop": "none"}, 32)["depth"][~inside] > 0).any()


def test_no_field_stop_leaves_labels_untouched(scene, mesh):
    """Default "none": labels are the raw cast (depth > 0 and unit normals up to the image corners)."""
    a = render_frame(scene, _params(mesh, 0, 2, ColonoscopyConfig(polyp_view_prob=0.0)), 32)
    assert a["depth"][0, 0] > 0 and np.linalg.norm(a["normals"][0, 0]) == pytest.approx(1.0, abs=1e-4)
