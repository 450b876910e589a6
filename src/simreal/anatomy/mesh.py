"""The anatomy contract: a labelled surface mesh with its centerline, stored as binary PLY.

Everything ``render`` needs to fly a camera through an organ: triangles in world millimetres, a class id
and an instance id per face (which polyp a triangle belongs to), a per-vertex procedural texture pattern
(two channels in [0, 1]; the renderer turns them into colour per frame), and a centerline with the lumen
radius along it. The PLY opens in MeshLab, Blender or trimesh; the extra ``centerline`` element and the
``simreal`` comment (JSON: generator and parameters) are ignored by tools that do not know them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simreal.atomic import atomic_path
from simreal.errors import SimrealError

MESH_FORMAT = "simreal-anatomy/1"

#: Face class ids used by every anatomy generator.
MUCOSA, POLYP = 0, 1
DEFAULT_CLASSES = {MUCOSA: "mucosa", POLYP: "polyp"}


@dataclass
class AnatomyMesh:
    """A labelled surface mesh.

    Attributes:
        vertices: (V, 3) float32 world coordinates in mm.
        faces: (F, 3) int32 vertex indices.
        face_labels: (F,) uint8 class id per face (``DEFAULT_CLASSES``: 0 mucosa, 1 polyp).
        face_instances: (F,) uint8 instance id per face (0 = none, k = the k-th polyp).
        vertex_texture: (V, 2) float32 texture pattern in [0, 1] (channel 0: mottling, 1: vessels).
        centerline: (K, 3) float64 points along the lumen, mm, in fly-through order.
        centerline_radius: (K,) float64 lumen radius at each centerline point, mm.
        classes: class id -> name.
        metadata: generator name, parameters and anything else worth keeping (JSON-serialisable).
    """

    vertices: np.ndarray
    faces: np.ndarray
    face_labels: np.ndarray
    face_instances: np.ndarray
    vertex_texture: np.ndarray
    centerline: np.ndarray
    centerline_radius: np.ndarray
    classes: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_CLASSES))
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vertices = np.ascontiguousarray(self.vertices, dtype=np.float32)
        self.faces = np.ascontiguousarray(self.faces, dtype=np.int32)
        self.face_labels = np.ascontiguousarray(self.face_labels, dtype=np.uint8)
        self.face_instances = np.ascontiguousarray(self.face_instances, dtype=np.uint8)
        self.vertex_texture = np.ascontiguousarray(self.vertex_texture, dtype=np.float32)
        self.centerline = np.ascontiguousarray(self.centerline, dtype=np.float64)
        self.centerline_radius = np.ascontiguousarray(self.centerline_radius, dtype=np.float64)
        self.validate()

    def validate(self, path: Path | None = None) -> None:
        """Raise :class:`SimrealError` if shapes or values are inconsistent."""
        v, f = self.vertices, self.faces
        problems = []
        if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
            problems.append(f"vertices must be (V, 3) with V > 0, got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
            problems.append(f"faces must be (F, 3) with F > 0, got {f.shape}")
        elif f.min() < 0 or f.max() >= len(v):
            problems.append("faces index vertices that do not exist")
        if not np.isfinite(v).all():
            problems.append("vertices hold NaN/inf")
        if self.face_labels.shape != (len(f),) or self.face_instances.shape != (len(f),):
            problems.append("face_labels / face_instances must have one entry per face")
        if self.vertex_texture.shape != (len(v), 2):
            problems.append(f"vertex_texture must be (V, 2), got {self.vertex_texture.shape}")
        if self.centerline.ndim != 2 or self.centerline.shape[1] != 3 or len(self.centerline) < 2:
            problems.append(f"centerline must be (K, 3) with K >= 2, got {self.centerline.shape}")
        if self.centerline_radius.shape != (len(self.centerline),):
            problems.append("centerline_radius must have one entry per centerline point")
        unknown = set(np.unique(self.face_labels).tolist()) - set(self.classes)
        if unknown:
            problems.append(f"face labels {sorted(unknown)} are not among the classes {sorted(self.classes)}")
        if problems:
            raise SimrealError("invalid anatomy mesh: " + "; ".join(problems), path)

    def vertex_normals(self) -> np.ndarray:
        """(V, 3) float32 unit vertex normals, area-weighted from the faces."""
        v = self.vertices.astype(np.float64)
        tri = v[self.faces]
        face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 * area: area weighting
        normals = np.zeros_like(v)
        for k in range(3):
            np.add.at(normals, self.faces[:, k], face_n)
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        return (normals / np.maximum(length, 1e-12)).astype(np.float32)


def grid_faces(n_rows: int, n_cols: int, wrap_cols: bool) -> np.ndarray:
    """Two triangles per quad of a row-major vertex grid; normal = d(row) x d(col) by the right-hand rule."""
    i, j = np.meshgrid(np.arange(n_rows - 1), np.arange(n_cols if wrap_cols else n_cols - 1), indexing="ij")
    j1 = (j + 1) % n_cols
    a, b, c, d = i * n_cols + j, (i + 1) * n_cols + j, i * n_cols + j1, (i + 1) * n_cols + j1
    return np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)])


def save_mesh(mesh: AnatomyMesh, path: str | Path) -> Path:
    """Write the mesh as binary little-endian PLY (atomically)."""
    from plyfile import PlyData, PlyElement

    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise SimrealError("anatomy meshes are written as .ply", path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimrealError(f"cannot create folder ({exc.strerror})", path.parent) from None
    vert = np.empty(
        len(mesh.vertices),
        dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"), ("tex_mottle", "f4"), ("tex_vessel", "f4")],
    )
    vert["x"], vert["y"], vert["z"] = mesh.vertices.T
    vert["tex_mottle"], vert["tex_vessel"] = mesh.vertex_texture.T
    face = np.empty(len(mesh.faces), dtype=[("vertex_indices", "i4", (3,)), ("label", "u1"), ("instance", "u1")])
    face["vertex_indices"] = mesh.faces
    face["label"] = mesh.face_labels
    face["instance"] = mesh.face_instances
    line = np.empty(len(mesh.centerline), dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("radius", "f8")])
    line["x"], line["y"], line["z"] = mesh.centerline.T
    line["radius"] = mesh.centerline_radius
    header = {"format": MESH_FORMAT, "classes": {str(k): v for k, v in mesh.classes.items()}, "metadata": mesh.metadata}
    ply = PlyData(
        [
            PlyElement.describe(vert, "vertex"),
            PlyElement.describe(face, "face"),
            PlyElement.describe(line, "centerline"),
        ],
        text=False,
        byte_order="<",
        comments=["simreal " + json.dumps(header, sort_keys=True, separators=(",", ":"))],
    )
    try:
        with atomic_path(path) as tmp:
            ply.write(str(tmp))
    except OSError as exc:
        raise SimrealError(f"cannot write mesh ({exc.strerror})", path) from None
    return path


def load_mesh(path: str | Path) -> AnatomyMesh:
    """Read a mesh written by :func:`save_mesh`; any other or damaged file raises :class:`SimrealError`."""
    from plyfile import PlyData

    path = Path(path)
    if not path.is_file():
        raise SimrealError("anatomy mesh not found", path)
    try:
        ply = PlyData.read(str(path))
    except Exception as exc:
        raise SimrealError(f"cannot read PLY ({exc.__class__.__name__}: {exc})", path) from None
    header = None
    for c in ply.comments:
        if c.startswith("simreal "):
            try:
                header = json.loads(c[len("simreal "):])
            except json.JSONDecodeError:
                header = None
    names = {e.name for e in ply.elements}
    if header is None or header.get("format") != MESH_FORMAT or not {"vertex", "face", "centerline"} <= names:
        raise SimrealError(
            "not a simreal anatomy mesh (make one with `simreal anatomy colon` or `simreal anatomy from-ct`)", path
        )
    try:
        v, f, c = ply["vertex"].data, ply["face"].data, ply["centerline"].data
        mesh = AnatomyMesh(
            vertices=np.stack([v["x"], v["y"], v["z"]], axis=1),
            faces=np.stack(f["vertex_indices"]).astype(np.int32),
            face_labels=f["label"],
            face_instances=f["instance"],
            vertex_texture=np.stack([v["tex_mottle"], v["tex_vessel"]], axis=1),
            centerline=np.stack([c["x"], c["y"], c["z"]], axis=1),
            centerline_radius=c["radius"],
            classes={int(k): str(val) for k, val in header.get("classes", {}).items()},
            metadata=header.get("metadata", {}),
        )
    except SimrealError as exc:
        raise SimrealError(str(exc).split(": ", 1)[-1], path) from None
    except (KeyError, ValueError) as exc:
        raise SimrealError(f"mesh is missing data ({exc})", path) from None
    return mesh
