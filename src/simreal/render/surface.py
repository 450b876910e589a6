"""The per-pixel surface behind a hit record: interpolated normal and texture, depth, labels, in one pass.

A compiled (numba) kernel for :func:`~simreal.render.raycast.cast_camera`: from each pixel's first hit
(triangle, distance, barycentrics) it writes every :class:`~simreal.render.raycast.GeometryBuffers` array
in one loop over the pixels. It performs the same float32 operations in the same order as the numpy
formulas it replaced (no fused multiply-add, no reassociation: numba's default, without ``fastmath``),
so the buffers are the same bits; that numpy version stays in tests/render/test_render_raycast.py, which
compares the two.

Example:
    >>> gather_surface(prim, t, u, v, valid, table, labels, instances, rot_t, rays, out)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def gather_surface(prim, t, u, v, valid, face_table, labels, instances, rot_t, rays,
                   depth, normals, mask, instance, hit, distance, cos_view, mottle, vessel):  # pragma: no cover
    """Fill the geometry buffers of N pixels from their hit records (all arrays flat, row-major pixels).

    Args:
        prim: (N,) int32 triangle hit, -1 for none; t, u, v: (N,) float32 distance (units of the ray's
            length) and barycentrics. valid: (N,) bool, pixels that carry a ray.
        face_table: (F, 16) float32 per face: corner normals (0-8: corner 0 xyz, 1, 2), texture (9-14).
        labels, instances: (F,) uint8 class and instance id per triangle.
        rot_t: (3, 3) float32 world-to-camera rotation. rays: (3, N) float32 unit camera-frame rays.
        depth, distance, cos_view, mottle, vessel: (N,) float32 out; normals: (N, 3) float32 out;
            mask, instance: (N,) uint8 out; hit: (N,) bool out. Pixels without a hit get 0 / False.
    """
    one = np.float32(1.0)
    tiny = np.float32(1e-12)
    zero = np.float32(0.0)
    for i in range(prim.shape[0]):
        f = prim[i]
        if f < 0 or not valid[i]:
            hit[i] = False
            depth[i] = zero
            distance[i] = zero
            cos_view[i] = zero
            mottle[i] = zero
            vessel[i] = zero
            mask[i] = 0
            instance[i] = 0
            normals[i, 0] = zero
            normals[i, 1] = zero
            normals[i, 2] = zero
            continue
        hit[i] = True
        ui, vi = u[i], v[i]
        wi = one - ui - vi
        n0 = face_table[f, 0] * wi + face_table[f, 3] * ui + face_table[f, 6] * vi
        n1 = face_table[f, 1] * wi + face_table[f, 4] * ui + face_table[f, 7] * vi
        n2 = face_table[f, 2] * wi + face_table[f, 5] * ui + face_table[f, 8] * vi
        norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
        norm = max(norm, tiny)
        n0 /= norm
        n1 /= norm
        n2 /= norm
        mottle[i] = face_table[f, 9] * wi + face_table[f, 11] * ui + face_table[f, 13] * vi
        vessel[i] = face_table[f, 10] * wi + face_table[f, 12] * ui + face_table[f, 14] * vi
        c0 = n0 * rot_t[0, 0] + n1 * rot_t[0, 1] + n2 * rot_t[0, 2]
        c1 = n0 * rot_t[1, 0] + n1 * rot_t[1, 1] + n2 * rot_t[1, 2]
        c2 = n0 * rot_t[2, 0] + n1 * rot_t[2, 1] + n2 * rot_t[2, 2]
        cos = c0 * rays[0, i] + c1 * rays[1, i] + c2 * rays[2, i]
        s = -one if cos > zero else one  # shading normals face the camera
        normals[i, 0] = c0 * s
        normals[i, 1] = c1 * s
        normals[i, 2] = c2 * s
        ti = t[i]
        depth[i] = ti * rays[2, i]
        distance[i] = ti
        cos_view[i] = abs(cos)
        mask[i] = labels[f]
        instance[i] = instances[f]
