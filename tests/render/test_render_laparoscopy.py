"""The laparoscopy forward model: depth against closed forms, tools in front of tissue with their instance,
masks that agree with a ray cast of the whole scene, every class seen, tools that enter from the border,
poses that project where they were aimed, and the same seed giving the same bytes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simreal.anatomy.abdomen import WallParams
from simreal.anatomy.abdomen_classes import LIVER, TOOL_SHAFT, TOOL_TIP, WALL
from simreal.anatomy.liver import LiverDeformation, liver_phantom
from simreal.anatomy.mesh import AnatomyMesh
from simreal.render.camera import camera_rays
from simreal.render.laparoscopy import (
    CameraPlacement,
    LaparoscopyFrameParams,
    LaparoscopyRenderer,
    render_frame,
    sample_shading,
)
from simreal.render.laparoscopy_config import LaparoscopyAppearanceConfig
from simreal.render.laparoscopy_scene import SceneParams, ToolParams, build_tools
from simreal.render.raycast import MeshScene

SIZE = 32
SPHERE_C, SPHERE_R, PLANE_Z = np.array([10.0, -5.0, 200.0]), 50.0, 400.0


def _mesh(parts) -> AnatomyMesh:
    from simreal.anatomy.abdomen_classes import LAPAROSCOPY_CLASSES

    v, f, lab, off = [], [], [], 0
    for verts, faces, label in parts:
        v.append(verts)
        f.append(faces + off)
        lab.append(np.full(len(faces), label))
        off += len(verts)
    v = np.concatenate(v)
    return AnatomyMesh(vertices=v, faces=np.concatenate(f), face_labels=np.concatenate(lab),
                       face_instances=np.zeros(sum(len(x) for x in f)), vertex_texture=np.zeros((len(v), 2)),
                       centerline=np.zeros((2, 3)), centerline_radius=np.ones(2), classes=LAPAROSCOPY_CLASSES)


@pytest.fixture(scope="module")
def sphere_scene() -> MeshScene:
    import trimesh

    s = trimesh.creation.icosphere(subdivisions=5, radius=SPHERE_R)
    plane_v = np.array([[-2000, -2000, PLANE_Z], [2000, -2000, PLANE_Z], [2000, 2000, PLANE_Z], [-2000, 2000, PLANE_Z]])
    return MeshScene(_mesh([(np.asarray(s.vertices) + SPHERE_C, np.asarray(s.faces), LIVER),
                            (plane_v, np.array([[0, 1, 2], [0, 2, 3]]), WALL)]))


def _params(tools=(), pose=np.eye(4), stop=0.0) -> LaparoscopyFrameParams:
    scene = SceneParams(liver_index=0, scale=1.0, deformation=LiverDeformation(),
                        wall=WallParams(centre_mm=(0.0, 0.0, 0.0), radii_mm=(500.0, 500.0, 500.0)))
    return LaparoscopyFrameParams(
        scene_index=0, scene=scene, pose=tuple(map(tuple, pose)), fov_deg=80.0,
        placement=CameraPlacement(distance_mm=0.0, elevation_deg=0.0, azimuth_deg=0.0, offcentre_deg=0.0, roll_deg=0.0),
        tools=tuple(tools), shading=sample_shading(np.random.default_rng(0), LaparoscopyAppearanceConfig()),
        field_stop_radius=stop,
    )


def test_depth_and_normals_equal_the_closed_form_sphere_and_plane(sphere_scene):
    frame = render_frame(sphere_scene, _params(), SIZE)
    d = camera_rays(frame.camera).astype(np.float64)  # camera at the origin looking along +z
    b = d @ SPHERE_C
    disc = b * b - SPHERE_C @ SPHERE_C + SPHERE_R**2
    on_sphere = disc > 0
    t = b - np.sqrt(np.where(on_sphere, disc, 0.0))
    expected = np.where(on_sphere, t * d[:, 2], PLANE_Z / d[:, 2] * d[:, 2]).reshape(SIZE, SIZE)
    clear = (np.abs(disc) > 0.05 * SPHERE_R**2).reshape(SIZE, SIZE)  # away from the silhouette's tessellation
    assert clear.sum() > 0.8 * SIZE * SIZE and on_sphere.sum() > 50
    mask = frame.mask
    assert np.array_equal(mask[clear], np.where(on_sphere.reshape(SIZE, SIZE), LIVER, WALL)[clear])
    sphere = clear & (mask == LIVER)
    assert np.abs(frame.depth[sphere] - expected[sphere]).max() < 0.05  # mm: the facets' sagitta
    assert np.abs(frame.depth[clear & (mask == WALL)] - PLANE_Z).max() < 1e-3
    p = (t[:, None] * d).reshape(SIZE, SIZE, 3)
    n = (p - SPHERE_C) / SPHERE_R
    assert (np.einsum("ijk,ijk->ij", frame.normals, n)[sphere] > 0.999).all()
    assert frame.image[sphere].mean() > 10  # lit


def test_a_tool_in_front_is_labelled_and_carries_its_instance(sphere_scene):
    # A 10 mm shaft crossing the view 100 mm ahead, pointing right (+x), its jaws at the image centre.
    pose = np.eye(4)
    pose[:3, :3] = [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]  # tool z = camera +x
    pose[:3, 3] = [-15.0, 0.0, 100.0]
    tool = ToolParams(instance=1, pose=tuple(map(tuple, pose)), shaft_diameter_mm=10.0, shaft_length_mm=300.0,
                      joint_length_mm=6.0, jaw_length_mm=12.0, jaw_open_deg=20.0)
    frame = render_frame(sphere_scene, _params([tool]), SIZE)
    tool_px = np.isin(frame.mask, [TOOL_SHAFT, TOOL_TIP])
    assert np.array_equal(frame.instance != 0, tool_px) and set(np.unique(frame.instance)) == {0, 1}
    row = frame.mask[SIZE // 2]
    assert (row[:4] == TOOL_SHAFT).all()  # the shaft reaches the left border
    assert TOOL_TIP in row
    # Depth of the shaft's near side in closed form: the ray t (x, y, 1) meets (t y)^2 + (t - 100)^2 = 5^2.
    shaft = frame.mask == TOOL_SHAFT
    y = camera_rays(frame.camera)[:, 1] / camera_rays(frame.camera)[:, 2]
    y = y.reshape(SIZE, SIZE).astype(np.float64)
    a, b, c = y * y + 1.0, -200.0, 100.0**2 - 25.0
    t = (-b - np.sqrt(np.maximum(b * b - 4 * a * c, 0.0))) / (2 * a)
    assert shaft.sum() >= 8
    assert np.abs(frame.depth[shaft] - t[shaft]).max() < 0.1  # mm: a 20-gon deviates 0.06 mm from the circle


def test_field_stop_clears_every_label_outside_the_circle(sphere_scene):
    frame = render_frame(sphere_scene, _params(stop=1.0), SIZE)
    yy, xx = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2
    outside = xx**2 + yy**2 > (SIZE / 2) ** 2
    assert outside.any()
    for a in (frame.mask, frame.depth, frame.instance, frame.image, frame.normals):
        assert not a[outside].any()
    assert frame.mask[~outside].all()


@pytest.fixture(scope="module")
def renderer() -> LaparoscopyRenderer:
    return LaparoscopyRenderer([liver_phantom()])


@pytest.fixture(scope="module")
def frames(renderer):
    out = []
    for s in range(4):
        scene = renderer.sample_scene(np.random.default_rng(np.random.SeedSequence([3, 0x5CE7E, s])))
        for i in range(3):
            params = renderer.sample(np.random.default_rng(np.random.SeedSequence([3, 3 * s + i])), scene=scene,
                                     scene_index=s)
            out.append(renderer.render(params, 24))
    return out


def test_every_class_appears_in_a_small_set(frames):
    seen = set()
    for f in frames:
        seen |= set(np.unique(f.mask).tolist())
    assert seen == set(range(8))
    # The liver is the scene's subject: it is seen in every frame, and covers a good part of most.
    share = [float((f.mask == LIVER).mean()) for f in frames]
    assert min(share) > 0.02 and np.median(share) > 0.2


def test_masks_agree_with_a_ray_cast_of_the_whole_scene(renderer, frames):
    from simreal.render.laparoscopy_scene import _assemble

    for f in frames:
        scene, _ = renderer.scene(f.params.scene)
        parts = [(scene.mesh.vertices, scene.mesh.faces, scene.mesh.vertex_texture, 0, 0)]
        tools = build_tools(f.params.tools)
        if tools is not None:
            parts.append((tools.vertices, tools.faces, tools.vertex_texture, 0, 0))
        whole = _assemble(parts, np.zeros((2, 3)), {})
        labels = np.concatenate([scene.mesh.face_labels] + ([tools.face_labels] if tools is not None else []))
        rays = camera_rays(f.camera)
        pose = f.camera.pose_matrix()
        d = (rays @ pose[:3, :3].T).astype(np.float32)
        o = np.broadcast_to(pose[:3, 3].astype(np.float32), d.shape).copy()
        prim = MeshScene(whole).first_hit(o, d)
        expected = np.where(prim >= 0, labels[np.maximum(prim, 0)], 0).reshape(f.mask.shape)
        inside = f.depth > 0
        assert np.array_equal(f.mask[inside], expected[inside])
        assert not f.mask[~inside].any()


def test_tools_enter_from_the_border_and_their_poses_project_where_aimed(frames):
    n_tools = 0
    for f in frames:
        pose = f.camera.pose_matrix()
        to_cam = np.linalg.inv(pose)
        for tool in f.params.tools:
            n_tools += 1
            tip = to_cam[:3, :3] @ tool.tip_mm() + to_cam[:3, 3]
            half = math.tan(math.radians(f.params.fov_deg) / 2)
            assert tip[2] > 0
            assert np.allclose(tip[:2] / tip[2] / half, tool.tip_pixel, atol=1e-6)
            axis = to_cam[:3, :3] @ np.asarray(tool.pose)[:3, 2]
            assert axis[2] > 0  # the shaft points away from the camera, towards the tip
            shaft = (f.mask == TOOL_SHAFT) & (f.instance == tool.instance)
            if shaft.sum() >= 3:
                # It leaves the image (or the field stop): some shaft pixel touches the edge of what is seen.
                seen = f.depth > 0
                edge = np.zeros_like(seen)
                edge[[0, -1], :] = edge[:, [0, -1]] = True
                from scipy import ndimage

                edge |= seen & ~ndimage.binary_erosion(seen, border_value=0)
                assert (shaft & edge).any()
    assert n_tools >= 4


def test_same_params_same_bytes_and_records_round_trip(renderer, frames):
    f = frames[1]
    again = renderer.render(LaparoscopyFrameParams.from_dict(f.params.to_dict()), 24)
    for k, a in f.arrays().items():
        assert np.array_equal(a, again.arrays()[k]), k
    rng = [np.random.default_rng(11) for _ in range(2)]
    p0, p1 = renderer.sample(rng[0]), renderer.sample(rng[1])
    assert p0 == p1
    assert renderer.sample(np.random.default_rng(12)) != p0
