"""A procedural colon: a curved tube with haustral folds, three taeniae coli, mucosal relief and polyps.

Randomness is sampled, then applied: :func:`sample_colon_params` draws every parameter with an explicit
generator into a frozen :class:`ColonParams`; :func:`build_colon` turns those parameters into an
:class:`~simreal.anatomy.mesh.AnatomyMesh` deterministically; :func:`make_colon` does both from a seed.

Geometry (all lengths in mm):

* centerline: the unit heading is ``normalize(e_z + a(s) e_x + b(s) e_y)`` with ``a, b`` sums of random
  sinusoids in arc length ``s``; their amplitudes are capped so the bend radius stays above the lumen
  radius (no self-folding). Integrated every ``ring_spacing_mm``.
* wall: at arc length ``s`` and angle ``theta`` (about the parallel-transport frame) the wall lies at
  ``R(s, theta) = r(s) * (1 - folds - taenia) + relief``: ``r(s)`` a smoothly varying lumen radius;
  crescent haustral folds every 20-35 mm with sharp crests, deepest midway between taeniae and vanishing
  on them, staggered per sector (which gives the triangular lumen); three narrow taenia bands 120 deg
  apart pulling the wall in; small 3-D noise relief.
* polyps (:mod:`simreal.anatomy.polyp`): closed surfaces of revolution about the local wall normal, sessile (flattened dome) or
  pedunculated (stalk + lobulated head), partly sunk into the wall.

* ends: both tube ends are closed by a blind-end dome (mucosa) that continues the wall past the last ring,
  so every ray from inside the lumen hits a surface (no black hole with a sharp edge).

Winding: every face's right-hand normal points into the lumen (towards the centerline) on the wall, and
out of the polyp (also into the lumen) on polyps.

Example:
    >>> mesh = make_colon(0, length_mm=200.0, n_polyps=2)
    >>> int(mesh.face_instances.max())
    2
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from simreal.anatomy.mesh import MUCOSA, POLYP, AnatomyMesh, grid_faces
from simreal.anatomy.polyp import PolypKind, PolypParams, polyp_surface
from simreal.anatomy.texture import bake_mucosa_texture, value_noise
from simreal.errors import SimrealError

_TWO_PI = 2.0 * np.pi


@dataclass(frozen=True)
class ColonParams:
    """Every parameter of one procedural colon (see the module docstring for the geometry).

    Attributes:
        length_mm: centerline length, mm.
        ring_spacing_mm: distance between cross-section rings along the centerline, mm.
        n_angular: samples around each ring.
        path_wavelengths_mm, path_amp_x, path_amp_y, path_phase_x, path_phase_y: sinusoid terms of the
            heading offsets ``a(s)`` and ``b(s)`` (amplitudes unitless: tangent of the tilt).
        base_radius_mm: mean lumen radius, mm.
        radius_wavelengths_mm, radius_amps, radius_phases: relative radius variation terms.
        radius_min_mm, radius_max_mm: clip range of the lumen radius, mm.
        fold_positions_mm: arc lengths of the haustral folds, mm.
        fold_depth: fold height relative to the radius.
        fold_half_width_mm: half the fold's base thickness, mm.
        fold_sector_shift_mm: per-sector shift of the folds (three sectors between the taeniae), mm.
        taenia_angle_rad: angle of the first taenia (others at +120 and +240 deg), rad.
        taenia_depth: inward pull of a taenia relative to the radius.
        taenia_width_rad: angular half-width of a taenia band, rad.
        relief_amplitude_mm, relief_scale_mm: mucosal relief noise amplitude and feature size, mm.
        texture_seed: seed of the relief and of the baked mucosa texture.
        polyps: the polyps.
    """

    length_mm: float
    ring_spacing_mm: float
    n_angular: int
    path_wavelengths_mm: tuple[float, ...]
    path_amp_x: tuple[float, ...]
    path_amp_y: tuple[float, ...]
    path_phase_x: tuple[float, ...]
    path_phase_y: tuple[float, ...]
    base_radius_mm: float
    radius_wavelengths_mm: tuple[float, ...]
    radius_amps: tuple[float, ...]
    radius_phases: tuple[float, ...]
    radius_min_mm: float
    radius_max_mm: float
    fold_positions_mm: tuple[float, ...]
    fold_depth: float
    fold_half_width_mm: float
    fold_sector_shift_mm: tuple[float, float, float]
    taenia_angle_rad: float
    taenia_depth: float
    taenia_width_rad: float
    relief_amplitude_mm: float
    relief_scale_mm: float
    texture_seed: int
    polyps: tuple[PolypParams, ...] = field(default=())


# ---------------------------------------------------------------------------------------------- profiles


def lumen_radius(params: ColonParams, s: np.ndarray) -> np.ndarray:
    """Smooth lumen radius r(s) in mm before folds and taeniae, (N,) for (N,) arc lengths."""
    s = np.asarray(s, dtype=np.float64)
    rel = np.ones_like(s)
    for lam, amp, ph in zip(params.radius_wavelengths_mm, params.radius_amps, params.radius_phases):
        rel += amp * np.sin(_TWO_PI * s / lam + ph)
    return np.clip(params.base_radius_mm * rel, params.radius_min_mm, params.radius_max_mm)


def _taenia_offset(params: ColonParams, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle to the nearest taenia (rad, in [0, pi/3]) and the sector index (0, 1, 2) of each angle."""
    rel = np.mod(np.asarray(theta) - params.taenia_angle_rad, _TWO_PI)
    sector = np.minimum((rel // (_TWO_PI / 3)).astype(np.int64), 2)
    within = rel - sector * (_TWO_PI / 3)
    return np.minimum(within, _TWO_PI / 3 - within), sector


def wall_radius(params: ColonParams, s: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Distance from the centerline to the wall (without the noise relief), mm.

    Args:
        params: the colon.
        s: arc lengths, mm, broadcastable with ``theta``.
        theta: angles about the centerline, rad.

    Returns:
        The broadcast shape of ``s`` and ``theta``, mm.
    """
    s, theta = np.broadcast_arrays(np.asarray(s, np.float64), np.asarray(theta, np.float64))
    r = lumen_radius(params, s)
    d_taenia, sector = _taenia_offset(params, theta)
    # Folds are crescents spanning a sector: zero on a taenia, deepest midway (d_taenia = pi/3).
    crescent = np.sin(np.clip(d_taenia / (np.pi / 3), 0.0, 1.0) * np.pi / 2) ** 1.5
    shift = np.asarray(params.fold_sector_shift_mm)[sector]
    folds = np.zeros_like(s)
    hw = params.fold_half_width_mm
    for pos in params.fold_positions_mm:
        d = np.abs(s - pos - shift)
        # (1 - d/hw)^2 has a cusp at d = 0: a sharp crest on a wide base.
        folds = np.maximum(folds, np.clip(1.0 - d / hw, 0.0, 1.0) ** 2)
    taenia = np.exp(-((d_taenia / params.taenia_width_rad) ** 2))
    return r * (1.0 - params.fold_depth * folds * crescent - params.taenia_depth * taenia)


# ------------------------------------------------------------------------------------------- sampling


def _draw_polyp(rng: np.random.Generator, params: ColonParams) -> PolypParams:
    length = params.length_mm
    s = float(rng.uniform(0.12 * length, 0.88 * length))
    angle = float(rng.uniform(0.0, _TWO_PI))
    # Room to grow: the wall distance at the base (a polyp must not reach the opposite wall).
    room = float(wall_radius(params, np.array([s]), np.array([angle]))[0])
    kind: PolypKind = "pedunculated" if rng.random() < 0.3 and room > 10.0 else "sessile"
    # Small polyps are the common ones: log-uniform in 2-20 mm.
    diameter = float(np.exp(rng.uniform(np.log(2.0), np.log(20.0))))
    if kind == "sessile":
        diameter = min(diameter, 1.4 * room)
        height = float(min(diameter * rng.uniform(0.25, 0.45), 0.4 * room))
    else:
        # Pedunculated polyps are rarely tiny: redraw the head size in 6-16 mm.
        diameter = float(np.clip(rng.uniform(6.0, 16.0), 4.0, 0.4 * room))
        height = float(min(diameter * rng.uniform(0.5, 1.2), 0.7 * room - diameter))
        height = max(height, 1.0)
    return PolypParams(
        s_mm=s,
        angle_rad=angle,
        kind=kind,
        diameter_mm=float(max(diameter, 2.0)),
        height_mm=height,
        lobulation=float(rng.uniform(0.03, 0.15)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def sample_colon_params(rng: np.random.Generator, **overrides: Any) -> ColonParams:
    """Draw one colon's parameters.

    Args:
        rng: the generator every random number is drawn from.
        **overrides: any :class:`ColonParams` field (e.g. ``length_mm=300.0``), or ``n_polyps`` (int, default
            random 1-4; polyps are drawn after the overrides so they fit the final geometry).

    Returns:
        The parameters.

    Raises:
        SimrealError: for an unknown override or an out-of-range length / polyp count.
    """
    names = {f.name for f in fields(ColonParams)}
    unknown = set(overrides) - names - {"n_polyps"}
    if unknown:
        raise SimrealError(f"unknown colon parameter(s) {sorted(unknown)}; known: {sorted(names | {'n_polyps'})}")
    length = float(overrides.get("length_mm", rng.uniform(220.0, 380.0)))
    if not 20.0 <= length <= 2000.0:
        raise SimrealError(f"colon length must be within 20-2000 mm, got {length}")
    base_r = float(rng.uniform(15.0, 24.0))
    r_max = 30.0
    k_path = 3
    waves = rng.uniform(120.0, 320.0, k_path)
    amp = rng.uniform(0.2, 1.0, (2, k_path))
    # Cap |a'|, |b'| (sum of amp * 2 pi / wavelength) so the bend radius stays above 1.5 r_max.
    bound = 1.0 / (1.5 * r_max)
    worst = (amp * _TWO_PI / waves).sum(axis=1).max()
    amp *= min(1.0, bound / worst)
    phases = rng.uniform(0.0, _TWO_PI, (2, k_path))
    r_waves = rng.uniform(60.0, 200.0, 2)
    r_amps = rng.uniform(0.03, 0.12, 2)
    r_phases = rng.uniform(0.0, _TWO_PI, 2)
    folds, pos = [], float(rng.uniform(5.0, 25.0))
    while pos < length:
        folds.append(pos)
        pos += float(rng.uniform(20.0, 35.0))
    drawn = dict(
        length_mm=length,
        ring_spacing_mm=1.0,
        n_angular=224,
        path_wavelengths_mm=tuple(waves.tolist()),
        path_amp_x=tuple(amp[0].tolist()),
        path_amp_y=tuple(amp[1].tolist()),
        path_phase_x=tuple(phases[0].tolist()),
        path_phase_y=tuple(phases[1].tolist()),
        base_radius_mm=base_r,
        radius_wavelengths_mm=tuple(r_waves.tolist()),
        radius_amps=tuple(r_amps.tolist()),
        radius_phases=tuple(r_phases.tolist()),
        radius_min_mm=12.0,
        radius_max_mm=r_max,
        fold_positions_mm=tuple(folds),
        fold_depth=float(rng.uniform(0.15, 0.35)),
        fold_half_width_mm=float(rng.uniform(3.0, 5.0)),
        fold_sector_shift_mm=tuple(rng.uniform(-6.0, 6.0, 3).tolist()),
        taenia_angle_rad=float(rng.uniform(0.0, _TWO_PI)),
        taenia_depth=float(rng.uniform(0.05, 0.12)),
        taenia_width_rad=float(rng.uniform(0.08, 0.16)),
        relief_amplitude_mm=float(rng.uniform(0.15, 0.5)),
        relief_scale_mm=float(rng.uniform(2.0, 4.0)),
        texture_seed=int(rng.integers(0, 2**31 - 1)),
    )
    drawn.update({k: v for k, v in overrides.items() if k != "n_polyps"})
    params = ColonParams(**drawn)
    if "polyps" not in overrides:
        n_polyps = int(overrides.get("n_polyps", rng.integers(1, 5)))
        if not 0 <= n_polyps <= 255:
            raise SimrealError(f"number of polyps must be within 0-255, got {n_polyps}")
        params = replace(params, polyps=tuple(_draw_polyp(rng, params) for _ in range(n_polyps)))
    return params


# ------------------------------------------------------------------------------------------- geometry


def centerline_frames(params: ColonParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centerline points and parallel-transport frames.

    Returns:
        s (K,) arc lengths in mm, points (K, 3) mm, tangents, normals and binormals (K, 3) unit vectors
        (``binormal = tangent x normal``), one per ring.
    """
    n = int(round(params.length_mm / params.ring_spacing_mm)) + 1
    s = np.linspace(0.0, params.length_mm, n)
    a = np.zeros(n)
    b = np.zeros(n)
    for lam, ax, ay, px, py in zip(
        params.path_wavelengths_mm, params.path_amp_x, params.path_amp_y, params.path_phase_x, params.path_phase_y
    ):
        a += ax * np.sin(_TWO_PI * s / lam + px)
        b += ay * np.sin(_TWO_PI * s / lam + py)
    heading = np.stack([a, b, np.ones(n)], axis=1)
    heading /= np.linalg.norm(heading, axis=1, keepdims=True)
    # Midpoint rule: each step of length ds moves along the mean heading of its two ends.
    step = 0.5 * (heading[1:] + heading[:-1])
    step /= np.linalg.norm(step, axis=1, keepdims=True)
    points = np.concatenate([np.zeros((1, 3)), np.cumsum(step * np.diff(s)[:, None], axis=0)])
    tangents = heading
    normals = np.empty_like(tangents)
    ref = np.array([1.0, 0.0, 0.0]) if abs(tangents[0, 0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    normals[0] = ref - tangents[0] * (ref @ tangents[0])
    normals[0] /= np.linalg.norm(normals[0])
    # Double-reflection parallel transport (Wang et al. 2008): rotation-minimising, so no twist.
    for i in range(n - 1):
        v1 = points[i + 1] - points[i]
        c1 = v1 @ v1
        r_l = normals[i] - (2.0 / c1) * (v1 @ normals[i]) * v1
        t_l = tangents[i] - (2.0 / c1) * (v1 @ tangents[i]) * v1
        v2 = tangents[i + 1] - t_l
        c2 = v2 @ v2
        nxt = r_l - (2.0 / c2) * (v2 @ r_l) * v2 if c2 > 1e-20 else r_l
        nxt -= tangents[i + 1] * (nxt @ tangents[i + 1])
        normals[i + 1] = nxt / np.linalg.norm(nxt)
    binormals = np.cross(tangents, normals)
    return s, points, tangents, normals, binormals


def _grid_normals(grid: np.ndarray) -> np.ndarray:
    """(R, A, 3) unit normals of a ring grid (angles wrap), pointing along d(row) x d(angle)."""
    d_row = np.gradient(grid, axis=0)
    d_ang = 0.5 * (np.roll(grid, -1, axis=1) - np.roll(grid, 1, axis=1))
    n = np.cross(d_row, d_ang)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def _end_caps(grid: np.ndarray, tangent: np.ndarray, n_rings: int = 8, depth: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """Blind-end domes closing both ends of the wall grid.

    Each dome shrinks the end ring towards its centre along a quarter ellipse while moving outward along
    the end tangent by up to ``depth`` times the mean end radius, and ends in a pole vertex.

    Args:
        grid: (K, A, 3) wall vertices (rows along the centerline, columns anticlockwise about it).
        tangent: (K, 3) unit centerline tangents.
        n_rings: rings per dome besides the pole.
        depth: dome depth relative to the end radius.

    Returns:
        vertices (2 * (n_rings * A + 1), 3) appended after the K * A wall vertices, and faces (F, 3)
        indexing the combined array, wound like the wall (normals into the lumen).
    """
    k, a, _ = grid.shape
    beta = np.linspace(0.0, np.pi / 2, n_rings + 2)[1:-1]  # 0 = the wall's end ring, pi/2 = the pole
    verts, faces = [], []
    offset = k * a
    for end, row, out in ((0, 0, -tangent[0]), (1, k - 1, tangent[-1])):
        ring = grid[row]
        centre = ring.mean(axis=0)
        r_end = float(np.linalg.norm(ring - centre, axis=1).mean())
        rings = centre + np.cos(beta)[:, None, None] * (ring - centre)[None] + (
            depth * r_end * np.sin(beta)
        )[:, None, None] * out  # (n_rings, A, 3), from the wall towards the pole
        pole = centre + depth * r_end * out
        idx = offset + np.arange(n_rings * a).reshape(n_rings, a)
        pole_idx = offset + n_rings * a
        # Rows ordered along +s, as in the wall grid, so the same quad winding points into the lumen.
        rows = np.concatenate([idx[::-1], np.arange(a)[None]]) if end == 0 else np.concatenate(
            [((k - 1) * a + np.arange(a))[None], idx]
        )
        j = np.arange(a)
        j1 = (j + 1) % a
        ra, rb = rows[:-1], rows[1:]
        faces.append(np.stack([ra[:, j], rb[:, j], ra[:, j1]], -1).reshape(-1, 3))
        faces.append(np.stack([rb[:, j], rb[:, j1], ra[:, j1]], -1).reshape(-1, 3))
        if end == 0:  # the pole comes before the first row
            faces.append(np.stack([rows[0, j], rows[0, j1], np.full(a, pole_idx)], -1))
        else:
            faces.append(np.stack([rows[-1, j], np.full(a, pole_idx), rows[-1, j1]], -1))
        verts.extend([rings.reshape(-1, 3), pole[None]])
        offset = pole_idx + 1
    return np.concatenate(verts), np.concatenate(faces)


def build_colon(params: ColonParams) -> AnatomyMesh:
    """Build the colon mesh from its parameters (deterministic).

    Args:
        params: from :func:`sample_colon_params`.

    Returns:
        The mesh: wall and end-dome faces label 0 / instance 0, then polyp k's faces label 1 / instance k. Face normals
        point into the lumen. ``centerline`` is sampled every ``ring_spacing_mm`` in fly-through order;
        ``centerline_radius`` is the mean centerline-to-wall distance of each ring.

    Raises:
        SimrealError: for parameters outside their valid range.
    """
    if params.n_angular < 8 or params.ring_spacing_mm <= 0 or params.length_mm <= 2 * params.ring_spacing_mm:
        raise SimrealError("colon needs n_angular >= 8 and a length of several ring spacings")
    if len(params.polyps) > 255:
        raise SimrealError(f"at most 255 polyps fit the uint8 instance ids, got {len(params.polyps)}")
    for k, p in enumerate(params.polyps, 1):
        if not (2.0 <= p.diameter_mm <= 20.0) or not (0.0 <= p.s_mm <= params.length_mm) or p.height_mm <= 0:
            raise SimrealError(f"polyp {k}: diameter must be 2-20 mm and position within the colon, got {p}")
    s, centre, tangent, normal, binormal = centerline_frames(params)
    theta = np.linspace(0.0, _TWO_PI, params.n_angular, endpoint=False)
    radius = wall_radius(params, s[:, None], theta[None, :])  # (K, A)
    radial = np.cos(theta)[None, :, None] * normal[:, None] + np.sin(theta)[None, :, None] * binormal[:, None]
    grid = centre[:, None] + radius[..., None] * radial
    relief = params.relief_amplitude_mm * value_noise(grid.reshape(-1, 3), params.relief_scale_mm, params.texture_seed)
    radius = radius + relief.reshape(radius.shape)
    grid = centre[:, None] + radius[..., None] * radial
    # Rows along s, columns anticlockwise about the tangent: d(s) x d(theta) = -radial, into the lumen.
    cap_verts, cap_faces = _end_caps(grid, tangent)
    verts = [np.concatenate([grid.reshape(-1, 3), cap_verts])]
    faces = [np.concatenate([grid_faces(len(s), params.n_angular, wrap_cols=True), cap_faces])]
    labels = [np.full(len(faces[0]), MUCOSA, np.uint8)]
    instances = [np.zeros(len(faces[0]), np.uint8)]
    inward = _grid_normals(grid)
    offset = len(verts[0])
    for k, p in enumerate(params.polyps, 1):
        i = int(np.clip(np.searchsorted(s, p.s_mm), 0, len(s) - 1))
        j = int(np.round(np.mod(p.angle_rad, _TWO_PI) / _TWO_PI * params.n_angular)) % params.n_angular
        pv, pf = polyp_surface(p, grid[i, j], inward[i, j])
        verts.append(pv)
        faces.append(pf + offset)
        labels.append(np.full(len(pf), POLYP, np.uint8))
        instances.append(np.full(len(pf), k, np.uint8))
        offset += len(pv)
    vertices = np.concatenate(verts)
    polyp_meta = [dict(asdict(p), instance=k) for k, p in enumerate(params.polyps, 1)]
    return AnatomyMesh(
        vertices=vertices,
        faces=np.concatenate(faces),
        face_labels=np.concatenate(labels),
        face_instances=np.concatenate(instances),
        vertex_texture=bake_mucosa_texture(vertices, params.texture_seed),
        centerline=centre,
        centerline_radius=radius.mean(axis=1),
        metadata={
            "generator": "procedural-colon",
            "params": asdict(params),
            "polyps": polyp_meta,
            "normals": "into the lumen",
            "units": "mm",
        },
    )


def make_colon(seed: int, **overrides: Any) -> AnatomyMesh:
    """Sample parameters with ``np.random.default_rng(seed)`` and build the colon.

    Args:
        seed: integer seed; the same seed and overrides give identical arrays.
        **overrides: see :func:`sample_colon_params` (e.g. ``length_mm=300.0, n_polyps=2``).
    """
    params = sample_colon_params(np.random.default_rng(seed), **overrides)
    mesh = build_colon(params)
    mesh.metadata["seed"] = int(seed)
    return mesh


def colon_params_from_dict(data: dict[str, Any]) -> ColonParams:
    """Rebuild :class:`ColonParams` from ``asdict`` output (e.g. ``mesh.metadata["params"]`` after a PLY round
    trip), so a stored colon can be rebuilt exactly.

    Raises:
        SimrealError: if fields are missing or unknown.
    """
    names = {f.name for f in fields(ColonParams)}
    if set(data) != names:
        raise SimrealError(f"colon parameters: missing {sorted(names - set(data))}, unknown {sorted(set(data) - names)}")
    try:
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "polyps"}
        polyps = tuple(PolypParams(**p) for p in data["polyps"])
    except TypeError as exc:
        raise SimrealError(f"colon parameters: bad polyp entry ({exc})") from None
    return ColonParams(**values, polyps=polyps)
