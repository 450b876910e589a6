"""The laparoscopy scene: a deformed liver with gallbladder, fat, ligament and wall; and the instruments.

``sample_scene_params(rng, liver, config)`` draws one scene (:class:`SceneParams`: the liver's scale and
deformation and every organ's parameters); ``build_scene(liver, params)`` turns it into one labelled
triangle surface (:class:`~simreal.anatomy.mesh.AnatomyMesh`, face labels = the class ids of
:mod:`simreal.anatomy.abdomen_classes`) with no randomness of its own. Instruments are drawn per frame
(:class:`ToolParams`, placed by :mod:`simreal.render.laparoscopy`) and built by :func:`build_tools`.

World frame = the liver frame of :mod:`simreal.anatomy.liver` (mm): origin at the undeformed liver's
centroid, z anterior (towards the laparoscope), y towards the inferior edge.

Example:
    >>> prepared = PreparedLiver(read_liver("meshGT.obj"))                        # doctest: +SKIP
    >>> params = sample_scene_params(np.random.default_rng(0), prepared, LaparoscopyConfig())  # doctest: +SKIP
    >>> scene = build_scene(prepared, params)                                      # doctest: +SKIP
    >>> sorted(set(scene.mesh.face_labels.tolist()))                               # doctest: +SKIP
    [1, 2, 3, 4, 7]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from simreal.anatomy.abdomen import (
    N_VARIANTS,
    FatLump,
    GallbladderParams,
    LigamentParams,
    WallParams,
    build_fat_lump,
    build_gallbladder,
    build_ligament,
    build_wall,
    first_hits,
)
from simreal.anatomy.abdomen_classes import (
    FAT,
    GALLBLADDER,
    LAPAROSCOPY_CLASSES,
    LIGAMENT,
    LIVER,
    TOOL_SHAFT,
    TOOL_TIP,
    WALL,
)
from simreal.anatomy.liver import LiverDeformation, LiverModel, clamp_scale, deform_points, sample_liver_deformation
from simreal.anatomy.mesh import AnatomyMesh
from simreal.anatomy.texture import bake_mucosa_texture
from simreal.errors import SimrealError
from simreal.render.laparoscopy_config import LaparoscopyConfig

Vec3 = tuple[float, float, float]

#: Livers are subdivided until their mean edge is at most this long (mm), so the texture has detail.
LIVER_EDGE_MM = 4.5


class PreparedLiver:
    """A liver ready for many scenes: subdivided for texture detail, its texture pattern baked once.

    Args:
        liver: the liver in its liver frame.
        texture_seed: seed of its baked pattern (mottling: liver lobules; few vessels).

    Attributes:
        model: the :class:`LiverModel`.
        vertices: (V, 3) float64 liver-frame positions (subdivided), mm.
        faces: (F, 3) int32, outward.
        texture: (V, 2) float32 pattern.
    """

    def __init__(self, liver: LiverModel, texture_seed: int = 0):
        import trimesh

        v, f = liver.vertices, liver.faces.astype(np.int64)
        for _ in range(3):
            edges = np.linalg.norm(v[f[:, [1, 2, 0]]] - v[f], axis=2)
            if float(edges.mean()) <= LIVER_EDGE_MM:
                break
            v, f = trimesh.remesh.subdivide(v, f)
        self.model = liver
        self.vertices = np.asarray(v, dtype=np.float64)
        self.faces = np.asarray(f, dtype=np.int32)
        self.texture = bake_mucosa_texture(self.vertices, texture_seed, mottle_scale_mm=7.0, vessel_scale_mm=16.0)

    @property
    def name(self) -> str:
        return self.model.name


# --- scene parameters -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneParams:
    """Everything drawn for one scene (liver frame, mm): the input of :func:`build_scene`.

    Args:
        liver_index: which of the dataset's livers (``dataset.json`` ``generator.livers``).
        scale: the liver's uniform scale about its centroid.
        deformation: the liver's smooth displacement field (applied after scaling).
        wall: the diaphragm / abdominal wall.
        gallbladder: the gallbladder, or None.
        fat: the fat lumps.
        ligament: the falciform ligament, or None.
    """

    liver_index: int
    scale: float
    deformation: LiverDeformation
    wall: WallParams
    gallbladder: GallbladderParams | None = None
    fat: tuple[FatLump, ...] = ()
    ligament: LigamentParams | None = None

    def to_dict(self) -> dict[str, Any]:
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> "SceneParams":
        from simreal.configs import build

        return build(cls, mapping)


def _u(rng: np.random.Generator, r: tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _angles(rng: np.random.Generator) -> Vec3:
    a, b, c = (float(x) for x in rng.uniform(0.0, 360.0, 3))
    return (a, b, c)


def liver_vertices(prepared: PreparedLiver, scale: float, deformation: LiverDeformation) -> np.ndarray:
    """The scene's liver: (V, 3) float64 vertices scaled about the centroid, then deformed."""
    return deform_points(prepared.vertices * float(scale), deformation)


