"""Ray casting a labelled anatomy mesh with Embree: depth, normals, class and instance ids per pixel.

Embree (``embreex``, imported lazily: only ``render/`` needs it) finds the first triangle each ray hits.
Its single-ray Python binding is fast only when asked for primitive ids alone, so the hit distance and
barycentric coordinates are then recomputed exactly for the hit triangle (Moller-Trumbore, vectorised
float32 numpy): one cheap pass instead of Embree's slow per-ray Python output path.

Example:
    >>> scene = MeshScene(mesh)                               # doctest: +SKIP
    >>> geo = cast_camera(scene, camera)                      # camera.pose must be set
    >>> geo.depth.shape, geo.normals.shape                    # (H, W) mm, (H, W, 3) camera frame
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.camera import camera_ray_valid, camera_rays, camera_rays_columns, rays_to_world


class MeshScene:
    """An anatomy mesh prepared for casting: Embree BVH plus per-face data for exact hit recovery.

    Args:
        mesh: the labelled surface (world mm).

    Attributes:
        mesh: the mesh itself.
        vertex_normals: (V, 3) float32 unit normals.
    """

    def __init__(self, mesh: AnatomyMesh):
        try:
            from embreex import rtcore_scene
            from embreex.mesh_construction import TriangleMesh
        except ImportError as exc:  # pragma: no cover - embreex is a dependency
            raise SimrealError(f"the ray-casting renderer needs embreex ({exc})") from None
        self.mesh = mesh
        v = mesh.vertices.astype(np.float32)
        f = mesh.faces.astype(np.int32)
        self._scene = rtcore_scene.EmbreeScene()
        TriangleMesh(self._scene, v, f)
        self.vertex_normals = mesh.vertex_normals()
        tri = v[f]
        cn = self.vertex_normals[f]
        ct = mesh.vertex_texture[f]
        # One (24, F) table, one row per quantity, so a hit's data is gathered in one take and every
        # later operation runs on contiguous rows: v0 (3), e1 (3), e2 (3), corner normals (9), texture (6).
        self._face_table = np.ascontiguousarray(
            np.concatenate(
                [tri[:, 0], tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], cn.reshape(-1, 9), ct.reshape(-1, 6)],
                axis=1,
            ).T,
            dtype=np.float32,
        )

    def first_hit(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) int32 index of the first triangle each ray hits, -1 for none.

        Args:
            origins: (N, 3) float32, mm. directions: (N, 3) float32 (need not be unit).
        """
        return self._scene.run(origins, directions, output=0)

    def surface_at(self, origin: np.ndarray, directions: np.ndarray, prim: np.ndarray) -> dict[str, np.ndarray]:
        """Exact hit distance, interpolated normal and texture for rays from one origin into known triangles.

        Args:
            origin: (3,) ray origin, mm.
            directions: (3, M) float32 unit directions (world), one column per ray.
            prim: (M,) triangle index each ray hits (all valid).

        Returns:
            ``t`` (M,) distance along the ray, mm; ``u``, ``v`` (M,) barycentrics with
            ``hit = (1 - u - v) p0 + u p1 + v p2``; ``normal`` (3, M) unit interpolated vertex normal
            (world); ``texture`` (2, M).
        """
        g = np.take(self._face_table, prim, axis=1)
        dx, dy, dz = directions
        e1x, e1y, e1z, e2x, e2y, e2z = g[3], g[4], g[5], g[6], g[7], g[8]
        # Moller-Trumbore with the shared origin.
        px = dy * e2z - dz * e2y
        py = dz * e2x - dx * e2z
        pz = dx * e2y - dy * e2x
        det = e1x * px + e1y * py + e1z * pz
        det[np.abs(det) < 1e-30] = 1e-30  # Embree said these rays hit: a degenerate det only at grazing
        inv = np.float32(1.0) / det
        o = np.asarray(origin, np.float32)
        tx, ty, tz = o[0] - g[0], o[1] - g[1], o[2] - g[2]
        u = (tx * px + ty * py + tz * pz) * inv
        qx = ty * e1z - tz * e1y
        qy = tz * e1x - tx * e1z
        qz = tx * e1y - ty * e1x
        v = (dx * qx + dy * qy + dz * qz) * inv
        t = (e2x * qx + e2y * qy + e2z * qz) * inv
        w = np.float32(1.0) - u - v
        n = g[9:12] * w + g[12:15] * u + g[15:18] * v
        n /= np.maximum(np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), np.float32(1e-12))
        tex = g[18:20] * w + g[20:22] * u + g[22:24] * v
        return {"t": t, "u": u, "v": v, "normal": n, "texture": tex}


