"""Polyps: closed surfaces of revolution about the local wall normal, sessile (a flattened dome) or
pedunculated (a stalk and a lobulated head), sunk partly into the wall they grow from.

Lengths in mm. The colon generator (:mod:`simreal.anatomy.colon`) draws :class:`PolypParams` and places each
surface with :func:`polyp_surface`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simreal.anatomy.mesh import grid_faces
from simreal.anatomy.texture import value_noise

PolypKind = Literal["sessile", "pedunculated"]
_TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class PolypParams:
    """One polyp.

    Attributes:
        s_mm: position along the centerline (arc length from its start), mm.
        angle_rad: angle about the centerline in the wall frame, rad.
        kind: ``"sessile"`` (flattened dome) or ``"pedunculated"`` (stalk + head).
        diameter_mm: dome base diameter (sessile) or head diameter (pedunculated), 2-20 mm.
        height_mm: dome height (sessile) or stalk length (pedunculated), mm.
        lobulation: relative amplitude of the surface bumps, 0-0.2.
        seed: seed of the bump pattern.
    """

    s_mm: float
    angle_rad: float
    kind: PolypKind
    diameter_mm: float
    height_mm: float
    lobulation: float
    seed: int


def _polyp_profile(p: PolypParams, n_prof: int = 25) -> tuple[np.ndarray, np.ndarray]:
    """Profile of the polyp's surface of revolution: radius and height (mm) from bottom pole to top pole."""
    radius = 0.5 * p.diameter_mm
    t = np.linspace(0.0, np.pi, n_prof)
    if p.kind == "sessile":
        # A half-ellipsoid dome; the lower third is sunk into the wall so the base blends in.
        sink = 0.35 * p.height_mm + 0.5
        rho = radius * np.sin(t)
        z = -sink + (p.height_mm + sink) * 0.5 * (1.0 - np.cos(t))
        return rho, z
    stalk_r = max(0.6, 0.22 * p.diameter_mm)
    join = np.arcsin(min(stalk_r / radius, 0.95))  # polar angle (from below) where the stalk meets the head
    zc = p.height_mm + radius * np.cos(join)
    n_stalk = 8
    z_stalk = np.linspace(-1.0, zc - radius * np.cos(join), n_stalk)
    flare = 1.0 + 0.4 * np.exp(-(z_stalk + 1.0) / 1.5)  # a slight flare where the stalk leaves the wall
    head_t = np.linspace(join, np.pi, n_prof)
    rho = np.concatenate([[0.0], stalk_r * flare, radius * np.sin(head_t)])
    z = np.concatenate([[-1.0], z_stalk, zc - radius * np.cos(head_t)])
    return rho, z


def polyp_surface(
    p: PolypParams, base: np.ndarray, normal: np.ndarray, n_lon: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """A closed triangulated polyp standing on the wall.

    Args:
        p: the polyp.
        base: (3,) wall point, mm.
        normal: (3,) unit wall normal pointing into the lumen.
        n_lon: samples around the axis.

    Returns:
        vertices (V, 3) mm and faces (F, 3), outward-wound (normals point out of the polyp).
    """
    rho, z = _polyp_profile(p)
    phi = np.linspace(0.0, _TWO_PI, n_lon, endpoint=False)
    u = np.cross(normal, [1.0, 0.0, 0.0] if abs(normal[0]) < 0.9 else [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    w = np.cross(normal, u)
    ring = np.cos(phi)[:, None] * u + np.sin(phi)[:, None] * w  # (n_lon, 3)
    local = rho[1:-1, None, None] * ring[None] + z[1:-1, None, None] * normal  # (P-2, n_lon, 3)
    pts = base + local.reshape(-1, 3)
    # Lobulation: push the surface out along its local radial direction by 3-D noise (none at the base).
    centre = base + normal * z[1:-1].mean()
    radial = pts - centre
    radial /= np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    height = np.repeat(np.clip((z[1:-1] + 0.5) / max(z.max(), 1e-6), 0.0, 1.0), n_lon)
    bump = p.lobulation * 0.5 * p.diameter_mm * height * value_noise(pts, max(p.diameter_mm / 3.0, 1.0), p.seed)
    pts = pts + bump[:, None] * radial
    bottom, top = base + z[0] * normal, base + z[-1] * normal
    verts = np.concatenate([[bottom], pts, [top]])
    n_rows = len(z) - 2
    body = grid_faces(n_rows, n_lon, wrap_cols=True) + 1
    j = np.arange(n_lon)
    j1 = (j + 1) % n_lon
    cap_lo = np.stack([np.zeros(n_lon, np.int64), 1 + j1, 1 + j], -1)
    last = 1 + (n_rows - 1) * n_lon
    cap_hi = np.stack([np.full(n_lon, len(verts) - 1), last + j, last + j1], -1)
    # Grid rows go up the axis and columns go anticlockwise about it: d(row) x d(col) points inward.
    faces = np.concatenate([cap_lo, body[:, ::-1], cap_hi])
    return verts, faces
