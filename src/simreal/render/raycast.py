"""Ray casting a labelled anatomy mesh with Embree: depth, normals, class and instance ids per pixel.

Embree (``embreex``, imported lazily: only ``render/`` needs it) finds the first triangle each ray hits
and returns its distance and barycentric coordinates with it (as fast as asking for the triangle alone),
so the per-pixel normal and texture are interpolated from those: no second intersection pass. For pinhole
cameras the first hits can come from a rasteriser instead (``visibility="raster"``,
:mod:`simreal.render.raster`): the exact hit of the same rays, several times cheaper for a camera inside a
tube. Either way one compiled pass (:mod:`simreal.render.surface`) turns the hits into the buffers.

Example:
    >>> scene = MeshScene(mesh)                               # doctest: +SKIP
    >>> geo = cast_camera(scene, camera)                      # camera.pose must be set
    >>> geo.depth.shape, geo.normals.shape                    # (H, W) mm, (H, W, 3) camera frame
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh
from simreal.data.format import Camera
from simreal.errors import SimrealError
from simreal.render.camera import camera_ray_valid, camera_rays_columns, rotate_columns

if TYPE_CHECKING:
    from simreal.render.raster import TriangleTable


class MeshScene:
    """An anatomy mesh prepared for casting: Embree BVH plus per-face corner normals and texture.

    Args:
        mesh: the labelled surface (world mm).

    Attributes:
        mesh: the mesh itself.
        vertex_normals: (V, 3) float32 unit normals.
        face_table: (F, 16) float32 per face: corner normals (columns 0-8), corner texture (9-14), 0.
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
        self._triangles = None  # the rasteriser's table (simreal.render.raster), built on first use
        cn = self.vertex_normals[f]
        ct = mesh.vertex_texture[f]
        # One (F, 16) table, one row per face, so a hit's data is one 64-byte line: corner normals (9),
        # corner texture (6), padding (1).
        table = np.zeros((len(f), 16), np.float32)
        table[:, :9] = cn.reshape(-1, 9)
        table[:, 9:15] = ct.reshape(-1, 6)
        self.face_table = table

    def raster_hit(
        self, origin: np.ndarray, rot: np.ndarray, directions: np.ndarray, camera: Camera
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """First hits of a pinhole camera's rays by rasterisation (:func:`~simreal.render.raster.first_hit_pinhole`,
        the triangle table built on first use); -1 where no triangle was found."""
        from simreal.render.raster import first_hit_pinhole

        return first_hit_pinhole(self.prepare_raster(), origin, rot, directions, camera)

    def prepare_raster(self) -> TriangleTable:
        """The rasteriser's triangle table (:class:`~simreal.render.raster.TriangleTable`), built once."""
        from simreal.render.raster import TriangleTable

        if self._triangles is None:
            self._triangles = TriangleTable(self.mesh.vertices, self.mesh.faces)
        return self._triangles

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


#: How :func:`cast_camera` finds each pixel's first hit: ``"embree"`` casts every ray with Embree;
#: ``"raster"`` rasterises the mesh with the exact ray test per covered pixel (:mod:`simreal.render.raster`;
#: pinhole cameras, others fall back to Embree) and casts with Embree only the pixels it finds nothing for.
Visibility = Literal["embree", "raster"]
VISIBILITIES: tuple[str, ...] = ("embree", "raster")


def cast_camera(
    scene: MeshScene, camera: Camera, *, visibility: Visibility = "embree", timings: dict[str, float] | None = None,
) -> GeometryBuffers:
    """Cast one ray per pixel of ``camera`` (whose pose must be set) and gather the surface data.

    Args:
        scene: the prepared mesh.
        camera: intrinsics and pose.
        visibility: how the first hits are found (:data:`VISIBILITIES`); both give the first hit of the
            same float32 rays, so the labels agree except at exact ties (a ray through a shared edge).
        timings: if given, receives the wall milliseconds of ``rays_ms`` (ray grid, world rotation),
            ``hit_ms`` (first hits) and ``surface_ms`` (normals, texture, labels).

    Returns:
        GeometryBuffers for the frame.
    """
    from simreal.render.surface import gather_surface

    if visibility not in VISIBILITIES:
        raise SimrealError(f"visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}")
    t0 = time.perf_counter()
    pose = camera.pose_matrix()
    if pose is None:
        raise SimrealError("cannot render from a camera without a pose")
    h, w = camera.height, camera.width
    n = h * w
    d_cam_t = camera_rays_columns(camera)  # (3, N), cached per intrinsics
    rot = pose[:3, :3].astype(np.float32)
    d_world = np.empty((n, 3), np.float32)
    rotate_columns(rot, d_cam_t, out=d_world.T)
    origin = pose[:3, 3].astype(np.float32)
    t1 = time.perf_counter()
    if visibility == "raster" and camera.model == "pinhole":
        prim, t, u, v = scene.raster_hit(origin, rot, d_world, camera)
        todo = np.flatnonzero(prim < 0)
        if len(todo):  # nothing rasterised there: let Embree look (hits nearer than the near plane)
            o = np.empty((len(todo), 3), np.float32)
            o[:] = origin
            p2, t2, u2, v2 = scene.intersect(o, d_world[todo])
            prim[todo], t[todo], u[todo], v[todo] = p2, t2, u2, v2
    else:
        origins = np.empty_like(d_world)
        origins[:] = origin
        prim, t, u, v = scene.intersect(origins, d_world)
    t2 = time.perf_counter()
    depth, distance, cos_view, mottle, vessel = (np.empty(n, np.float32) for _ in range(5))
    normals = np.empty((n, 3), np.float32)
    mask, instance = np.empty(n, np.uint8), np.empty(n, np.uint8)
    hit = np.empty(n, bool)
    gather_surface(prim, t, u, v, camera_ray_valid(camera), scene.face_table, scene.mesh.face_labels,
                   scene.mesh.face_instances, np.ascontiguousarray(rot.T), d_cam_t,
                   depth, normals, mask, instance, hit, distance, cos_view, mottle, vessel)
    if timings is not None:
        t3 = time.perf_counter()
        timings.update(rays_ms=(t1 - t0) * 1e3, hit_ms=(t2 - t1) * 1e3, surface_ms=(t3 - t2) * 1e3)
    return GeometryBuffers(
        depth=depth.reshape(h, w),
        normals=normals.reshape(h, w, 3),
        mask=mask.reshape(h, w),
        instance=instance.reshape(h, w),
        hit=hit.reshape(h, w),
        distance=distance.reshape(h, w),
        cos_view=cos_view.reshape(h, w),
        cos_axis=d_cam_t[2].reshape(h, w),
        mottle=mottle.reshape(h, w),
        vessel=vessel.reshape(h, w),
    )
