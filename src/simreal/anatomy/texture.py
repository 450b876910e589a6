"""Procedural mucosa texture pattern baked per vertex, from world coordinates.

The pattern depends only on a vertex's position in world millimetres (and a seed), never on the mesh
topology, so procedural and CT-derived meshes get the same kind of surface detail at the same physical
scale. Two channels in [0, 1] are baked; the renderer turns them into colour per frame:

* channel 0, *mottling*: smooth 3-D value noise with a few-millimetre feature size;
* channel 1, *vessels*: thin (about 1 mm) branching-looking ridges, taken where a smooth noise field crosses
  zero (``|n|`` small), at two scales (larger vessels and finer capillaries).

Example:
    >>> import numpy as np
    >>> tex = bake_mucosa_texture(np.zeros((4, 3)), seed=0)
    >>> tex.shape, tex.dtype
    ((4, 2), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

from simreal.errors import SimrealError

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# Large odd constants: one per axis so that lattice points on different axes hash differently.
_PRIMES = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))


def _hash_unit(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Map integer lattice coordinates to pseudo-random floats in [-1, 1] (splitmix64 finaliser)."""
    with np.errstate(over="ignore"):
        h = (
            ix.astype(np.int64).view(np.uint64) * _PRIMES[0]
            ^ iy.astype(np.int64).view(np.uint64) * _PRIMES[1]
            ^ iz.astype(np.int64).view(np.uint64) * _PRIMES[2]
            ^ np.uint64(seed & 0xFFFFFFFF) * np.uint64(0xD6E8FEB86659FD93)
        )
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) * (2.0 / 2.0**53) - 1.0


def value_noise(points: np.ndarray, scale_mm: float, seed: int) -> np.ndarray:
    """Smooth 3-D value noise (quintic-interpolated random lattice values).

    Args:
        points: (N, 3) positions in mm.
        scale_mm: lattice spacing in mm (the feature size).
        seed: integer seed; different seeds give independent fields.

    Returns:
        (N,) float64 in [-1, 1], C2-smooth in space, mean about 0.
    """
    q = np.asarray(points, dtype=np.float64) / float(scale_mm)
    i0 = np.floor(q)
    f = q - i0
    u = f * f * f * (f * (f * 6.0 - 15.0) + 10.0)  # quintic fade: continuous second derivative
    i0 = i0.astype(np.int64)
    out = np.zeros(len(q))
    for dx in (0, 1):
        wx = u[:, 0] if dx else 1.0 - u[:, 0]
        for dy in (0, 1):
            wy = u[:, 1] if dy else 1.0 - u[:, 1]
            for dz in (0, 1):
                wz = u[:, 2] if dz else 1.0 - u[:, 2]
                out += wx * wy * wz * _hash_unit(i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz, seed)
    return out


def fractal_noise(points: np.ndarray, scale_mm: float, seed: int, octaves: int = 3, gain: float = 0.5) -> np.ndarray:
    """Sum of ``octaves`` value-noise layers, each at half the scale and ``gain`` times the amplitude.

    Returns:
        (N,) float64, normalised so the amplitudes sum to 1 (values within [-1, 1]).
    """
    total = np.zeros(len(points))
    amp, norm = 1.0, 0.0
    # A fixed rotation-like shear per octave hides the axis-aligned lattice.
    shear = np.array([[0.8, 0.6, 0.0], [-0.48, 0.64, 0.6], [0.36, -0.48, 0.8]])
    p = np.asarray(points, dtype=np.float64)
    for k in range(octaves):
        total += amp * value_noise(p, scale_mm / 2.0**k, seed + 7919 * k)
        norm += amp
        amp *= gain
        p = p @ shear.T
    return total / norm


def bake_mucosa_texture(
    vertices: np.ndarray,
    rng: np.random.Generator | int,
    *,
    mottle_scale_mm: float = 4.0,
    vessel_scale_mm: float = 9.0,
    vessel_width: float = 0.07,
) -> np.ndarray:
    """Bake the two-channel mucosa pattern at each vertex.

    Args:
        vertices: (V, 3) positions in world mm.
        rng: a ``np.random.Generator`` (one integer is drawn from it) or an integer seed.
        mottle_scale_mm: feature size of the mottling, mm.
        vessel_scale_mm: feature size of the large vessel network, mm (capillaries at 0.45x).
        vessel_width: half-width of a ridge in noise units; about 1 mm wide ridges at the default scale.

    Returns:
        (V, 2) float32 in [0, 1]: channel 0 mottling, channel 1 vessel strength (1 = on a vessel).

    Raises:
        SimrealError: if ``vertices`` is not (V, 3) or holds NaN/inf.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise SimrealError(f"vertices must be (V, 3), got {v.shape}")
    if not np.isfinite(v).all():
        raise SimrealError("vertices hold NaN/inf")
    seed = int(rng.integers(0, 2**31 - 1)) if isinstance(rng, np.random.Generator) else int(rng)
    mottle = fractal_noise(v, mottle_scale_mm, seed, octaves=3)
    # Value noise is concentrated near 0; stretch so the channel uses most of [0, 1].
    mottle = np.clip(0.5 + 1.6 * mottle, 0.0, 1.0)

    def ridges(scale: float, s: int) -> np.ndarray:
        n = fractal_noise(v, scale, s, octaves=2, gain=0.35)
        return np.clip(1.0 - np.abs(n) / vessel_width, 0.0, 1.0) ** 1.5

    big = ridges(vessel_scale_mm, seed + 101)
    small = ridges(0.45 * vessel_scale_mm, seed + 202)
    # Capillaries are fainter and appear only where a second field allows: a patchy, branching look.
    gate = np.clip(0.5 + 2.0 * value_noise(v, 2.0 * vessel_scale_mm, seed + 303), 0.0, 1.0)
    vessels = np.maximum(big, 0.6 * small * gate)
    return np.stack([mottle, vessels], axis=1).astype(np.float32)
