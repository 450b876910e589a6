"""Mitsuba 3 scenes for cinematic rendering: a CT medium, its boundary mesh, lights and a matching sensor.

Only this module (with the benchmark) imports ``mitsuba`` / ``drjit``, and only inside functions.

* :func:`select_variant` picks ``cuda_ad_rgb`` when a CUDA GPU is there and ``llvm_ad_rgb`` otherwise
  (overridable); a missing LLVM library becomes one clear :class:`~simreal.errors.SimrealError` saying
  ``apt-get install libllvm19``.
* :func:`sensor_dict` is a Mitsuba ``perspective`` sensor casting exactly the rays of
  :mod:`simreal.render.camera` for a pinhole :class:`~simreal.data.format.Camera`: same field of view,
  the OpenCV principal point (pixel centres at integer coordinates) and the OpenCV camera frame (x right,
  y down, z forward), so a world point projects to the same pixel in both renderers and the Embree depth
  of a mesh equals Mitsuba's.
* :func:`medium_grids` turns a HU volume into the medium's extinction and albedo grids through a
  :class:`~simreal.render.transfer.TransferFunction`; :func:`scene_dict` assembles the whole scene (the
  integrator, the medium inside its boundary mesh or box, the lights of a
  :class:`~simreal.render.lighting.Lighting`); :class:`ConditionScene` loads it once per rendering
  condition and renders frames from any camera (the lights follow the camera).

Frames: world = the CT's world frame in mm (RAS for NIfTI / DICOM). Mitsuba's camera looks along +z with
x left and y up, so its ``to_world`` is ``pose @ diag(-1, -1, 1, 1)`` for an OpenCV camera-to-world pose.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.lighting import SPOT_CUTOFF_DEG, Lighting, spot_profile
from simreal.render.transfer import TransferFunction, apply_transfer, diffuse_reflectance

Device = Literal["auto", "cpu", "cuda"]
DEVICES = ("auto", "cpu", "cuda")
Integrator = Literal["volpath", "prbvolpath"]
INTEGRATORS = ("volpath", "prbvolpath")

#: Mitsuba variant per device.
VARIANTS = {"cpu": "llvm_ad_rgb", "cuda": "cuda_ad_rgb"}

#: What to do when drjit cannot find the LLVM library.
LLVM_HINT = (
    "Mitsuba's CPU renderer (llvm_ad_rgb) cannot find the LLVM library: install it with "
    "`apt-get install libllvm19` (Debian's LLVM 15 crashes at the first render and LLVM 14 is rejected), "
    "or point DRJIT_LIBLLVM_PATH at a libLLVM.so"
)

#: Flips an OpenCV camera frame (x right, y down) to Mitsuba's (x left, y up); z stays forward.
CV_TO_MITSUBA = np.diag([-1.0, -1.0, 1.0, 1.0])

#: Radiant intensity of a tip spot light and radiance of the key light (arbitrary: auto-exposure).
_TIP_INTENSITY = 1000.0
_KEY_RADIANCE = 10.0


def _cuda_available() -> bool:
    try:
        import drjit as dr

        return bool(dr.has_backend(dr.JitBackend.CUDA))
    except Exception:  # noqa: BLE001 - any failure to probe means no usable GPU
        return False


def resolve_device(device: str) -> str:
    """``"cpu"`` or ``"cuda"``: ``"auto"`` means CUDA when drjit finds a GPU, else the CPU."""
    if device not in DEVICES:
        raise SimrealError(f"--device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    return device


def select_variant(device: str = "auto") -> str:
    """Import Mitsuba and set the variant for ``device`` (``auto``, ``cpu`` or ``cuda``).

    Returns:
        The variant set (``llvm_ad_rgb`` or ``cuda_ad_rgb``).

    Raises:
        SimrealError: Mitsuba is not installed; LLVM is missing (``apt-get install libllvm19``); CUDA was
            asked for and there is no GPU.
    """
    try:
        import mitsuba as mi
    except ImportError as exc:
        raise SimrealError(f"the cinematic renderer needs Mitsuba 3 (pip install mitsuba): {exc}") from None
    resolved = resolve_device(device)
    variant = VARIANTS[resolved]
    if resolved == "cuda" and not _cuda_available():
        raise SimrealError("--device cuda: drjit finds no CUDA GPU / driver here; use --device cpu")
    if mi.variant() == variant:
        return variant
    try:
        mi.set_variant(variant)
    except (ImportError, RuntimeError, AttributeError) as exc:
        text = str(exc)
        if "LLVM" in text or "libLLVM" in text:
            raise SimrealError(LLVM_HINT) from None
        raise SimrealError(f"cannot start Mitsuba variant {variant}: {text}") from None
    return variant


def _mi():
    import mitsuba as mi

    if mi.variant() is None:
        raise SimrealError("no Mitsuba variant set; call select_variant() first")
    return mi


def _transform(matrix: np.ndarray):
    mi = _mi()
    return mi.ScalarTransform4f(np.asarray(matrix, np.float64).tolist())


# --- the sensor -------------------------------------------------------------------------------------------


def check_pinhole(camera: Camera) -> None:
    """Raise unless Mitsuba's perspective sensor can reproduce ``camera`` exactly (pinhole, square pixels)."""
    if camera.model != "pinhole" or camera.distortion:
        raise SimrealError(f"the cinematic renderer supports pinhole cameras only, got {camera.model!r}")
    if abs(camera.fx - camera.fy) > 1e-6 * max(camera.fx, camera.fy):
        raise SimrealError(f"the cinematic renderer needs square pixels (fx == fy), got fx={camera.fx} fy={camera.fy}")


