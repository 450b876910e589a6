"""CVC-ClinicDB / Kvasir-SEG import: sequence table, a tiny fake layout, bad input, the real folder."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from simreal.cli.dataset_import import app as import_app
from simreal_testing import SHARED_DATA
from simreal.data.external.cvc import CVC_SEQUENCES, cvc_group, cvc_sequence, import_cvc, import_kvasir
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.errors import SimrealError

REAL_CVC = SHARED_DATA / "cvc-clinicdb_256"


def test_sequence_table_covers_1_to_612_without_gaps():
    frames = [f for first, last, _ in CVC_SEQUENCES for f in range(first, last + 1)]
    assert frames == list(range(1, 613))
    assert [s for _, _, s in CVC_SEQUENCES] == list(range(1, 30))
    assert (cvc_sequence(1), cvc_sequence(25), cvc_sequence(26), cvc_sequence(205), cvc_sequence(206)) == (1, 1, 2, 10, 11)
    assert cvc_group(612) == "seq29"
    assert cvc_group(467) == cvc_group(503) == "seq23-24" and cvc_group(466) == "seq22"
    with pytest.raises(SimrealError, match="outside 1..612"):
        cvc_sequence(613)


def make_layout(root: Path, frames: list[int], size=(12, 16), mask_rgb: bool = True) -> Path:
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for f in frames:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(root / "images" / f"{f}.jpg", quality=95)
        m = np.zeros(size, np.uint8)
        m[2:8, 3 : 3 + f % 7 + 2] = 255
        img = Image.fromarray(np.stack([m] * 3, -1) if mask_rgb else m)
        img.save(root / "masks" / f"{f}.jpg", quality=90)
    return root


def test_import_tiny_cvc_layout(tmp_path):
    src = make_layout(tmp_path / "cvc", [1, 2, 25, 26, 100])
    out = import_cvc(src, tmp_path / "ds")
    validate_dataset(out)
    ds = DatasetReader(out)
    assert ds.ids == ["0001", "0002", "0025", "0026", "0100"]
    assert [r.group for r in ds.records] == ["seq01", "seq01", "seq01", "seq02", "seq05"]
    assert ds.records[2].source == str(src / "images" / "25.jpg") and ds.records[2].params == {"frame": 25, "sequence": "seq01"}
    assert ds.info.modality == "colonoscopy" and ds.info.domain == "real" and ds.info.image_size == (12, 16)
    assert ds.info.labels["mask"].classes == {0: "background", 1: "polyp"}
    mask = ds.read(2, "mask")
    expected = np.zeros((12, 16), np.uint8)
    expected[2:8, 3:9] = 1  # 25 % 7 + 2 = 6 columns
    assert np.array_equal(mask, expected)  # JPEG noise is removed by the 127 threshold
    small = DatasetReader(import_cvc(src, tmp_path / "small", size=8))
    assert small.read(0, "image").shape == (8, 8, 3) and set(np.unique(small.read(0, "mask"))) <= {0, 1}


def test_import_kvasir_has_no_groups(tmp_path):
    src = make_layout(tmp_path / "kv", [3, 4], mask_rgb=False)
    ds = DatasetReader(import_kvasir(src, tmp_path / "ds"))
    assert ds.ids == ["3", "4"] and ds.records[0].group is None


def test_bad_inputs_leave_nothing(tmp_path):
    src = make_layout(tmp_path / "cvc", [1, 2, 3])
    (src / "masks" / "3.jpg").unlink()
    with pytest.raises(SimrealError, match="3 images but 2 masks; 1 images have no mask .first: 3"):
        import_cvc(src, tmp_path / "o1")
    src2 = make_layout(tmp_path / "cvc2", [1, 2])
    (src2 / "images" / "2.jpg").write_bytes((src2 / "images" / "2.jpg").read_bytes()[:200])
    with pytest.raises(SimrealError, match="2.jpg: cannot decode image"):
        import_cvc(src2, tmp_path / "o2")
    src3 = make_layout(tmp_path / "cvc3", [1])
    Image.fromarray(np.full((12, 16), 128, np.uint8)).save(src3 / "masks" / "1.jpg")
    with pytest.raises(SimrealError, match="not a binary mask: 100.0% of pixels are mid-grey"):
        import_cvc(src3, tmp_path / "o3")
    (tmp_path / "cvc4" / "images").mkdir(parents=True)
    (tmp_path / "cvc4" / "masks").mkdir()
    with pytest.raises(SimrealError, match="no images"):
        import_cvc(tmp_path / "cvc4", tmp_path / "o4")
    src5 = make_layout(tmp_path / "cvc5", [1])
    for sub in ("images", "masks"):
        (src5 / sub / "1.jpg").rename(src5 / sub / "frame1.jpg")
    with pytest.raises(SimrealError, match="file names must be frame numbers"):
        import_cvc(src5, tmp_path / "o5")
    with pytest.raises(SimrealError, match="expected sub-folders images/ and masks/"):
        import_cvc(tmp_path, tmp_path / "o6")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith("o")]
    assert leftovers == []


def test_cli_import_cvc(tmp_path):
    src = make_layout(tmp_path / "cvc", [1, 30])
    r = CliRunner().invoke(import_app, ["cvc", str(src), "--out", str(tmp_path / "ds"), "--size", "8"])
    assert r.exit_code == 0, r.output
    assert "wrote 2 samples (8x8, 2 groups" in r.output
    quiet = CliRunner().invoke(import_app, ["cvc", str(src), "--out", str(tmp_path / "ds2"), "--no-progress"])
    assert quiet.exit_code == 0, quiet.output


def test_import_reports_progress(tmp_path):
    src = make_layout(tmp_path / "cvc", [1, 2, 3])
    seen = []
    import_cvc(src, tmp_path / "ds", progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.skipif(not REAL_CVC.is_dir(), reason="needs ../shared/data/cvc-clinicdb_256 beside the checkout")
def test_real_cvc_clinicdb(tmp_path):
    ds = DatasetReader(import_cvc(REAL_CVC, tmp_path / "cvc", size=8))
    assert len(ds) == 609  # 612 frames, 133, 419 and 480 missing from this copy
    assert not {"0133", "0419", "0480"} & set(ds.ids)
    counts = Counter(r.group for r in ds.records)
    assert len(counts) == 28 and counts["seq01"] == 25 and counts["seq29"] == 21  # 29 sequences, 23 + 24 one study
    assert counts["seq23-24"] == 12 + 25 - 1  # frame 480 (sequence 24) is missing from this copy
    assert len({r.params["sequence"] for r in ds.records}) == 29
    assert sum(1 for r in ds.records[:200] if ds.read(ds.ids.index(r.id), "mask").any()) > 150
