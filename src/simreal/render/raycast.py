"""Ray casting a labelled anatomy mesh with Embree: depth, normals, class and instance ids per pixel.

Embree (``embreex``, imported lazily: only ``render/`` needs it) finds the first triangle each ray hits
and returns its distance and barycentric coordinates with it (as fast as asking for the triangle alone),
so the per-pixel normal and texture are interpolated from those: no second intersection pass.

Example:
    >>> scene = MeshScene(mesh)                               # doctest: +SKIP
    >>> geo = cast_camera(scene, camera)                      # camera.pose must be set
    >>> geo.depth.shape, geo.normals.shape                    # (H, W) mm, (H, W, 3) camera frame
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.camera import camera_ray_valid, camera_rays_columns, rotate_columns


class MeshScene:
    """An anatomy mesh prepared for casting: Embree BVH plus per-face corner normals and texture.

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
        cn = self.vertex_normals[f]
        ct = mesh.vertex_texture[f]
        # One (15, F) table, one row per quantity, so a hit's data is gathered in one take and every
        # later operation runs on contiguous rows: corner normals (9), corner texture (6).
        self._face_table = np.ascontiguousarray(
            np.concatenate([cn.reshape(-1, 9), ct.reshape(-1, 6)], axis=1).T, dtype=np.float32
        )

    def first_hit(self, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
        """(N,) int32 index of the first triangle each ray hits, -1 for none.

        Args:
            origins: (N, 3) float32, mm. directions: (N, 3) float32 (need not be unit).
        """
        return self._scene.run(origins, directions, output=0)

    def intersect(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First hit of each ray: Embree's own hit record.

        Args:
            origins: (N, 3) float32, mm. directions: (N, 3) float32.

        Returns:
            ``prim`` (N,) int32 triangle index, -1 for none; ``t`` (N,) float32 distance along the ray in
            units of the direction's length (mm for unit directions); ``u``, ``v`` (N,) float32
            barycentrics with ``hit = (1 - u - v) p0 + u p1 + v p2``. Where ``prim`` is -1 the others
            are meaningless.
        """
        r = self._scene.run(origins, directions, output=1)
        return r["primID"], r["tfar"], r["u"], r["v"]

    def surface_at(self, prim: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interpolated vertex normal and texture at barycentrics (u, v) of triangles ``prim``.

        Args:
            prim: (M,) valid triangle indices. u, v: (M,) float32 barycentrics (:meth:`intersect`).

        Returns:
            ``normal`` (3, M) float32 unit interpolated vertex normal (world); ``texture`` (2, M) float32.
        """
        g = np.take(self._face_table, prim, axis=1)
        w = np.float32(1.0) - u - v
        n = g[0:3] * w + g[3:6] * u + g[6:9] * v
        n /= np.maximum(np.sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]), np.float32(1e-12))
        tex = g[9:11] * w + g[11:13] * u + g[13:15] * v
        return n, tex


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


def cast_camera(scene: MeshScene, camera: Camera, *, timings: dict[str, float] | None = None) -> GeometryBuffers:
    """Cast one ray per pixel of ``camera`` (whose pose must be set) and gather the surface data.

    Args:
        scene: the prepared mesh.
        camera: intrinsics and pose.
        timings: if given, receives the wall milliseconds of ``rays_ms`` (ray grid, world rotation),
            ``hit_ms`` (Embree) and ``surface_ms`` (normals, texture, labels).

    Returns:
        GeometryBuffers for the frame.
    """
    t0 = time.perf_counter()
    pose = camera.pose_matrix()
    if pose is None:
        raise SimrealError("cannot render from a camera without a pose")
    h, w = camera.height, camera.width
    d_cam_t = camera_rays_columns(camera)  # (3, N), cached per intrinsics
    rot = pose[:3, :3].astype(np.float32)
    d_world = np.empty((h * w, 3), np.float32)
    rotate_columns(rot, d_cam_t, out=d_world.T)
    origins = np.empty_like(d_world)
    origins[:] = pose[:3, 3].astype(np.float32)
    t1 = time.perf_counter()
    prim, t, u, v = scene.intersect(origins, d_world)
    t2 = time.perf_counter()
    hit = (prim >= 0) & camera_ray_valid(camera)
    miss = ~hit
    any_miss = bool(miss.any())
    # Almost every pixel of an endoscope frame sees the wall, so the surface data are computed for all
    # pixels (misses point at triangle 0) and the misses are zeroed after: cheaper than gather + scatter.
    p = np.where(hit, prim, 0) if any_miss else prim
    if any_miss:
        u, v = np.where(hit, u, np.float32(0)), np.where(hit, v, np.float32(0))
    n_world, (mottle, vessel) = scene.surface_at(p, u, v)
    n_cam = rotate_columns(np.ascontiguousarray(rot.T), n_world)
    cos = n_cam[0] * d_cam_t[0]
    cos += n_cam[1] * d_cam_t[1]
    cos += n_cam[2] * d_cam_t[2]
    n_cam *= np.where(cos > 0, np.float32(-1.0), np.float32(1.0))  # shading normals face the camera
    depth = t * d_cam_t[2]
    cos_view = np.abs(cos)
    mask = scene.mesh.face_labels[p]
    instance = scene.mesh.face_instances[p]
    normals = np.ascontiguousarray(n_cam.T)
    if any_miss:
        for a in (depth, t, cos_view, mottle, vessel, mask, instance, normals):
            a[miss] = 0
    if timings is not None:
        t3 = time.perf_counter()
        timings.update(rays_ms=(t1 - t0) * 1e3, hit_ms=(t2 - t1) * 1e3, surface_ms=(t3 - t2) * 1e3)
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