def mitsuba_to_world(pose: np.ndarray) -> np.ndarray:
    """Mitsuba's sensor / emitter ``to_world`` for an OpenCV camera-to-world pose (4, 4), mm."""
    return np.asarray(pose, np.float64) @ CV_TO_MITSUBA


def sensor_dict(camera: Camera, *, spp: int = 1, jitter: bool = True) -> dict[str, Any]:
    """A Mitsuba ``perspective`` sensor casting the rays of :func:`simreal.render.camera.camera_rays`.

    Mitsuba measures film positions from the top-left *corner* (pixel ``(i, j)`` covers [i, i + 1]), the
    OpenCV convention puts pixel centres at integers: Mitsuba's film coordinate is ``u + 0.5``. The field
    of view spans the full width, ``2 atan(W / (2 fx))``; a principal point away from the centre becomes
    ``principal_point_offset = 0.5 - (c + 0.5) / size`` (a fraction of the film, sign as Mitsuba's).

    Args:
        camera: pinhole intrinsics and pose (mm).
        spp: samples per pixel of the sensor's sampler.
        jitter: random sample positions within each pixel (anti-aliasing); False puts every sample at the
            pixel centre (a ``stratified`` sampler without jitter; with spp=1 exactly the OpenCV rays).

    Raises:
        SimrealError: not a pinhole camera, non-square pixels, no pose.
    """
    check_pinhole(camera)
    pose = camera.pose_matrix()
    if pose is None:
        raise SimrealError("cannot render from a camera without a pose")
    w, h = camera.width, camera.height
    fov = math.degrees(2.0 * math.atan(w / (2.0 * camera.fx)))
    sampler = {"type": "independent", "sample_count": int(spp)} if jitter else {
        "type": "stratified", "sample_count": int(spp), "jitter": False}
    return {
        "type": "perspective",
        "fov": fov,
        "fov_axis": "x",
        "principal_point_offset_x": 0.5 - (camera.cx + 0.5) / w,
        "principal_point_offset_y": 0.5 - (camera.cy + 0.5) / h,
        "near_clip": 1e-3,
        "far_clip": 1.0e6,
        "to_world": _transform(mitsuba_to_world(pose)),
        "sampler": sampler,
        "film": {"type": "hdrfilm", "width": w, "height": h, "rfilter": {"type": "box"}, "pixel_format": "rgb",
                 "sample_border": False},
    }


