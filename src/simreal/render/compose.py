"""The training look's last step in one compiled pass: albedo from the texture, times the light, plus the
highlight and the sensor noise, through the gamma table to 8-bit RGB.

The same float32 operations in the same order as the numpy formulas it replaced (numba without
``fastmath``: no fused multiply-add, no reassociation), so the images are the same bytes.

Example:
    >>> compose_rgb(mottle, vessel, strength, polyp, hit, diffuse, spec, noise, colours, lut, scale, out)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def compose_rgb(mottle, vessel, vessel_strength, polyp, hit, diffuse, spec, noise, colours, lut, scale,
                out):  # pragma: no cover - compiled
    """8-bit RGB of N pixels (all arrays flat, row-major pixels).

    Args:
        mottle, vessel: (N,) float32 texture channels. vessel_strength: float32 scalar.
        polyp: (N,) bool, pixels tinted by the polyp colour. hit: (N,) bool, pixels that see a surface.
        diffuse, spec: (N,) float32 light (:class:`~simreal.render.shading.Lighting`).
        noise: (3, N) float32 sensor noise, or (0, N) for none.
        colours: (4, 3) float32 rows base, dark, vessel colour, polyp tint (linear RGB).
        lut: (65536,) uint8 gamma table. scale: float32 65535.
        out: (N, 3) uint8 written; 0 where ``hit`` is False.
    """
    zero = np.float32(0.0)
    with_noise = noise.shape[0] == 3
    for i in range(mottle.shape[0]):
        if not hit[i]:
            out[i, 0] = 0
            out[i, 1] = 0
            out[i, 2] = 0
            continue
        m = mottle[i]
        ves = vessel[i] * vessel_strength
        for c in range(3):
            base = colours[0, c]
            a = m * (colours[1, c] - base)
            a += base
            a += (colours[2, c] - a) * ves
            if polyp[i]:
                a *= colours[3, c]
            a *= diffuse[i]
            a += spec[i]
            if with_noise:
                a += noise[c, i]
            a *= scale
            a = min(max(a, zero), scale)
            out[i, c] = lut[np.uint16(a)]
