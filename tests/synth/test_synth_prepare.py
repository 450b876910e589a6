"""CT -> slice dataset: orientation (NIfTI = DICOM, radiological display), masks aligned, windows,
montages as the released code selects them, patient groups and splits, one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from synth_fixtures import SPACING, phantom, write_dicom_series, write_nifti, write_png_masks

from simreal.data.format import CTInfo, DatasetInfo, FormatError
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError
from simreal.synth.prepare import (
    CTCase,
    PrepareConfig,
    fit_square,
    montage_starts,
    parse_label,
    parse_window,
    patient_split,
    prepare_ct_dataset,
    tile_montage,
    window_to_uint8,
)
from simreal_testing import SHARED_DATA

LIVER = PrepareConfig(labels=("organ=5",), size=None, z_range="all")


@pytest.fixture(scope="module")
def volumes(tmp_path_factory) -> dict[str, Path]:
    """The same phantom as a DICOM series (+ DICOM mask series, + PNG masks) and as NIfTI in two axis orders."""
    root = tmp_path_factory.mktemp("ct")
    hu, labels = phantom()
    files = write_dicom_series(root / "dicom", hu)
    write_dicom_series(root / "dicom_masks", labels.astype(np.float32))
    write_png_masks(root / "png_masks", labels, files)
    write_nifti(root / "ras.nii.gz", hu)
    write_nifti(root / "ras_seg.nii.gz", labels, dtype=np.uint8)
    write_nifti(root / "sla.nii.gz", hu, ("S", "L", "A"))
    write_nifti(root / "sla_seg.nii.gz", labels, ("S", "L", "A"), dtype=np.uint8)
    return {"root": root, "hu": hu, "labels": labels}  # type: ignore[dict-item]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.parent != root}


def test_window_to_uint8_closed_form_and_bad_windows() -> None:
    hu = np.array([[-3000.0, -1500.0, -700.0, 0.0, 100.0, 2000.0]])
    expected = np.floor((np.clip(hu, -1500, 100) + 1500) / 1600 * 255).astype(np.uint8)
    np.testing.assert_array_equal(window_to_uint8(hu, (-1500.0, 100.0)), expected)
    assert window_to_uint8(hu, (-1500.0, 100.0)).tolist() == [[0, 0, 127, 239, 255, 255]]
    assert parse_window("-1500,100") == (-1500.0, 100.0)
    for bad in ("100,-1500", "5,5", "abc", "1,2,3", "nan,1"):
        with pytest.raises(SimrealError, match="window"):
            parse_window(bad)
    with pytest.raises(SimrealError, match="below max"):
        PrepareConfig(window_hu=(100.0, 100.0))


def test_fit_square_pads_with_air_and_keeps_label_values() -> None:
    img = np.full((6, 10), 50.0, np.float32)
    out, pad = fit_square(img, 5, pad_value=-1024.0)
    assert out.shape == (5, 5) and out.dtype == np.float32 and pad == (2, 2, 0, 0)
    assert out[0, 2] < 0 and out[2, 2] == pytest.approx(50.0)  # top row is padding (air), middle is tissue
    mask = np.zeros((6, 10), np.uint8)
    mask[2:4, 3:7] = 7
    m, _ = fit_square(mask, 20, order=0)
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 7}
    assert fit_square(img, None)[0] is img


def test_montage_selection_matches_released_code_and_layout() -> None:
    mask = np.zeros((4, 4, 60), np.uint8)
    mask[:, :, 7:50] = 1
    # SemiCS2 datalistgenerate.select_slices, written out: trimmed extent, gap = extent // 4, zmin + i * gap.
    zmin, zmax = 7, 49
    lo, hi = int(zmin + (zmax - zmin) * 0.10), int(zmax - (zmax - zmin) * 0.10)
    released = [lo + i * ((hi - lo) // 4) for i in range(4)]
    montages, gap = montage_starts((zmin, zmax))
    assert montages[0] == released and gap == (hi - lo) // 4 and len(montages) == gap
    assert montage_starts((zmin, zmax), every=3)[0][1] == [r + 3 for r in released]
    with pytest.raises(SimrealError, match="no room"):
        montage_starts((10, 13))
    tiles = [np.full((2, 3), v) for v in range(4)]
    m = tile_montage(tiles)  # column-major: 0 top-left, 1 bottom-left, 2 top-right, 3 bottom-right
    assert m.shape == (4, 6) and [m[0, 0], m[3, 0], m[0, 5], m[3, 5]] == [0, 1, 2, 3]


def test_nifti_and_dicom_give_the_same_slices_in_radiological_display(volumes, tmp_path) -> None:
    root = volumes["root"]
    runs = {
        "dicom": CTCase(root / "dicom", root / "dicom_masks", "p"),
        "ras": CTCase(root / "ras.nii.gz", root / "ras_seg.nii.gz", "p"),
        "sla": CTCase(root / "sla.nii.gz", root / "sla_seg.nii.gz", "p"),
        "png": CTCase(root / "dicom", root / "png_masks", "p"),
    }
    outs = {}
    for name, case in runs.items():
        labels = ("organ",) if name == "png" else ("organ=5",)  # PNG masks are binary: non-zero = organ
        outs[name] = prepare_ct_dataset([case], tmp_path / name, PrepareConfig(labels=labels, size=None, z_range="all"))
    ref = _files(outs["dicom"])
    assert ref and all(k.split("/")[0] in ("image", "ct", "mask") for k in ref)
    for name in ("ras", "sla", "png"):
        assert _files(outs[name]) == ref, name
    # The array was built in (L, P, S): slice k shown is hu[:, :, k].T -> rows run A->P, columns R->L.
    ds = DatasetReader(outs["ras"])
    hu = volumes["hu"]
    k = hu.shape[2] // 2 + 4  # holds the marker (upper half) and the organ
    i = ds.ids.index(f"p_{k:04d}")
    np.testing.assert_array_equal(ds.read(i, "ct"), hu[:, :, k].T)
    mask = ds.read(i, "mask")
    rows, cols = np.nonzero(ds.read(i, "ct") == 600.0)
    assert rows.max() < mask.shape[0] / 2 and cols.min() > mask.shape[1] / 2  # anterior-left marker: top, image right
    organ_cols = np.nonzero(mask == 1)[1]
    assert organ_cols.mean() < mask.shape[1] / 2  # the organ on the patient's right: image left
    rec = ds.records[i]
    assert rec.group == "p" and rec.params["slice_index"] == k
    assert rec.params["spacing_mm"] == [pytest.approx(SPACING[1]), pytest.approx(SPACING[0])]
    assert rec.params["z_mm"] == pytest.approx(30.0 + SPACING[2] * k)
    assert ds.info.ct is not None and ds.info.ct.image_axes == "PL" and ds.info.ct.window_hu == (-1500.0, 100.0)
    assert set(np.unique(mask)) <= {0, 1} and ds.info.labels["mask"].classes == {0: "background", 1: "organ"}
    validate_dataset(outs["ras"])


def test_organ_extent_size_every_and_montage(volumes, tmp_path) -> None:
    root = volumes["root"]
    case = CTCase(root / "ras.nii.gz", root / "ras_seg.nii.gz", "p")
    out = prepare_ct_dataset([case], tmp_path / "slices", PrepareConfig(labels=("organ=5",), size=64, every=2))
    ds = DatasetReader(out)
    ks = np.nonzero((volumes["labels"] == 5).any(axis=(0, 1)))[0]
    assert [r.params["slice_index"] for r in ds.records] == list(range(ks[0], ks[-1] + 1, 2))
    assert ds.info.image_size == (64, 64) and ds.read(0, "ct").shape == (64, 64)
    assert ds.records[0].params["spacing_mm"][0] == pytest.approx(32 * SPACING[1] / 64)  # 32 px padded side -> 64
    validate_dataset(out)

    mont = prepare_ct_dataset([case], tmp_path / "mont", PrepareConfig(labels=("organ=5",), size=64, montage=True))
    dm = DatasetReader(mont)
    expected, _ = montage_starts((int(ks[0]), int(ks[-1])))
    assert [r.params["slice_index"] for r in dm.records] == expected
    ct = dm.read(0, "ct")
    assert ct.shape == (64, 64) and dm.info.image_size == (64, 64)
    s0, s1 = expected[0][0], expected[0][1]
    tile0, tile1 = ct[:32, :32], ct[32:, :32]  # top-left = first slice, bottom-left = second
    organ0 = dm.read(0, "mask")[:32, :32] == 1
    assert tile0[organ0].max() < tile1[dm.read(0, "mask")[32:, :32] == 1].max()  # HU rises with k in the organ
    assert s1 > s0
    validate_dataset(mont)


def test_patient_groups_and_split(volumes, tmp_path) -> None:
    root = volumes["root"]
    cases = [CTCase(root / "ras.nii.gz", root / "ras_seg.nii.gz", f"patient{n}") for n in range(3)]
    out = prepare_ct_dataset(cases, tmp_path / "three", PrepareConfig(labels=("organ=5",), size=32, every=4))
    ds = DatasetReader(out)
    assert sorted({r.group for r in ds.records}) == ["patient0", "patient1", "patient2"]
    split = patient_split(out, n_test=1, seed=3)
    group_of = {r.id: r.group for r in ds.records}
    train, test = ({group_of[i] for i in split[s]} for s in ("train", "test"))
    assert len(test) == 1 and len(train) == 2 and not train & test
    assert sorted(split["train"] + split["test"]) == sorted(ds.ids)
    with pytest.raises(SimrealError, match="patient id"):
        prepare_ct_dataset([cases[0], CTCase(cases[1].ct, cases[1].labels, "patient0")], tmp_path / "dup", LIVER)
    assert not (tmp_path / "dup").exists() and not (tmp_path / "dup.partial").exists()


def _bad(tmp_path: Path, cases, config=LIVER, match: str = "") -> SimrealError:
    out = tmp_path / "bad"
    with pytest.raises(SimrealError, match=match) as err:
        prepare_ct_dataset(cases, out, config)
    assert not out.exists() and not (tmp_path / "bad.partial").exists()  # nothing half-written
    return err.value


def test_bad_inputs_give_one_clear_error_each(volumes, tmp_path) -> None:
    root = volumes["root"]
    hu, labels = volumes["hu"], volumes["labels"]
    ras, seg = root / "ras.nii.gz", root / "ras_seg.nii.gz"
    # A CT without the label asked for.
    err = _bad(tmp_path, [CTCase(ras, seg)], PrepareConfig(labels=("liver=3",)), "does not occur")
    assert err.path == seg
    empty = write_nifti(tmp_path / "empty_seg.nii.gz", np.zeros_like(labels), dtype=np.uint8)
    _bad(tmp_path, [CTCase(ras, empty)], PrepareConfig(labels=("liver",)), "empty")
    _bad(tmp_path, [CTCase(ras)], PrepareConfig(labels=("liver",)), "no label volume")
    # Orientation: none recorded; oblique (gantry tilt); non-orthogonal axes.
    err = _bad(tmp_path, [CTCase(write_nifti(tmp_path / "noorient.nii.gz", hu, codes=0))], PrepareConfig(), "no orientation")
    assert err.path.name == "noorient.nii.gz"
    write_dicom_series(tmp_path / "tilted", hu, shear_mm=0.3)
    _bad(tmp_path, [CTCase(tmp_path / "tilted")], PrepareConfig(), "gantry-tilted")
    rot = np.eye(4)
    c, s = np.cos(np.radians(5)), np.sin(np.radians(5))
    rot[:2, :2] = [[c, -s], [s, c]]
    nib.save(nib.Nifti1Image(hu.astype(np.int16), rot), tmp_path / "rotated.nii.gz")
    _bad(tmp_path, [CTCase(tmp_path / "rotated.nii.gz")], PrepareConfig(), "oblique")
    skew = nib.Nifti1Image(hu.astype(np.int16), np.array([[1.0, 0.2, 0, 0], [0, 1.0, 0, 0], [0, 0, 2.0, 0], [0, 0, 0, 1]]))
    nib.save(skew, tmp_path / "skew.nii.gz")
    _bad(tmp_path, [CTCase(tmp_path / "skew.nii.gz")], PrepareConfig(), "not orthogonal")
    # DICOM slices without orientation.
    files = write_dicom_series(tmp_path / "no_iop", hu)
    import pydicom

    ds = pydicom.dcmread(files[3])
    del ds.ImageOrientationPatient
    ds.save_as(files[3])
    err = _bad(tmp_path, [CTCase(tmp_path / "no_iop")], PrepareConfig(), "ImageOrientationPatient")
    assert err.path == files[3]
    # A DICOM series with a missing slice.
    write_dicom_series(tmp_path / "gap", hu, skip=(7,))
    _bad(tmp_path, [CTCase(tmp_path / "gap")], PrepareConfig(), "missing slice")
    # CT and labels on different grids (shape; spacing).
    _bad(tmp_path, [CTCase(ras, write_nifti(tmp_path / "small.nii.gz", labels[:, :, :-1], dtype=np.uint8))], match="voxel grid")
    other = write_nifti(tmp_path / "spaced.nii.gz", labels, spacing=(0.8, 0.7, 2.5), dtype=np.uint8)
    _bad(tmp_path, [CTCase(ras, other)], match="voxel grid")
    # PNG masks need a DICOM CT, and one PNG per slice.
    _bad(tmp_path, [CTCase(ras, root / "png_masks")], PrepareConfig(labels=("organ",)), "DICOM series")
    few = tmp_path / "few_png"
    few.mkdir()
    (few / "a.png").write_bytes((root / "png_masks" / "mask_000.png").read_bytes())
    _bad(tmp_path, [CTCase(root / "dicom", few)], PrepareConfig(labels=("organ",)), "pair one to one")
    with pytest.raises(SimrealError, match="NAME=ID"):
        parse_label("liver=x")
    with pytest.raises(SimrealError, match="even"):
        PrepareConfig(montage=True, size=63)


def test_ct_info_in_dataset_json_is_checked_and_optional() -> None:
    base = DatasetInfo(modality="ct", domain="real", image_size=(4, 4), files=("image",))
    assert "ct" not in base.to_dict()  # datasets without CT keep their dataset.json bytes
    info = DatasetInfo(**{**base.__dict__, "ct": CTInfo(window_hu=(-1500.0, 100.0))})
    assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    for bad in ({"window_hu": [100, -100]}, {"window_hu": [0, 1], "image_axes": "PP"}, {"window_hu": "x"}):
        with pytest.raises(FormatError):
            DatasetInfo.from_dict({**base.to_dict(), "ct": bad})


def test_real_totalsegmentator_dicom_equals_its_nifti_and_liver_lines_up(tmp_path) -> None:
    """The TotalSegmentator example series, also written as a NIfTI in another axis order: same slices;
    its (model) liver label sits on liver-like HU."""
    src = SHARED_DATA / "totalsegmentator_ct"
    if not (src / "example_ct_dicom").is_dir():
        pytest.skip("shared/data/totalsegmentator_ct not present")
    from simreal.data.volumes import read_volume, reorient

    dcm = read_volume(src / "example_ct_dicom")
    vol = reorient(dcm, ("R", "A", "S"))  # stored as a typical NIfTI is
    img = nib.Nifti1Image(vol.array.astype(np.int16), vol.affine)
    img.set_sform(vol.affine, code=1)
    nib.save(img, tmp_path / "ct.nii.gz")
    seg = src / "example_seg_dicom.nii.gz"  # stored LAS, the series LPS
    config = PrepareConfig(labels=("liver",), size=128, every=6)
    a = prepare_ct_dataset([CTCase(src / "example_ct_dicom", seg, "ts")], tmp_path / "from_dicom", config)
    b = prepare_ct_dataset([CTCase(tmp_path / "ct.nii.gz", seg, "ts")], tmp_path / "from_nifti", config)
    assert _files(a) == _files(b)
    ds = DatasetReader(a)
    assert len(ds) >= 2 and ds.info.labels["mask"].classes == {0: "background", 1: "liver"}
    inside = np.concatenate([ds.read(i, "ct")[ds.read(i, "mask") == 1] for i in range(len(ds))])
    assert 20 < np.median(inside) < 200  # liver parenchyma, not air or bone
    cols = np.concatenate([np.nonzero(ds.read(i, "mask") == 1)[1] for i in range(len(ds))])
    assert cols.mean() < 64  # the liver is on the patient's right: the image's left half


def test_real_chaos_png_masks_pair_with_their_slices(tmp_path) -> None:
    src = SHARED_DATA / "chaos_ct_liver"
    if not (src / "Ground").is_dir():
        pytest.skip("shared/data/chaos_ct_liver not present")
    out = prepare_ct_dataset(
        [CTCase(src / "DICOM_anon", src / "Ground")], tmp_path / "chaos", PrepareConfig(labels=("liver",), size=64, every=15)
    )
    ds = DatasetReader(out)
    assert {r.group for r in ds.records} == {"chaos_ct_liver"}
    for i in range(len(ds)):
        hu, m = ds.read(i, "ct"), ds.read(i, "mask") == 1
        if m.sum() > 20:
            assert 90 < np.median(hu[m]) < 200, ds.records[i].id  # contrast-enhanced liver
