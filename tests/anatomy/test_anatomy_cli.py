"""`simreal anatomy colon|from-ct` through the real entry point (exit status 2 on bad input)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from simreal.anatomy.mesh import load_mesh
from simreal_testing import run_cli

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "totalsegmentator_ct"


def _phantom(tmp_path: Path) -> tuple[Path, Path]:
    idx = np.indices((16, 16, 20))
    labels = ((idx[0] - 7.5) ** 2 + (idx[1] - 7.5) ** 2 <= 16).astype(np.uint8) * 20
    labels[:, :, :2] = 0
    labels[:, :, -2:] = 0
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    nib.save(nib.Nifti1Image(np.where(labels > 0, -900, 30).astype(np.int16), affine), tmp_path / "ct.nii.gz")
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


def test_from_ct_command(monkeypatch, capsys, tmp_path):
    ct, seg = _phantom(tmp_path)
    out = tmp_path / "tube.ply"
    code, stdout, _ = run_cli(monkeypatch, capsys, "anatomy", "from-ct", "--ct", str(ct), "--labels", str(seg), "--label", "colon", "--out", str(out))
    assert code == 0 and "colon (id 20)" in stdout and "0 polyps" in stdout
    assert load_mesh(out).metadata["generator"] == "ct-surface"
    code, _, err = run_cli(monkeypatch, capsys, "anatomy", "from-ct", "--ct", str(ct), "--labels", str(seg), "--label", "livr", "--out", str(out))
    assert code == 2 and "liver" in err
    code, _, err = run_cli(monkeypatch, capsys, "anatomy", "from-ct", "--ct", str(tmp_path / "nope.nii.gz"), "--labels", str(seg), "--out", str(out))
    assert code == 2 and "nope.nii.gz" in err


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared/data/totalsegmentator_ct not checked out")
def test_from_ct_command_real_pair(monkeypatch, capsys, tmp_path):
    out = tmp_path / "colon.ply"
    code, stdout, _ = run_cli(
        monkeypatch, capsys, "anatomy", "from-ct",
        "--ct", str(SHARED / "example_ct_sm.nii.gz"), "--labels", str(SHARED / "example_seg.nii.gz"),
        "--label", "colon", "--out", str(out),
    )  # fmt: skip
    assert code == 0 and out.is_file() and "colon (id 20)" in stdout
    code, _, err = run_cli(
        monkeypatch, capsys, "anatomy", "from-ct",
        "--ct", str(SHARED / "example_ct.nii.gz"), "--labels", str(SHARED / "example_seg.nii.gz"), "--out", str(out),
    )  # fmt: skip
    assert code == 2 and "shape" in err and "example_ct.nii.gz" in err