def rotate_columns(rot: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``rot @ cols`` for a (3, 3) matrix and (3, M) float32 columns, elementwise (no BLAS threads that
    would fight the other render workers for cores)."""
    out = np.empty_like(cols)
    for i in range(3):
        np.multiply(cols[0], rot[i, 0], out=out[i])
        out[i] += cols[1] * rot[i, 1]
        out[i] += cols[2] * rot[i, 2]
    return out


@dataclass
class GeometryBuffers:
    """Per-pixel geometry of one frame (H, W = camera size).

    Attributes:
        depth: (H, W) float32 z-depth in mm, 0 = no surface.
        normals: (H, W, 3) float32 unit shading normals in the camera frame, facing the camera; 0 where
            no surface.
        mask: (H, W) uint8 class id (face label), 0 where no surface.
        instance: (H, W) uint8 instance id, 0 where none.
        hit: (H, W) bool, which pixels see a surface.
        distance: (H, W) float32 distance from the camera centre along the ray, mm (0 = no surface).
        cos_view: (H, W) float32 cosine between the normal and the direction back to the camera.
        cos_axis: (H, W) float32 cosine between the ray and the optical axis (= ray z).
        mottle, vessel: (H, W) float32 interpolated vertex texture channels.
    """

    depth: np.ndarray
    normals: np.ndarray
    mask: np.ndarray
    instance: np.ndarray
    hit: np.ndarray
    distance: np.ndarray
    cos_view: np.ndarray
    cos_axis: np.ndarray
    mottle: np.ndarray
    vessel: np.ndarray


def cast_camera(scene: MeshScene, camera: Camera) -> GeometryBuffers:
    """Cast one ray per pixel of ``camera`` (whose pose must be set) and gather the surface data.

    Returns:
        GeometryBuffers for the frame.
    """
    pose = camera.pose_matrix()
    if pose is None:
        raise SimrealError("cannot render from a camera without a pose")
    h, w = camera.height, camera.width
    d_cam = camera_rays(camera)
    origins, d_world = rays_to_world(d_cam, pose)
    prim = scene.first_hit(origins, d_world)
    hit = (prim >= 0) & camera_ray_valid(camera)
    miss = ~hit
    any_miss = bool(miss.any())
    # Almost every pixel of an endoscope frame sees the wall, so the exact hit data is computed for all
    # pixels (misses point at triangle 0) and the misses are zeroed after: cheaper than gather + scatter.
    p = np.where(hit, prim, 0) if any_miss else prim
    d_cam_t = camera_rays_columns(camera)  # (3, N), cached with the ray buffer
    rot = pose[:3, :3].astype(np.float32)
    s = scene.surface_at(origins[0], rotate_columns(rot, d_cam_t), p)
    n_cam = rotate_columns(np.ascontiguousarray(rot.T), s["normal"])
    cos = n_cam[0] * d_cam_t[0]
    cos += n_cam[1] * d_cam_t[1]
    cos += n_cam[2] * d_cam_t[2]
    n_cam *= np.where(cos > 0, np.float32(-1.0), np.float32(1.0))  # shading normals face the camera
    t = s["t"]
    depth = t * d_cam_t[2]
    cos_view = np.abs(cos)
    mottle, vessel = s["texture"]
    mask = scene.mesh.face_labels[p]
    instance = scene.mesh.face_instances[p]
    normals = np.ascontiguousarray(n_cam.T)
    if any_miss:
        for a in (depth, t, cos_view, mottle, vessel, mask, instance, normals):
            a[miss] = 0
    return GeometryBuffers(
        depth=depth.reshape(h, w),
        normals=normals.reshape(h, w, 3),
        mask=mask.reshape(h, w),
        instance=instance.reshape(h, w),
        hit=hit.reshape(h, w),
        distance=t.reshape(h, w),
        cos_view=cos_view.reshape(h, w),
        cos_axis=d_cam_t[2].reshape(h, w),
        mottle=mottle.reshape(h, w),
        vessel=vessel.reshape(h, w),
    )