def _edge_point(v: np.ndarray, x: float, window: float) -> np.ndarray:
    """The vertex furthest along +y (the inferior edge) among those within ``window`` of ``x`` (widened until
    some vertex is there)."""
    for w in (window, 2 * window, 4 * window, np.inf):
        sel = np.abs(v[:, 0] - x) <= w
        if sel.any():
            cand = v[sel]
            return cand[int(np.argmax(cand[:, 1]))]
    raise AssertionError("unreachable")  # pragma: no cover


def sample_scene_params(
    rng: np.random.Generator, prepared: PreparedLiver, config: LaparoscopyConfig, *, liver_index: int = 0
) -> SceneParams:
    """Draw one scene around a liver. Draws happen in a fixed order from ``rng`` alone.

    Order: scale, deformation, wall, gallbladder, fat patches, ligament.

    Args:
        rng: the scene's generator (datasets: ``SeedSequence([seed, 0x5CE7E, scene])``).
        prepared: the liver.
        config: the ranges.
        liver_index: recorded in the params.

    Returns:
        The :class:`SceneParams`.
    """
    lc = config.liver
    base = prepared.vertices
    longest = float((base.max(axis=0) - base.min(axis=0)).max())
    scale = clamp_scale(_u(rng, lc.scale), longest, lc.extent_mm)
    scaled = base * scale
    lo, hi = scaled.min(axis=0), scaled.max(axis=0)
    deformation = sample_liver_deformation(
        rng, hi - lo, n_rbf=lc.n_rbf, sigma_mm=lc.sigma_mm, displacement_mm=lc.displacement_mm,
        max_lipschitz=lc.max_lipschitz, centre=0.5 * (lo + hi),
    )
    v = deform_points(scaled, deformation)
    lo, hi = v.min(axis=0), v.max(axis=0)
    half_x = 0.5 * (hi[0] - lo[0])

    wc = config.wall
    lateral = _u(rng, wc.lateral)
    y_lo = lo[1] * _u(rng, wc.superior) if lo[1] < 0 else lo[1]
    y_hi = hi[1] + _u(rng, wc.inferior_mm)
    z_lo = lo[2] - _u(rng, wc.posterior_mm)
    z_hi = hi[2] + _u(rng, wc.anterior_mm)
    bump = _u(rng, wc.bump_mm)
    variant = int(rng.integers(0, N_VARIANTS))
    rotation = _angles(rng)
    # The wall must hold every camera position: grow it to the furthest the camera can be placed from the
    # centroid (the liver's half-size plus the largest distance from its surface).
    reach = float(0.5 * (hi - lo).max() + config.camera.distance_mm[1]) + config.camera.clearance_mm + bump + 20.0
    y_hi = max(y_hi, reach)
    z_hi = max(z_hi, reach)
    radii = (max(lateral * half_x, reach), 0.5 * (y_hi - y_lo), 0.5 * (z_hi - z_lo))
    wall = WallParams(centre_mm=(float(0.5 * (lo[0] + hi[0])), float(0.5 * (y_lo + y_hi)), float(0.5 * (z_lo + z_hi))),
                      radii_mm=tuple(float(r) for r in radii), bump_mm=bump, variant=variant,  # type: ignore[arg-type]
                      rotation_deg=rotation)

    right = prepared.model.right_sign
    gc = config.gallbladder
    gallbladder = None
    if rng.random() < gc.prob:
        length, diameter = _u(rng, gc.length_mm), _u(rng, gc.diameter_mm)
        x = float(0.5 * (lo[0] + hi[0]) + right * _u(rng, gc.position) * half_x)
        edge = _edge_point(v, x, 10.0)
        protrusion = _u(rng, gc.protrusion_mm)
        embed = _u(rng, gc.embed)
        y_c = float(edge[1] + protrusion - 0.5 * length)
        # The underside of the liver above the gallbladder's centre: the first hit of a ray going up (+z).
        t, _ = first_hits(np.array([[x, y_c, lo[2] - 50.0]]), np.array([[0.0, 0.0, 1.0]]), v, prepared.faces)
        z_under = float(lo[2] - 50.0 + t[0]) if np.isfinite(t[0]) else float(edge[2])
        z_c = z_under - (0.5 - embed) * diameter
        tilt = rng.uniform(-0.25, 0.25, 2)
        gallbladder = GallbladderParams(
            centre_mm=(x, y_c, z_c), axis=(float(tilt[0]), 1.0, float(-0.35 + tilt[1])), up=(0.0, 0.0, 1.0),
            length_mm=length, diameter_mm=diameter, taper=_u(rng, gc.taper), sag_mm=_u(rng, gc.sag_mm),
            rotation_deg=_angles(rng),
        )

    fc = config.fat
    lumps: list[FatLump] = []
    for _ in range(int(rng.integers(fc.patches[0], fc.patches[1] + 1))):
        x = float(rng.uniform(lo[0] + 0.15 * (hi[0] - lo[0]), hi[0] - 0.15 * (hi[0] - lo[0])))
        if gallbladder is not None and abs(x - gallbladder.centre_mm[0]) < gallbladder.length_mm:
            gx = gallbladder.centre_mm[0]
            x = gx + math.copysign(gallbladder.length_mm, x - gx)  # beside the gallbladder, not over it
        edge = _edge_point(v, x, 10.0)
        centre = edge + np.array([0.0, _u(rng, fc.beyond_mm), -_u(rng, fc.below_mm)])
        for _ in range(int(rng.integers(fc.lumps[0], fc.lumps[1] + 1))):
            r = _u(rng, fc.radius_mm)
            offset = rng.uniform(-fc.spread_mm, fc.spread_mm, 3) * np.array([1.0, 0.6, 0.5])
            c = centre + offset
            lumps.append(FatLump(
                centre_mm=(float(c[0]), float(c[1]), float(c[2])),
                radii_mm=(r * float(rng.uniform(0.9, 1.3)), r, r * _u(rng, fc.flatten)),
                lumpiness=_u(rng, fc.lumpiness), variant=int(rng.integers(0, N_VARIANTS)), rotation_deg=_angles(rng),
            ))

    lg = config.ligament
    ligament = None
    if rng.random() < lg.prob:
        x = float(0.5 * (lo[0] + hi[0]) - right * _u(rng, lg.position) * half_x)  # towards the left lobe
        y_inf = float(_edge_point(v, x, 10.0)[1]) - 2.0
        y_sup = y_inf - _u(rng, lg.length_frac) * float(hi[1] - lo[1])
        thickness = _u(rng, lg.thickness_mm)
        ligament = LigamentParams(
            x_mm=x, y_mm=(y_sup, y_inf), height_mm=_u(rng, lg.height_mm), tilt_deg=_u(rng, lg.tilt_deg), slant=_u(rng, lg.slant),
            thickness_mm=thickness, base_width_mm=max(_u(rng, lg.base_width_mm), thickness),
        )
    return SceneParams(liver_index=liver_index, scale=scale, deformation=deformation, wall=wall,
                       gallbladder=gallbladder, fat=tuple(lumps), ligament=ligament)