# --- the medium -------------------------------------------------------------------------------------------


def fill_outside(hu: np.ndarray, level: float, shell_voxels: float) -> np.ndarray:
    """HU volume with every voxel below ``level`` (the empty side of an iso boundary), and the tissue voxels
    within ``shell_voxels`` of them (the partial-volume shell), replaced by the nearest voxel beyond.

    Inside a mesh-bounded medium only the tissue side is ever sampled; filling the other side keeps the
    trilinear lookups next to the boundary at tissue values (a crisp surface, no air-tissue blur).

    Args:
        hu: (X, Y, Z) HU.
        level: the iso-level, HU.
        shell_voxels: thickness of the shell replaced too, voxels (0 = none).

    Returns:
        (X, Y, Z) float32; ``hu`` itself (a copy) when nothing lies below ``level`` or nothing above.
    """
    from scipy import ndimage

    hu = np.asarray(hu, np.float32)
    outside = hu < level
    if not outside.any() or outside.all():
        return hu.copy()
    replace = outside
    if shell_voxels > 0:
        replace = outside | (ndimage.distance_transform_edt(~outside) <= shell_voxels)
        if replace.all():
            replace = outside
    _, idx = ndimage.distance_transform_edt(replace, return_indices=True)
    return hu[tuple(idx)]


