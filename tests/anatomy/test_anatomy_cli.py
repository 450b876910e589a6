"""`simreal anatomy colon|from-ct` through the real entry point (exit status 2 on bad input)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from simreal.anatomy.mesh import load_mesh
from simreal_testing import SHARED_DATA, run_cli

SHARED = SHARED_DATA / "totalsegmentator_ct"


def _phantom(tmp_path: Path, lumen_hu: int = -900) -> tuple[Path, Path]:
    """A colon tube (label radius 4 mm) whose inner 3 mm hold ``lumen_hu`` (gas), in a +30 HU wall."""
    idx = np.indices((16, 16, 20))
    r2 = (idx[0] - 7.5) ** 2 + (idx[1] - 7.5) ** 2
    labels = (r2 <= 16).astype(np.uint8) * 20
    labels[:, :, :2] = 0
    labels[:, :, -2:] = 0
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    ct = np.where((r2 <= 9) & (labels > 0), lumen_hu, 30).astype(np.int16)
    nib.save(nib.Nifti1Image(ct, affine), tmp_path / "ct.nii.gz")
    return tmp_path / "ct.nii.gz", tmp_path / "seg.nii.gz"


def test_colon_command(monkeypatch, capsys, tmp_path):
    out = tmp_path / "sub" / "colon.ply"
    code, stdout, _ = run_cli(monkeypatch, capsys, "anatomy", "colon", "--seed", "4", "--out", str(out), "--length", "70", "--n-polyps", "2")
    assert code == 0
    assert "2 polyps" in stdout and str(out) in stdout and "vertices" in stdout
    mesh = load_mesh(out)
    assert mesh.face_instances.max() == 2 and mesh.metadata["seed"] == 4


def test_colon_command_bad_input(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "anatomy", "colon", "--out", str(tmp_path / "c.obj"), "--length", "60")
    assert code == 2 and err.startswith("error: ") and "c.obj" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(monkeypatch, capsys, "anatomy", "colon", "--out", str(tmp_path / "c.ply"), "--length", "5")
    assert code == 2 and "length" in err
    assert not (tmp_path / "c.ply").exists()


def _from_ct(monkeypatch, capsys, ct: Path, seg: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(monkeypatch, capsys, "anatomy", "from-ct", "--ct", str(ct), "--labels", str(seg), "--out", str(out), *extra)


def test_from_ct_command(monkeypatch, capsys, tmp_path):
    ct, seg = _phantom(tmp_path)
    out = tmp_path / "tube.ply"
    code, stdout, _ = _from_ct(monkeypatch, capsys, ct, seg, out, "--label", "colon")
    assert code == 0 and "colon (id 20), lumen surface" in stdout and "0 polyps" in stdout
    lumen = load_mesh(out)
    md = lumen.metadata
    assert md["generator"] == "ct-surface" and md["surface"] == "lumen" and md["lumen_hu"] == -500.0
    assert md["margin_mm"] == 3.0 and md["contents"] == "air"
    code, stdout, _ = _from_ct(monkeypatch, capsys, ct, seg, tmp_path / "label.ply", "--surface", "label")
    assert code == 0 and "label surface" in stdout
    label = load_mesh(tmp_path / "label.ply")
    assert label.metadata["surface"] == "label"
    # The gas (radius 3) sits inside the label (radius 4): the lumen surface is the inner one.
    r_lumen = np.hypot(*(lumen.vertices[:, :2] - 7.5).T)
    r_label = np.hypot(*(label.vertices[:, :2] - 7.5).T)
    assert np.median(r_lumen) + 0.5 < np.median(r_label)
    code, stdout, _ = _from_ct(
        monkeypatch, capsys, ct, seg, out, "--lumen-hu", "-700", "--margin-mm", "1.5", "--contents", "air+fluid",
        "--untagged-max-hu", "10", "--tagged-min-hu", "300",
    )  # fmt: skip
    assert code == 0
    md = load_mesh(out).metadata
    assert md["lumen_hu"] == -700.0 and md["margin_mm"] == 1.5 and md["contents"] == "air+fluid"
    assert md["hu_ranges"]["contents_untagged"] == [-700.0, 10.0] and md["hu_ranges"]["contents_tagged"] == [300.0, None]
    code, _, err = _from_ct(monkeypatch, capsys, ct, seg, out, "--label", "livr")
    assert code == 2 and "liver" in err
    code, _, err = _from_ct(monkeypatch, capsys, tmp_path / "nope.nii.gz", seg, out)
    assert code == 2 and "nope.nii.gz" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--surface", "inside"), "surface must be one of auto, lumen, label"),
        (("--contents", "water"), "contents must be one of air, air+fluid"),
        (("--lumen-hu", "100"), "lumen_hu must lie above -1000"),
        (("--margin-mm", "-2"), "margin_mm must be >= 0"),
        (("--untagged-max-hu", "-800"), "thresholds must increase"),
    ],
)
def test_from_ct_command_bad_options(monkeypatch, capsys, tmp_path, extra, message):
    ct, seg = _phantom(tmp_path)
    out = tmp_path / "tube.ply"
    code, _, err = _from_ct(monkeypatch, capsys, ct, seg, out, *extra)
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_from_ct_command_no_air(monkeypatch, capsys, tmp_path):
    ct, seg = _phantom(tmp_path, lumen_hu=10)  # a fluid-filled segment
    out = tmp_path / "tube.ply"
    code, _, err = _from_ct(monkeypatch, capsys, ct, seg, out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(ct) in err and "no air in colon" in err and "mean HU in the label" in err and "--surface label" in err
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))
    code, _, _ = _from_ct(monkeypatch, capsys, ct, seg, out, "--surface", "label")
    assert code == 0 and out.is_file()
    code, _, err = _from_ct(monkeypatch, capsys, ct, seg, tmp_path / "tube.obj")
    assert code == 2 and "tube.obj" in err and ".ply" in err


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs ../shared/data/totalsegmentator_ct beside the checkout (real TotalSegmentator CT)")
def test_from_ct_command_real_pair(monkeypatch, capsys, tmp_path):
    out = tmp_path / "colon.ply"
    code, stdout, _ = run_cli(
        monkeypatch, capsys, "anatomy", "from-ct",
        "--ct", str(SHARED / "example_ct_sm.nii.gz"), "--labels", str(SHARED / "example_seg.nii.gz"),
        "--label", "colon", "--out", str(out),
    )  # fmt: skip
    assert code == 0 and out.is_file() and "colon (id 20), lumen surface" in stdout
    assert load_mesh(out).metadata["surface"] == "lumen"
    code, _, err = run_cli(
        monkeypatch, capsys, "anatomy", "from-ct",
        "--ct", str(SHARED / "example_ct.nii.gz"), "--labels", str(SHARED / "example_seg.nii.gz"), "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "shape" in err and "example_ct.nii.gz" in err