# --- building the scene -----------------------------------------------------------------------------------


@dataclass(eq=False)
class Scene:
    """A built scene: one labelled surface and what placing a camera in it needs.

    Attributes:
        mesh: every structure in one :class:`AnatomyMesh` (face labels = class ids; the centerline is the
            liver's x axis, unused by the laparoscopy renderer).
        params: what it was built from.
        liver_vertices: (V, 3) the deformed liver's vertices (world mm); its faces are ``mesh.faces[:F_liver]``.
        n_liver_faces: number of liver faces at the start of ``mesh.faces``.
        wall: the wall (for containment tests).
    """

    mesh: AnatomyMesh
    params: SceneParams
    liver_vertices: np.ndarray
    n_liver_faces: int
    wall: WallParams


def _assemble(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]], centerline: np.ndarray,
              metadata: dict[str, Any]) -> AnatomyMesh:
    verts, faces, tex, labels, inst = [], [], [], [], []
    offset = 0
    for v, f, t, label, instance in parts:
        verts.append(v)
        faces.append(np.asarray(f, np.int64) + offset)
        tex.append(np.asarray(t, np.float32))
        labels.append(np.full(len(f), label, np.uint8))
        inst.append(np.full(len(f), instance, np.uint8))
        offset += len(v)
    return AnatomyMesh(
        vertices=np.concatenate(verts), faces=np.concatenate(faces), face_labels=np.concatenate(labels),
        face_instances=np.concatenate(inst), vertex_texture=np.concatenate(tex), centerline=centerline,
        centerline_radius=np.ones(len(centerline)), classes=dict(LAPAROSCOPY_CLASSES), metadata=metadata,
    )