def grid_to_world(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Mitsuba ``gridvolume`` ``to_world`` for a voxel grid: the unit cube onto the grid's box.

    Mitsuba puts voxel ``i`` of ``n`` at unit coordinate ``(i + 0.5) / n``; a volume's affine puts voxel
    centres at integer indices, so the unit cube spans indices [-0.5, n - 0.5].
    """
    n = np.asarray(shape, np.float64)
    shift = np.eye(4)
    shift[:3, 3] = -0.5
    return np.asarray(affine, np.float64) @ shift @ np.diag([n[0], n[1], n[2], 1.0])


@dataclass(frozen=True, eq=False)
class MediumGrids:
    """What the medium samples: (X, Y, Z) extinction (1/mm, before ``density_scale``) and (X, Y, Z, 3)
    albedo, the HU they came from (after filling), and the grid's affine (voxel index -> world mm)."""

    density: np.ndarray
    albedo: np.ndarray
    hu: np.ndarray
    affine: np.ndarray


def medium_grids(hu: np.ndarray, affine: np.ndarray, tf: TransferFunction, *, fill_level: float | None) -> MediumGrids:
    """Extinction and albedo of a HU volume under a transfer function.

    Args:
        hu: (X, Y, Z) HU.
        affine: (4, 4) voxel index -> world mm.
        tf: the transfer function.
        fill_level: for an iso boundary, its level (HU): the empty side and the partial-volume shell are
            filled (:func:`fill_outside`); None for a box boundary.
    """
    filled = np.asarray(hu, np.float32) if fill_level is None else fill_outside(hu, fill_level, tf.shell_voxels)
    density, albedo = apply_transfer(tf, filled)
    return MediumGrids(density=density, albedo=albedo, hu=filled, affine=np.asarray(affine, np.float64))


def surface_colours(mesh: AnatomyMesh, grids: MediumGrids, tf: TransferFunction, depth_mm: float) -> np.ndarray:
    """(V, 3) float32 diffuse reflectance of the surface layer at each vertex: the medium's albedo
    ``depth_mm`` below the surface (mesh normals point out of the medium) through
    :func:`~simreal.render.transfer.diffuse_reflectance`."""
    from simreal.anatomy.lumen import sample_trilinear

    normals = mesh.vertex_normals().astype(np.float64)
    hu = sample_trilinear(grids.hu, mesh.vertices.astype(np.float64) - depth_mm * normals, grids.affine)
    _, albedo = apply_transfer(tf, hu)
    return diffuse_reflectance(albedo, tf.g)


def _volume_grid(array: np.ndarray):
    """A Mitsuba VolumeGrid from an (X, Y, Z[, C]) array (Mitsuba wants [z][y][x][c])."""
    mi = _mi()
    a = array[..., None] if array.ndim == 3 else array
    return mi.VolumeGrid(np.ascontiguousarray(np.transpose(a, (2, 1, 0, 3)), dtype=np.float32))


def medium_dict(grids: MediumGrids, tf: TransferFunction) -> dict[str, Any]:
    """The ``heterogeneous`` medium (spectrally flat extinction: STACK.md's advice against black artefacts)."""
    to_world = _transform(grid_to_world(grids.affine, grids.density.shape))
    return {
        "type": "heterogeneous",
        "has_spectral_extinction": False,
        "scale": float(tf.density_scale),
        "sigma_t": {"type": "gridvolume", "grid": _volume_grid(grids.density), "to_world": to_world,
                    "filter_type": "trilinear"},
        "albedo": {"type": "gridvolume", "grid": _volume_grid(grids.albedo), "to_world": to_world,
                   "filter_type": "trilinear"},
        "phase": {"type": "hg", "g": float(tf.g)},
    }


def boundary_bsdf(tf: TransferFunction) -> dict[str, Any]:
    """The iso boundary's surface layer: ``translucency`` passes (null) into the medium, the rest is the
    wet surface: diffuse with the per-vertex colour, ``specular`` of it glossy."""
    surface = {
        "type": "blendbsdf",
        "weight": float(tf.specular),
        "bsdf_0": {"type": "diffuse", "reflectance": {"type": "mesh_attribute", "name": "vertex_color"}},
        "bsdf_1": {"type": "roughconductor", "material": "none", "distribution": "ggx", "alpha": float(tf.roughness)},
    }
    return {"type": "blendbsdf", "weight": float(tf.translucency), "bsdf_0": surface, "bsdf_1": {"type": "null"}}


def gradient_normals(mesh: AnatomyMesh, hu: np.ndarray, affine: np.ndarray, sigma_voxels: float = 1.0) -> np.ndarray:
    """(V, 3) float32 unit shading normals from the CT's smoothed HU gradient at each vertex, pointing down
    the gradient (towards lower HU: out of the tissue, as the mesh normals).

    Marching-cubes meshes of a CT show their voxel terraces in glossy highlights; the gradient of the
    (Gaussian-smoothed) volume is smooth, as in classic volume rendering. Vertices where the gradient is
    tiny or disagrees with the mesh keep the mesh's normal.
    """
    from scipy import ndimage

    from simreal.anatomy.lumen import sample_trilinear

    smooth = ndimage.gaussian_filter(np.asarray(hu, np.float32), sigma=sigma_voxels, mode="nearest")
    inv_spacing = 1.0 / np.linalg.norm(affine[:3, :3], axis=0)
    rot = affine[:3, :3] * inv_spacing[None, :]  # world direction of each voxel axis (unit columns)
    v = mesh.vertices.astype(np.float64)
    g_vox = np.stack([sample_trilinear(np.gradient(smooth, axis=k), v, affine) * inv_spacing[k] for k in range(3)], axis=1)
    # Gradient in world coordinates: the inverse-transpose of the (orthogonal) voxel axes.
    g = g_vox @ rot.T
    n = -g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    mesh_n = mesh.vertex_normals().astype(np.float64)
    bad = (np.linalg.norm(g, axis=1) < 1e-6) | (np.einsum("ij,ij->i", n, mesh_n) < 0.3)
    n[bad] = mesh_n[bad]
    return n.astype(np.float32)


def mitsuba_mesh(name: str, mesh: AnatomyMesh, *, bsdf: dict[str, Any], interior: dict[str, Any] | None,
                 colours: np.ndarray | None = None, normals: np.ndarray | None = None):
    """A Mitsuba triangle mesh of an anatomy mesh (smooth shading normals: ``normals`` or the mesh's
    vertex normals; optional ``vertex_color``), with its BSDF and interior medium (on the side its face
    normals point away from)."""
    mi = _mi()
    props = mi.Properties()
    props["bsdf"] = mi.load_dict(bsdf)
    if interior is not None:
        props["interior"] = mi.load_dict(interior)
    v = np.ascontiguousarray(mesh.vertices, np.float32)
    f = np.ascontiguousarray(mesh.faces, np.uint32)
    out = mi.Mesh(name, len(v), len(f), has_vertex_normals=True, props=props)
    if colours is not None:
        out.add_attribute("vertex_color", 3, mi.Float(np.ascontiguousarray(colours, np.float32).ravel()))
    params = mi.traverse(out)
    params["vertex_positions"] = mi.Float(v.ravel())
    params["faces"] = mi.UInt32(f.ravel())
    shading = mesh.vertex_normals() if normals is None else normals
    params["vertex_normals"] = mi.Float(np.ascontiguousarray(shading, np.float32).ravel())
    params.update()
    return out


# --- lights -----------------------------------------------------------------------------------------------


def _look_at(origin: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) transform whose local +z points from ``origin`` to ``target`` (Mitsuba's look_at)."""
    z = target - origin
    z = z / max(float(np.linalg.norm(z)), 1e-12)
    x = np.cross(up, z)
    if np.linalg.norm(x) < 1e-9:
        x = np.cross(np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0]), z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, origin
    return m


def light_transforms(lighting: Lighting, pose: np.ndarray, *, target_mm: float) -> dict[str, np.ndarray]:
    """World transforms of a lighting preset's emitters for one camera (id -> (4, 4)).

    Args:
        lighting: the drawn lighting.
        pose: (4, 4) OpenCV camera-to-world pose, mm.
        target_mm: distance from the camera to what it looks at (the orbit radius), mm (key-fill lights).

    Returns:
        ``tip0`` (and ``tip1``) spot transforms for tip lights; ``key`` / ``fill`` rectangle transforms
        (scale included) for key-fill; nothing for the environment.
    """
    pose = np.asarray(pose, np.float64)
    m = mitsuba_to_world(pose)
    if lighting.kind == "tip-spot":
        return {"tip0": m}
    if lighting.kind == "twin-guides":
        out = {}
        for k, side in enumerate((-1.0, 1.0)):
            shift = np.eye(4)
            shift[0, 3] = side * lighting.guide_offset_mm
            out[f"tip{k}"] = m @ shift
        return out
    if lighting.kind == "key-fill":
        rot = pose[:3, :3]
        eye = pose[:3, 3]
        target = eye + rot[:, 2] * target_mm
        up = -rot[:, 1]  # camera up in the world (OpenCV y points down)
        out = {}
        for name, az, el in (("key", lighting.key_azimuth_deg, lighting.key_elevation_deg),
                             ("fill", -0.8 * lighting.key_azimuth_deg - math.copysign(30.0, lighting.key_azimuth_deg or 1.0), 5.0)):
            a, e = math.radians(az), math.radians(el)
            d_cam = np.array([math.sin(a) * math.cos(e), -math.sin(e), -math.cos(a) * math.cos(e)])
            pos = target + target_mm * (rot @ d_cam)
            half = 0.5 * lighting.key_size * target_mm
            out[name] = _look_at(pos, target, up) @ np.diag([half, half, 1.0, 1.0])
        return out
    return {}


def lights_dict(lighting: Lighting, pose: np.ndarray, *, target_mm: float) -> dict[str, Any]:
    """Scene-dict entries of the lights (ids ``tip0``, ``tip1``, ``key``, ``fill``, ``environment``)."""
    tint = [float(c) for c in lighting.tint]
    out: dict[str, Any] = {}
    for name, matrix in light_transforms(lighting, pose, target_mm=target_mm).items():
        if name.startswith("tip"):
            out[name] = {
                "type": "spot",
                "cutoff_angle": SPOT_CUTOFF_DEG,
                "beam_width": SPOT_CUTOFF_DEG,
                "intensity": {"type": "rgb", "value": [c * _TIP_INTENSITY for c in tint]},
                "texture": {"type": "bitmap", "bitmap": _mi().Bitmap(spot_profile(lighting.spot_exponent)),
                            "raw": True, "filter_type": "bilinear", "wrap_mode": "clamp"},
                "to_world": _transform(matrix),
            }
        else:
            level = _KEY_RADIANCE * (1.0 if name == "key" else lighting.fill_ratio)
            out[name] = {
                "type": "rectangle",
                "to_world": _transform(matrix),
                "emitter": {"type": "area", "radiance": {"type": "rgb", "value": [c * level for c in tint]}},
                "bsdf": {"type": "null"},
            }
    if lighting.environment > 0:
        if lighting.kind == "key-fill":
            # Irradiance of the key at the target ~ L A / d^2 = L key_size^2; a uniform environment gives pi L_env.
            radiance = lighting.environment * _KEY_RADIANCE * lighting.key_size**2 / math.pi
        elif lighting.kind == "environment":
            radiance = 1.0
        else:
            radiance = lighting.environment * _TIP_INTENSITY / (math.pi * target_mm**2)
        out["environment"] = {"type": "constant", "radiance": {"type": "rgb", "value": [c * radiance for c in tint]}}
    return out


# --- the scene --------------------------------------------------------------------------------------------


def integrator_dict(integrator: str, max_depth: int) -> dict[str, Any]:
    """The volumetric path tracer (emitters hidden from camera rays: a black background)."""
    if integrator not in INTEGRATORS:
        raise SimrealError(f"integrator must be one of {', '.join(INTEGRATORS)}, got {integrator!r}")
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or not 1 <= max_depth <= 1024:
        raise SimrealError(f"max_depth must be an integer in 1..1024, got {max_depth!r}")
    return {"type": integrator, "max_depth": int(max_depth), "rr_depth": min(5, int(max_depth)), "hide_emitters": True}


def scene_dict(
    *,
    grids: MediumGrids,
    tf: TransferFunction,
    boundary_mesh: AnatomyMesh | None,
    lighting: Lighting,
    camera: Camera,
    target_mm: float,
    spp: int,
    integrator: str = "volpath",
    max_depth: int = 16,
    surface_depth_mm: float = 1.0,
    shading_normals: np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole Mitsuba scene of one frame as a dict (what :class:`ConditionScene` loads, and what the
    benchmark renders bare).

    Args:
        grids: the medium (:func:`medium_grids`).
        tf: the transfer function the grids came from.
        boundary_mesh: the iso boundary (normals out of the medium) for ``tf.boundary == "iso"``; None
            puts the medium in its grid's box (``"box"``).
        lighting: the lights.
        camera: the frame's camera (sensor and camera-relative lights).
        target_mm: distance to what the camera looks at, mm (key-fill lights).
        spp: samples per pixel.
        integrator: ``"volpath"`` or ``"prbvolpath"`` (mitsuba3 issue #336: black artefacts in volpath
            at high density).
        max_depth: longest path.
        surface_depth_mm: how deep below the boundary the surface layer reads its colour, mm.
        shading_normals: (V, 3) shading normals of the boundary mesh (:func:`gradient_normals`); None: the
            mesh's vertex normals.
    """
    medium = medium_dict(grids, tf)
    scene: dict[str, Any] = {
        "type": "scene",
        "integrator": integrator_dict(integrator, max_depth),
        "sensor": sensor_dict(camera, spp=spp),
    }
    if tf.boundary == "iso":
        if boundary_mesh is None:
            raise SimrealError("an iso-boundary transfer function needs its boundary mesh")
        colours = surface_colours(boundary_mesh, grids, tf, surface_depth_mm)
        scene["tissue"] = mitsuba_mesh("tissue", boundary_mesh, bsdf=boundary_bsdf(tf), interior=medium, colours=colours,
                                       normals=shading_normals)
    else:
        box = grid_to_world(grids.affine, grids.density.shape) @ np.array(
            [[0.5, 0, 0, 0.5], [0, 0.5, 0, 0.5], [0, 0, 0.5, 0.5], [0, 0, 0, 1.0]])  # [-1, 1]^3 -> unit cube
        scene["tissue"] = {"type": "cube", "to_world": _transform(box), "bsdf": {"type": "null"}, "interior": medium}
    scene.update(lights_dict(lighting, camera.pose_matrix(), target_mm=target_mm))
    return scene


class ConditionScene:
    """One rendering condition loaded into Mitsuba, rendering frames from any camera.

    The medium, boundary and lights are loaded once; per frame only the sensor is made anew and the
    camera-relative lights are moved (``mi.traverse`` updates), so frames of one condition share the
    compiled kernels.

    Args:
        scene: from :func:`scene_dict` (its sensor and light placement are those of the first frame).
        lighting: the lighting the dict holds.
        target_mm: as in :func:`scene_dict`.
    """

    def __init__(self, scene: dict[str, Any], lighting: Lighting, *, target_mm: float):
        mi = _mi()
        self.lighting = lighting
        self.target_mm = float(target_mm)
        self.scene = mi.load_dict(scene)
        self._params = mi.traverse(self.scene)

    def place_lights(self, pose: np.ndarray) -> None:
        """Move the camera-relative lights to a camera pose (OpenCV camera-to-world, mm)."""
        moves = light_transforms(self.lighting, pose, target_mm=self.target_mm)
        if not moves:
            return
        for name, matrix in moves.items():
            self._params[f"{name}.to_world"] = _transform(matrix)
        self._params.update()

    def render(self, camera: Camera, *, spp: int, seed: int, jitter: bool = True) -> np.ndarray:
        """Render one frame.

        Args:
            camera: pinhole intrinsics + pose (mm).
            spp: samples per pixel.
            seed: Monte Carlo seed (same seed, camera and scene: same image).
            jitter: anti-aliasing sample positions (False: every sample at the pixel centre).

        Returns:
            (H, W, 3) float32 linear RGB radiance (arbitrary units: expose it).
        """
        mi = _mi()
        self.place_lights(camera.pose_matrix())
        sensor = mi.load_dict(sensor_dict(camera, spp=spp, jitter=jitter))
        img = mi.render(self.scene, sensor=sensor, spp=int(spp), seed=int(seed))
        out = np.array(img, dtype=np.float32)
        return np.nan_to_num(out[..., :3], nan=0.0, posinf=0.0, neginf=0.0)


def mitsuba_depth(mesh: AnatomyMesh, camera: Camera) -> np.ndarray:
    """z-depth of ``mesh`` seen by ``camera``, computed by Mitsuba (``aov`` integrator, one ray through
    each pixel centre): the cross-check of the Embree depth labels.

    Args:
        mesh: the surface, world mm.
        camera: pinhole intrinsics and pose.

    Returns:
        (H, W) float32 z-depth in the camera frame, mm, 0 where no surface.
    """
    from simreal.render.camera import camera_rays

    mi = _mi()
    scene = mi.load_dict({
        "type": "scene",
        "integrator": {"type": "aov", "aovs": "dd:depth"},
        "sensor": sensor_dict(camera, spp=1, jitter=False),
        "surface": mitsuba_mesh("surface", mesh, bsdf={"type": "diffuse"}, interior=None),
    })
    img = np.array(mi.render(scene, spp=1, seed=0), dtype=np.float64)
    t = img[..., -1]  # ray distance (the near-clip offset, 1e-3 mm, is below the test tolerance)
    cos_axis = camera_rays(camera)[:, 2].reshape(camera.height, camera.width)
    return (t * cos_axis).astype(np.float32)


def thread_count() -> int:
    """Threads drjit's LLVM backend renders with (all cores unless ``DRJIT_NUM_THREADS`` says otherwise)."""
    try:
        import drjit as dr

        return int(dr.thread_count())
    except Exception:  # noqa: BLE001
        return os.cpu_count() or 1
