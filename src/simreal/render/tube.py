"""A straight tube with optional hemispherical polyps: the closed-form test and benchmark scene.

Depth inside a cylinder has a closed form, so this mesh checks the ray caster exactly; it also stands in
for the procedural colon when benchmarking the renderer alone.
"""

from __future__ import annotations

import math

import numpy as np

from simreal.anatomy.mesh import MUCOSA, POLYP, AnatomyMesh


def _hemisphere(
    center: np.ndarray, inward: np.ndarray, radius: float, n_theta: int, n_phi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a hemisphere of ``radius`` bulging from ``center`` along unit ``inward``."""
    ref = np.array([0.0, 0.0, 1.0]) if abs(inward[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    a = np.cross(ref, inward)
    a /= np.linalg.norm(a)
    b = np.cross(inward, a)
    verts = [center + radius * inward]
    for i in range(1, n_theta + 1):
        th = (math.pi / 2) * i / n_theta
        for j in range(n_phi):
            ph = 2 * math.pi * j / n_phi
            side = math.cos(ph) * a + math.sin(ph) * b
            verts.append(center + radius * (math.cos(th) * inward + math.sin(th) * side))
    faces = []
    for j in range(n_phi):
        faces.append([0, 1 + j, 1 + (j + 1) % n_phi])
    for i in range(n_theta - 1):
        r0, r1 = 1 + i * n_phi, 1 + (i + 1) * n_phi
        for j in range(n_phi):
            j1 = (j + 1) % n_phi
            faces.append([r0 + j, r1 + j, r1 + j1])
            faces.append([r0 + j, r1 + j1, r0 + j1])
    return np.asarray(verts), np.asarray(faces)


def tube_mesh(
    *,
    radius: float = 15.0,
    length: float = 200.0,
    segments: int = 128,
    rings: int = 100,
    polyps: tuple[tuple[float, float, float], ...] = ((100.0, 0.0, 6.0),),
) -> AnatomyMesh:
    """A straight open tube along +z (axis through the origin) with hemispherical polyps on its wall.

    Args:
        radius: lumen radius, mm.
        length: tube length along z, mm (from z = 0).
        segments: vertices around the circumference.
        rings: vertex rings along the length (>= 2).
        polyps: (z mm, angle around the axis in degrees, polyp radius mm) each; the k-th gets class
            polyp and instance k + 1.

    Returns:
        AnatomyMesh with a sinusoidal texture pattern and the z axis as centerline.
    """
    ang = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    zs = np.linspace(0.0, length, rings)
    zz, aa = np.meshgrid(zs, ang, indexing="ij")
    verts = np.stack([radius * np.cos(aa), radius * np.sin(aa), zz], axis=-1).reshape(-1, 3)
    idx = np.arange(rings * segments).reshape(rings, segments)
    nxt = np.roll(idx, -1, axis=1)
    q0, q1, q2, q3 = idx[:-1], nxt[:-1], nxt[1:], idx[1:]
    faces = np.concatenate([np.stack([q0, q1, q2], -1).reshape(-1, 3), np.stack([q0, q2, q3], -1).reshape(-1, 3)])
    labels = [np.full(len(faces), MUCOSA, np.uint8)]
    instances = [np.zeros(len(faces), np.uint8)]
    all_v, all_f = [verts], [faces]
    offset = len(verts)
    for k, (z, deg, r) in enumerate(polyps):
        th = math.radians(deg)
        centre = np.array([radius * math.cos(th), radius * math.sin(th), z])
        inward = -np.array([math.cos(th), math.sin(th), 0.0])
        hv, hf = _hemisphere(centre, inward, r, n_theta=16, n_phi=32)
        all_v.append(hv)
        all_f.append(hf + offset)
        offset += len(hv)
        labels.append(np.full(len(hf), POLYP, np.uint8))
        instances.append(np.full(len(hf), k + 1, np.uint8))
    v = np.concatenate(all_v)
    texture = np.stack(
        [0.5 + 0.5 * np.sin(v[:, 2] * 0.7) * np.cos(np.arctan2(v[:, 1], v[:, 0]) * 5),
         np.clip(np.sin(v[:, 2] * 0.31 + 3 * np.arctan2(v[:, 1], v[:, 0])) * 4 - 3, 0, 1)],
        axis=1,
    )
    line = np.stack([np.zeros(rings), np.zeros(rings), zs], axis=1)
    return AnatomyMesh(
        vertices=v,
        faces=np.concatenate(all_f),
        face_labels=np.concatenate(labels),
        face_instances=np.concatenate(instances),
        vertex_texture=texture,
        centerline=line,
        centerline_radius=np.full(rings, radius),
        metadata={"generator": "simreal.render.tube.tube_mesh", "radius": radius, "length": length,
                  "segments": segments, "rings": rings, "polyps": [list(p) for p in polyps]},
    )