def build_scene(prepared: PreparedLiver, params: SceneParams | Mapping[str, Any]) -> Scene:
    """Build a scene's surfaces from drawn params (deterministic: same params, same arrays).

    Returns:
        The :class:`Scene`; face labels 1 liver, 2 fat, 3 wall, 4 ligament, 7 gallbladder; instances 0.
    """
    params = params if isinstance(params, SceneParams) else SceneParams.from_dict(params)
    v = liver_vertices(prepared, params.scale, params.deformation)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, int, int]] = [(v, prepared.faces, prepared.texture, LIVER, 0)]
    if params.gallbladder is not None:
        parts.append((*build_gallbladder(params.gallbladder), GALLBLADDER, 0))
    for lump in params.fat:
        parts.append((*build_fat_lump(lump), FAT, 0))
    if params.ligament is not None:
        built = build_ligament(params.ligament, v, prepared.faces, params.wall)
        if built is not None:
            parts.append((*built, LIGAMENT, 0))
    parts.append((*build_wall(params.wall), WALL, 0))
    x = np.array([[v[:, 0].min(), 0.0, 0.0], [v[:, 0].max(), 0.0, 0.0]])
    mesh = _assemble(parts, x, {"generator": "laparoscopy-scene", "liver": prepared.name})
    return Scene(mesh=mesh, params=params, liver_vertices=v, n_liver_faces=len(prepared.faces), wall=params.wall)


# --- instruments --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolParams:
    """One instrument, drawn per frame (world mm).

    The tool frame: origin at the jaws' pivot, z along the shaft towards the tip, x the direction the jaws
    open in, y = z cross x. ``pose`` maps tool to world coordinates.

    Args:
        instance: its id in the instance map (1, 2, ...).
        pose: (4, 4) tool-to-world matrix, mm, as nested tuples.
        shaft_diameter_mm: shaft diameter.
        shaft_length_mm: shaft length from the joint back towards the port.
        joint_length_mm: the tip's cylindrical joint between shaft and jaws.
        jaw_length_mm: length of each jaw.
        jaw_open_deg: full opening angle between the jaws.
        tip_pixel: where the jaws' end was aimed, as a fraction of the half image size (x, y) from the centre.
        entry_deg: angle of the shaft to the image plane, degrees.
    """

    instance: int
    pose: tuple[tuple[float, ...], ...]
    shaft_diameter_mm: float
    shaft_length_mm: float
    joint_length_mm: float
    jaw_length_mm: float
    jaw_open_deg: float
    tip_pixel: tuple[float, float] = (0.0, 0.0)
    entry_deg: float = 0.0

    def __post_init__(self) -> None:
        pose = np.asarray(self.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all() or not np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3),
                                                                                   atol=1e-6):
            raise SimrealError("tool pose: expected a rigid 4x4 matrix")
        object.__setattr__(self, "pose", tuple(tuple(float(x) for x in row) for row in pose))
        if not 1 <= int(self.instance) <= 255:
            raise SimrealError(f"tool instance must be in 1..255, got {self.instance}")
        for name in ("shaft_diameter_mm", "shaft_length_mm", "joint_length_mm", "jaw_length_mm"):
            if not getattr(self, name) > 0:
                raise SimrealError(f"tool {name} must be > 0, got {getattr(self, name)}")

    def tip_mm(self) -> np.ndarray:
        """(3,) world position of the jaws' end (on the tool's axis), mm."""
        pose = np.asarray(self.pose)
        return pose[:3, 3] + self.jaw_length_mm * pose[:3, 2]


