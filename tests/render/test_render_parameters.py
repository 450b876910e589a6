"""Every drawn parameter does something: change one, and the rendered frame changes.

Two levels. (1) For a fixed frame with a polyp in view, every leaf of the drawn :class:`FrameParams` that
the renderer reads (pose, field of view, lens model and distortion, field stop, each shading field and
each colour channel, the noise seed) is perturbed in turn; for a realistic-look frame, every field of its
:class:`RealismParams` too (and the shading fields again), and those change the image only, never the
labels. (2) Every field of the :class:`ColonoscopyConfig` tree is perturbed in turn and a few frames drawn
with the same seeds must come out different, which covers the placement draws (offsets, look angles,
polyp distances ...) that reach the renderer only through the pose. Both lists are checked against the
dataclasses, so a new parameter without a test here fails.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simreal.configs import to_plain
from simreal.render.colonoscopy import FrameParams, PlacementIndex, render_frame, sample_frame_params
from simreal.render.config import ColonoscopyConfig, override
from simreal.render.look import RealismParams
from simreal.render.raycast import MeshScene
from simreal.render.shading import ShadingParams
from simreal.render.tube import tube_mesh

SIZE = 24


@pytest.fixture(scope="module")
def mesh():
    return tube_mesh(radius=12.0, length=150.0, segments=64, rings=30, polyps=((75.0, 90.0, 5.0),))


@pytest.fixture(scope="module")
def scene(mesh):
    return MeshScene(mesh)


def _frame_bytes(scene, params, normals=True) -> bytes:
    frame = render_frame(scene, params, SIZE, normals=normals)
    return b"".join(a.tobytes() for _, a in sorted(frame.arrays().items())) + str(sorted(frame.arrays())).encode()


@pytest.fixture(scope="module")
def polyp_frame(mesh, scene) -> FrameParams:
    """A fisheye polyp close-up with the polyp well inside the image, noise on, no saturation everywhere."""
    cfg = override(ColonoscopyConfig(), {"lens": {"fisheye": True}, "polyp_view": {"prob": 1.0, "offcentre": 0.2},
                                         "appearance": {"noise_std": [0.01, 0.01], "vignetting": [0.3, 0.3]}})
    index = PlacementIndex(mesh)
    for i in range(50):
        p = sample_frame_params(np.random.default_rng([11, i]), mesh, cfg, index=index)
        frame = render_frame(scene, p, SIZE)
        if frame.mask.mean() > 0.05 and (frame.mask == 0).mean() > 0.3 and (frame.image < 250).all(axis=-1).mean() > 0.5:
            return p
    raise AssertionError("no frame with a polyp in view")  # pragma: no cover


def _perturbed(value, key: str):
    """A clearly different value of the same kind."""
    if key == "noise_seed":
        return value + 1
    if key == "camera_model":
        return "pinhole" if value == "fisheye" else "fisheye"
    if key == "field_stop":
        return "circle" if value == "none" else "none"
    if key == "distortion":
        return (value[0] + 0.05,)
    if key == "fov_deg":
        return value - 15.0
    if key in ("base_rgb", "dark_rgb", "vessel_rgb", "polyp_tint"):
        raise AssertionError("colours are perturbed per channel")
    return value * 1.3 + 0.05


def test_every_rendered_param_changes_the_frame(scene, polyp_frame):
    p = polyp_frame
    reference = _frame_bytes(scene, p)
    assert render_frame(scene, p, SIZE).mask.any()
    changed: dict[str, bool] = {}
    # Camera: pose (move along the view axis and roll), field of view, model, distortion, field stop.
    pose = np.asarray(p.pose)
    moved = pose.copy()
    moved[:3, 3] += 1.0 * pose[:3, 2]
    changed["pose (translation)"] = _frame_bytes(scene, dataclasses.replace(p, pose=tuple(map(tuple, moved)))) != reference
    c, s = np.cos(0.2), np.sin(0.2)
    rolled = pose.copy()
    rolled[:3, :2] = pose[:3, :2] @ np.array([[c, -s], [s, c]])
    changed["pose (rotation)"] = _frame_bytes(scene, dataclasses.replace(p, pose=tuple(map(tuple, rolled)))) != reference
    for key in ("fov_deg", "distortion", "field_stop"):
        q = dataclasses.replace(p, **{key: _perturbed(getattr(p, key), key)})
        changed[key] = _frame_bytes(scene, q) != reference
    q = dataclasses.replace(p, camera_model="pinhole", distortion=())
    changed["camera_model"] = _frame_bytes(scene, q) != reference
    # Shading: every field, colours channel by channel.
    for f in dataclasses.fields(ShadingParams):
        value = getattr(p.shading, f.name)
        if isinstance(value, tuple):
            for ch in range(3):
                bumped = tuple(v * (0.7 if i == ch else 1.0) for i, v in enumerate(value))
                q = dataclasses.replace(p, shading=dataclasses.replace(p.shading, **{f.name: bumped}))
                changed[f"shading.{f.name}[{ch}]"] = _frame_bytes(scene, q) != reference
        else:
            bumped = _perturbed(value, f.name)
            if f.name == "vignetting":
                bumped = 0.0
            q = dataclasses.replace(p, shading=dataclasses.replace(p.shading, **{f.name: bumped}))
            changed[f"shading.{f.name}"] = _frame_bytes(scene, q) != reference
    dead = sorted(k for k, v in changed.items() if not v)
    assert not dead, f"parameters that do not change the frame: {dead}"
    # Every rendered leaf was tried: the camera fields, and all of ShadingParams.
    tried = {k.split(" ")[0].split("[")[0] for k in changed}
    # (realism: the realistic look's own test below.)
    rendered = {f.name for f in dataclasses.fields(FrameParams)} - {"placement", "anatomy_index", "shading", "realism"}
    assert tried == rendered | {f"shading.{f.name}" for f in dataclasses.fields(ShadingParams)}


REAL_SIZE = 48

#: Every effect on, at fixed strengths that show at REAL_SIZE (a close polyp view, so bubbles and spot
#: highlights are larger than a pixel; defocus reaching the polyp; a fluid pool in view).
REALISTIC_ALL_ON = {
    "look": "realistic", "polyp_view": {"prob": 1.0, "distance_mm": [9.0, 11.0], "offcentre": 0.2},
    "appearance": {"noise_std": [0.01, 0.01], "vignetting": [0.3, 0.3], "exposure": [0.4, 0.4]},
    "realism": {"mucus_coverage": [0.3, 0.3], "mucus_opacity": [0.4, 0.4], "bubble_density": [0.3, 0.3],
                "bubble_scale_mm": [4.0, 4.0], "fluid_prob": 1.0, "fluid_level_mm": [4.0, 4.0],
                "fluid_tilt_deg": 0.0, "defocus_near_mm": [20.0, 20.0], "defocus": [0.01, 0.01],
                "motion_blur": [0.01, 0.01], "chromatic_aberration": [0.003, 0.003], "wet_spots": [0.03, 0.03],
                "wet_scale_mm": [1.0, 1.0], "sheen": [0.3, 0.3], "white_balance": [[1, 0.85, 0.55], [1, 0.85, 0.55]],
                "jpeg_quality": [80, 80], "exposure_gain": [1.0, 1.0]},
}


@pytest.fixture(scope="module")
def realistic_frame(mesh, scene) -> FrameParams:
    """A realistic polyp close-up with the fluid pool and bubbles in view."""
    cfg = override(ColonoscopyConfig(), REALISTIC_ALL_ON)
    index = PlacementIndex(mesh)
    for i in range(50):
        p = sample_frame_params(np.random.default_rng([12, i]), mesh, cfg, index=index)
        frame = render_frame(scene, p, REAL_SIZE)
        if frame.mask.mean() > 0.05 and (frame.mask == 0).mean() > 0.3 and (frame.image < 250).all(axis=-1).mean() > 0.5:
            return p
    raise AssertionError("no frame with a polyp in view")  # pragma: no cover


def _realism_perturbed(value, key: str):
    if key == "pattern_seed":
        return value + 1
    if key == "jpeg_quality":
        return value - 30
    if key.endswith("_deg"):
        return value + 30.0
    if key in ("mucus_coverage", "bubble_density", "fluid_opacity", "mucus_opacity", "mottle_contrast",
               "vessel_contrast"):
        return value * 0.5
    if key == "chromatic_aberration":
        return value * 1.5 + 0.002
    if key == "black_level":
        return value + 0.05
    if key == "white_level":
        return value - 0.1
    return value * 1.3 + 0.05


def test_every_realism_param_changes_the_image_and_no_label(scene, realistic_frame):
    p = realistic_frame
    reference = render_frame(scene, p, REAL_SIZE)
    labels = {k: getattr(reference, k).tobytes() for k in ("depth", "normals", "mask", "instance")}
    changed: dict[str, bool] = {}

    def check(name: str, q: FrameParams) -> None:
        frame = render_frame(scene, q, REAL_SIZE)
        changed[name] = not np.array_equal(frame.image, reference.image)
        moved = [k for k, v in labels.items() if getattr(frame, k).tobytes() != v]
        assert not moved, f"{name} changed the labels {moved}"

    def bumped(name: str, field: str, value):
        return dataclasses.replace(p, **{name: dataclasses.replace(getattr(p, name), **{field: value})})

    for f in dataclasses.fields(RealismParams):
        value = getattr(p.realism, f.name)
        if isinstance(value, tuple):
            for ch in range(3):
                q = bumped("realism", f.name, tuple(v * (0.7 if i == ch else 1.0) for i, v in enumerate(value)))
                check(f"realism.{f.name}[{ch}]", q)
        else:
            check(f"realism.{f.name}", bumped("realism", f.name, _realism_perturbed(value, f.name)))
    # The training look's shading still acts in the realistic look (nothing drawn is dead there either).
    for f in dataclasses.fields(ShadingParams):
        value = getattr(p.shading, f.name)
        if isinstance(value, tuple):
            for ch in range(3):
                q = bumped("shading", f.name, tuple(v * (0.7 if i == ch else 1.0) for i, v in enumerate(value)))
                check(f"shading.{f.name}[{ch}]", q)
        else:
            check(f"shading.{f.name}", bumped("shading", f.name, 0.0 if f.name == "vignetting" else _perturbed(value, f.name)))
    dead = sorted(k for k, v in changed.items() if not v)
    assert not dead, f"parameters that do not change the realistic frame: {dead}"
    tried = {k.split("[")[0] for k in changed}
    assert tried == {f"realism.{f.name}" for f in dataclasses.fields(RealismParams)} | {
        f"shading.{f.name}" for f in dataclasses.fields(ShadingParams)}


#: Each config field -> (value to set, extra changes that make it matter). Perturbations are large enough
#: to move at least one of the frames; the test below checks the table covers the whole config tree.
CONFIG_CHANGES: dict[str, tuple[object, dict]] = {
    "lens.fov_deg": ([80.0, 90.0], {}),
    "lens.fisheye": (True, {}),
    "lens.fisheye_k1": ([0.1, 0.12], {"lens": {"fisheye": True}}),
    "pose.offset_frac": (0.1, {}),
    "pose.min_clearance_frac": (0.6, {}),
    "pose.look_deg": (5.0, {}),
    "pose.backward_prob": (0.0, {}),
    "pose.end_margin_frac": (0.3, {}),
    "polyp_view.prob": (1.0, {}),
    "polyp_view.distance_mm": ([15.0, 16.0], {}),
    "polyp_view.distance_diameters": (1.0, {}),
    "polyp_view.offcentre": (0.95, {}),
    "polyp_view.tilt_deg": (5.0, {}),
    "appearance.base_rgb": ([[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]], {}),
    "appearance.dark_rgb": ([[0.2, 0.2, 0.2], [0.3, 0.3, 0.3]], {}),
    "appearance.vessel_rgb": ([[0.0, 0.5, 0.0], [0.1, 0.6, 0.1]], {}),
    "appearance.vessel_strength": ([0.9, 1.0], {}),
    "appearance.polyp_tint": ([[0.5, 1.2, 1.2], [0.6, 1.3, 1.3]], {"polyp_view": {"prob": 1.0}}),
    "appearance.spot_exponent": ([6.0, 8.0], {}),
    "appearance.ambient": ([0.3, 0.4], {}),
    "appearance.specular": ([0.0, 0.0], {}),
    "appearance.shininess": ([5.0, 6.0], {}),
    "appearance.vignetting": ([0.9, 1.0], {}),
    "appearance.noise_std": ([0.05, 0.06], {}),
    "appearance.gamma": ([1.0, 1.1], {}),
    "appearance.exposure": ([0.1, 0.15], {}),
    "normals": (False, {}),
    "field_stop": ("octagon", {}),
    "look": ("realistic", {}),
}

_REAL = {"look": "realistic"}
#: Realistic-look config fields (rendered at REAL_SIZE, with REALISTIC_ALL_ON where an effect needs to
#: be on or large enough to show).
REALISM_CHANGES: dict[str, tuple[object, dict]] = {
    "realism.mottle_contrast": ([0.9, 1.0], _REAL),
    "realism.sheen": ([1.0, 1.2], _REAL),
    "realism.vessel_contrast": ([0.9, 1.0], _REAL),
    "realism.vessel_scale_mm": ([8.0, 9.0], _REAL),
    "realism.vessel_width": ([0.8, 0.9], _REAL),
    "realism.wet_strength": ([40.0, 50.0], _REAL),
    "realism.wet_shininess": ([10.0, 20.0], _REAL),
    "realism.wet_spots": ([0.2, 0.3], _REAL),
    "realism.wet_scale_mm": ([3.0, 4.0], REALISTIC_ALL_ON),
    "realism.mucus_coverage": ([0.6, 0.7], _REAL),
    "realism.mucus_opacity": ([0.9, 1.0], REALISTIC_ALL_ON),
    "realism.mucus_rgb": ([[0.0, 0.5, 0.0], [0.1, 0.6, 0.1]], REALISTIC_ALL_ON),
    "realism.mucus_scale_mm": ([30.0, 40.0], REALISTIC_ALL_ON),
    "realism.bubble_density": ([0.5, 0.6], REALISTIC_ALL_ON),
    "realism.bubble_scale_mm": ([6.0, 7.0], REALISTIC_ALL_ON),
    "realism.fluid_prob": (1.0, _REAL),
    "realism.fluid_level_mm": ([8.0, 9.0], REALISTIC_ALL_ON),
    "realism.fluid_tilt_deg": (90.0, REALISTIC_ALL_ON),
    "realism.fluid_opacity": ([0.9, 1.0], REALISTIC_ALL_ON),
    "realism.fluid_rgb": ([[0.0, 0.5, 0.0], [0.1, 0.6, 0.1]], REALISTIC_ALL_ON),
    "realism.lens_blur": ([0.02, 0.03], _REAL),
    "realism.motion_blur": ([0.05, 0.06], _REAL),
    "realism.defocus_near_mm": ([40.0, 50.0], REALISTIC_ALL_ON),
    "realism.defocus": ([0.03, 0.04], REALISTIC_ALL_ON),
    "realism.chromatic_aberration": ([0.02, 0.03], _REAL),
    "realism.exposure_gain": ([2.0, 2.5], _REAL),
    "realism.white_balance": ([[0.5, 1.0, 1.0], [0.6, 1.0, 1.0]], _REAL),
    "realism.shot_noise": ([0.2, 0.3], _REAL),
    "realism.read_noise": ([0.05, 0.06], _REAL),
    "realism.black_level": ([0.2, 0.25], _REAL),
    "realism.white_level": ([0.6, 0.7], _REAL),
    "realism.jpeg_quality": ([10, 15], _REAL),
}


def _leaves(plain: dict, prefix: str = "") -> list[str]:
    out = []
    for k, v in plain.items():
        path = f"{prefix}{k}"
        out += _leaves(v, path + ".") if isinstance(v, dict) else [path]
    return out


def _nested(path: str, value) -> dict:
    head, _, rest = path.partition(".")
    return {head: _nested(rest, value) if rest else value}


def test_every_config_field_changes_the_frames(mesh, scene):
    assert sorted({**CONFIG_CHANGES, **REALISM_CHANGES}) == sorted(_leaves(to_plain(ColonoscopyConfig())))
    index = PlacementIndex(mesh)

    def frames(cfg: ColonoscopyConfig) -> list[bytes]:
        size = REAL_SIZE if cfg.look == "realistic" else SIZE
        return [
            b"".join(a.tobytes() for _, a in sorted(render_frame(
                scene, sample_frame_params(np.random.default_rng([3, i]), mesh, cfg, index=index), size,
                normals=cfg.normals).arrays().items()))
            for i in range(6)
        ]

    dead = []
    for path, (value, extra) in {**CONFIG_CHANGES, **REALISM_CHANGES}.items():
        base = override(ColonoscopyConfig(), extra)
        changed = override(base, _nested(path, value))
        assert changed != base
        if frames(changed) == frames(base):
            dead.append(path)
    assert not dead, f"config fields that change no frame: {dead}"
