"""Livers: reading meshes into the liver frame (orientation heuristics, repairs, clear errors) and the
per-scene scale and smooth deformation (bounded, deterministic, the surface stays closed and outward)."""

from __future__ import annotations


import numpy as np
import pytest

from simreal.anatomy.liver import (
    LiverDeformation,
    clamp_scale,
    deform_points,
    liver_from_arrays,
    liver_phantom,
    read_liver,
    sample_liver_deformation,
)
from simreal.errors import SimrealError
from simreal_testing import SHARED_DATA

P2ILF = SHARED_DATA / "p2ilf_laparoscopic_liver"


def _rotation(seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).standard_normal(4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _volume(v: np.ndarray, f: np.ndarray) -> float:
    t = v[f]
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pca_orientation_finds_the_phantoms_axes_whatever_its_pose(seed):
    # The phantom's dome is +z, its thin inferior edge +y, its bulky right lobe +x: any rotation of the input
    # must be undone exactly by the liver frame (up to the mesh's asymmetry: within a few degrees).
    rot = _rotation(seed)
    liver = liver_phantom(rotation=rot)
    back = liver.to_liver[:3, :3] @ rot
    assert np.allclose(back, np.eye(3), atol=0.02), back
    assert liver.right_sign == 1.0
    import trimesh

    assert np.allclose(trimesh.Trimesh(liver.vertices, liver.faces).center_mass, 0.0, atol=1e-6)  # volume centroid
    assert np.allclose(np.sort(liver.extent_mm), np.sort(liver_phantom().extent_mm), atol=0.5)


def test_ras_orientation_is_the_fixed_anatomical_map(tmp_path):
    base = liver_phantom()
    ras = liver_from_arrays(base.vertices, base.faces, orientation="ras")
    # x = R, y = -S (inferior), z = A.
    assert np.allclose(ras.to_liver[:3, :3], [[1, 0, 0], [0, 0, -1], [0, 1, 0]])


def test_winding_is_repaired_and_normals_point_outwards(tmp_path):
    base = liver_phantom()
    faces = base.faces.copy()
    faces[::3] = faces[::3, ::-1]  # a third of the faces flipped, and everything inside out
    path = tmp_path / "messy.obj"
    import trimesh

    trimesh.Trimesh(base.vertices, faces[:, ::-1], process=False).export(path)
    liver = read_liver(path)
    assert _volume(liver.vertices, liver.faces) > 0
    assert any("winding" in r for r in liver.source["repairs"])
    assert liver.source["sha256"] and liver.name == "messy"


@pytest.mark.skipif(not (P2ILF / "meshGT.obj").is_file(), reason="P2ILF data not present")
def test_p2ilf_mesh_reads_as_a_closed_liver_of_anatomical_size():
    liver = read_liver(P2ILF / "meshGT.obj")
    assert liver.orientation == "pca"
    assert 180 < liver.extent_mm.max() < 280 and liver.extent_mm[2] == liver.extent_mm.min()
    assert _volume(liver.vertices, liver.faces) > 1e6  # > 1 litre, outward normals


@pytest.mark.parametrize("case", ["missing", "suffix", "garbage", "points", "metres", "open"])
def test_bad_liver_files_raise_one_error_naming_the_file(tmp_path, case):
    path = tmp_path / "liver.obj"
    base = liver_phantom()
    if case == "missing":
        path = tmp_path / "nope.obj"
    elif case == "suffix":
        path = tmp_path / "liver.txt"
        path.write_text("v 0 0 0\n")
    elif case == "garbage":
        path.write_bytes(b"\x89PNG\r\n\x1a\n not a mesh at all")
    elif case == "points":
        path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in base.vertices[:50]))
    elif case == "metres":
        import trimesh

        trimesh.Trimesh(base.vertices / 1000.0, base.faces).export(path)
    else:  # an open surface: the upper half only
        import trimesh

        keep = base.vertices[base.faces].mean(axis=1)[:, 2] > 0
        trimesh.Trimesh(base.vertices, base.faces[keep]).export(path)
    with pytest.raises(SimrealError) as err:
        read_liver(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    expected = {"missing": "not found", "suffix": "unknown liver mesh type", "garbage": "", "points": "not a triangle mesh",
                "metres": "millimetres", "open": "not closed"}[case]
    assert expected in message


def test_deformation_is_bounded_smooth_and_deterministic():
    liver = liver_phantom()
    draws = [sample_liver_deformation(np.random.default_rng(7), liver.extent_mm, displacement_mm=(10.0, 10.0))
             for _ in range(2)]
    assert draws[0] == draws[1]  # same generator state, same field
    d = draws[0]
    moved = deform_points(liver.vertices, d)
    assert np.array_equal(moved, deform_points(liver.vertices, d))
    shift = np.linalg.norm(moved - liver.vertices, axis=1)
    assert shift.max() <= d.max_displacement_mm() + 1e-9 <= 10.0 + 1e-9
    assert shift.max() > 2.0  # it does deform
    assert d.lipschitz() <= 0.35 + 1e-9
    # The surface stays outward (no face turns over) and keeps its volume within the stretch bound.
    t0, t1 = liver.vertices[liver.faces], moved[liver.faces]
    n0 = np.cross(t0[:, 1] - t0[:, 0], t0[:, 2] - t0[:, 0])
    n1 = np.cross(t1[:, 1] - t1[:, 0], t1[:, 2] - t1[:, 0])
    assert ((n0 * n1).sum(axis=1) > 0).all()
    ratio = _volume(moved, liver.faces) / _volume(liver.vertices, liver.faces)
    assert (1 - 0.35) ** 3 < ratio < (1 + 0.35) ** 3
    other = sample_liver_deformation(np.random.default_rng(8), liver.extent_mm)
    assert other != d


def test_strong_fields_are_scaled_down_to_the_lipschitz_bound():
    d = sample_liver_deformation(np.random.default_rng(0), np.array([200.0, 150.0, 90.0]), sigma_mm=(5.0, 5.0),
                                 displacement_mm=(40.0, 40.0), max_lipschitz=0.2)
    assert d.lipschitz() == pytest.approx(0.2)
    assert d.max_displacement_mm() < 40.0
    with pytest.raises(SimrealError, match="sigmas_mm"):
        LiverDeformation(centres_mm=((0.0, 0.0, 0.0),), sigmas_mm=(0.0,), vectors_mm=((1.0, 0.0, 0.0),))


def test_scale_is_clamped_to_anatomical_limits():
    assert clamp_scale(1.5, 200.0, (150.0, 280.0)) == pytest.approx(1.4)
    assert clamp_scale(0.5, 200.0, (150.0, 280.0)) == pytest.approx(0.75)
    assert clamp_scale(1.1, 200.0, (150.0, 280.0)) == pytest.approx(1.1)


def test_organ_surfaces_are_closed_and_outward():
    import trimesh

    from simreal.anatomy.abdomen import (
        FatLump,
        GallbladderParams,
        LigamentParams,
        WallParams,
        build_fat_lump,
        build_gallbladder,
        build_ligament,
        build_wall,
    )

    liver = liver_phantom()
    wall = WallParams(centre_mm=(0.0, 60.0, 60.0), radii_mm=(200.0, 220.0, 220.0), bump_mm=8.0, rotation_deg=(5, 6, 7))
    built = [
        build_gallbladder(GallbladderParams((0, 0, 0), (0, 1, -0.3), (0, 0, 1), 70, 30, rotation_deg=(10, 20, 30))),
        build_fat_lump(FatLump((0, 0, 0), (12, 10, 7), 0.5, 2, (1, 2, 3))),
        build_wall(wall),
        build_ligament(LigamentParams(x_mm=10, y_mm=(-40, 60), height_mm=30, tilt_deg=10), liver.vertices, liver.faces, wall),
    ]
    for v, f, tex in built:
        m = trimesh.Trimesh(v, f, process=False)
        assert m.is_watertight and m.is_winding_consistent and m.volume > 0
        assert tex.shape == (len(v), 2) and 0 <= tex.min() and tex.max() <= 1
    # The ligament stands on the liver: its lowest points lie inside it, its top above it.
    lig = built[-1][0]
    inside = trimesh.Trimesh(liver.vertices, liver.faces).contains(lig)
    assert inside.any() and not inside.all()
    # The wall keeps within its bump bound of the ellipsoid.
    r = wall.normalised_radius(built[2][0])
    assert np.abs(r - 1).max() <= wall.bump_mm / min(wall.radii_mm) + 1e-9


def test_a_simreal_ct_mesh_is_read_in_ras_and_a_colon_style_ply_too(tmp_path):
    from simreal.anatomy.mesh import AnatomyMesh, save_mesh

    base = liver_phantom()
    n_v, n_f = len(base.vertices), len(base.faces)
    for generator, expected in (("ct-surface", "ras"), ("procedural", "pca")):
        mesh = AnatomyMesh(vertices=base.vertices, faces=base.faces, face_labels=np.zeros(n_f),
                           face_instances=np.zeros(n_f), vertex_texture=np.zeros((n_v, 2)),
                           centerline=np.zeros((2, 3)), centerline_radius=np.ones(2), metadata={"generator": generator})
        path = save_mesh(mesh, tmp_path / f"{generator}.ply")
        liver = read_liver(path)
        assert liver.orientation == expected and liver.source["format"] == "simreal-ply"