def _cylinder(radius: float, z0: float, z1: float, sections: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Closed cylinder along z from z0 to z1 (tool frame), outward faces."""
    a = np.linspace(0.0, 2.0 * math.pi, sections, endpoint=False)
    ring = np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)
    v = np.concatenate([np.column_stack([ring, np.full(sections, z0)]), np.column_stack([ring, np.full(sections, z1)]),
                        [[0.0, 0.0, z0], [0.0, 0.0, z1]]])
    i = np.arange(sections)
    j = (i + 1) % sections
    side = np.concatenate([np.stack([i, j, sections + i], 1), np.stack([j, sections + j, sections + i], 1)])
    c0, c1 = 2 * sections, 2 * sections + 1
    caps = np.concatenate([np.stack([np.full(sections, c0), j, i], 1), np.stack([np.full(sections, c1), sections + i,
                                                                                  sections + j], 1)])
    return v, np.concatenate([side, caps]).astype(np.int32)


def _jaw(length: float, width: float, height: float, angle: float, side: float) -> tuple[np.ndarray, np.ndarray]:
    """One tapered jaw (a box narrowing towards its end) hinged at the origin, turned by ``side * angle``
    about the tool's y axis; outward faces."""
    w0, w1, h0, h1 = width / 2, width / 4, height / 2, height / 5
    box = np.array([[-w0, -h0, 0], [w0, -h0, 0], [w0, h0, 0], [-w0, h0, 0],
                    [-w1, -h1, length], [w1, -h1, length], [w1, h1, length], [-w1, h1, length]], dtype=np.float64)
    # The jaw's inner face lies on the axis, so closed jaws meet there.
    box[:, 0] += side * w0
    faces = np.array([[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                      [1, 2, 6], [1, 6, 5], [2, 3, 7], [2, 7, 6], [3, 0, 4], [3, 4, 7]], dtype=np.int32)
    t = side * angle
    rot = np.array([[math.cos(t), 0.0, math.sin(t)], [0.0, 1.0, 0.0], [-math.sin(t), 0.0, math.cos(t)]])
    return box @ rot.T, faces


def tool_parts(tool: ToolParams) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """The instrument's closed surfaces in world mm: (vertices, faces, class id) for the shaft, joint, jaws."""
    pose = np.asarray(tool.pose)
    r = 0.5 * tool.shaft_diameter_mm
    local = [
        (*_cylinder(r, -tool.joint_length_mm - tool.shaft_length_mm, -tool.joint_length_mm), TOOL_SHAFT),
        (*_cylinder(0.85 * r, -tool.joint_length_mm - 0.5, 0.0, 16), TOOL_TIP),
    ]
    half = 0.5 * math.radians(tool.jaw_open_deg)
    for side in (1.0, -1.0):
        local.append((*_jaw(tool.jaw_length_mm, 0.9 * r, 1.4 * r, half, side), TOOL_TIP))
    return [(v @ pose[:3, :3].T + pose[:3, 3], f, label) for v, f, label in local]


def build_tools(tools: tuple[ToolParams, ...]) -> AnatomyMesh | None:
    """All instruments of a frame as one labelled surface (labels 5 shaft, 6 tip; instance = tool id), or
    None when there are none."""
    parts = []
    for tool in tools:
        for v, f, label in tool_parts(tool):
            parts.append((v, f, np.zeros((len(v), 2), np.float32), label, tool.instance))
    if not parts:
        return None
    centre = np.asarray(tools[0].pose)[:3, 3]
    return _assemble(parts, np.stack([centre, centre + 1.0]), {"generator": "laparoscopy-tools"})
