"""`simreal synth prepare | masks | split` and `eval mmfid`'s command: results, one-line errors, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
from synth_fixtures import phantom, write_dicom_series, write_nifti

from simreal.data.reader import DatasetReader
from simreal_testing import run_cli


@pytest.fixture(scope="module")
def ct_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_ct")
    hu, labels = phantom()
    write_dicom_series(root / "p1" / "PATIENT_DICOM", hu)
    write_dicom_series(root / "p1" / "MASKS_DICOM", labels.astype(np.float32))
    write_nifti(root / "p2.nii.gz", hu)
    write_nifti(root / "p2_seg.nii.gz", labels, dtype=np.uint8)
    return root


def test_prepare_masks_split(monkeypatch, capsys, ct_files, tmp_path) -> None:
    out = tmp_path / "slices"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "synth", "prepare",
        "--ct", str(ct_files / "p1" / "PATIENT_DICOM"), "--labels", str(ct_files / "p1" / "MASKS_DICOM"),
        "--ct", str(ct_files / "p2.nii.gz"), "--labels", str(ct_files / "p2_seg.nii.gz"),
        "--label", "organ=5", "--out", str(out), "--window", "-1000,400", "--size", "32", "--every", "2", "--no-progress",
    )
    assert code == 0, stderr
    assert "2 patient(s): p1: 8, p2: 8" in stdout
    ds = DatasetReader(out)
    assert ds.info.ct.window_hu == (-1000.0, 400.0) and ds.info.image_size == (32, 32)

    masks = tmp_path / "um"
    code, stdout, stderr = run_cli(
        monkeypatch, capsys, "synth", "masks", "--data", str(out), "--out", str(masks), "--segments", "16",
        "--step", "20", "--no-progress",
    )
    assert code == 0, stderr
    um = DatasetReader(masks)
    assert um.info.files[-2:] == ("guidance", "edges") and not (um.read(0, "guidance") % 20).any()

    code, stdout, stderr = run_cli(monkeypatch, capsys, "synth", "split", str(masks), "--test", "1", "--out", str(tmp_path / "s.json"))
    assert code == 0, stderr
    split = json.loads((tmp_path / "s.json").read_text())
    groups = {r.id: r.group for r in um.records}
    assert {groups[i] for i in split["train"]}.isdisjoint({groups[i] for i in split["test"]})

    sheet = tmp_path / "sheet.png"
    code, _, stderr = run_cli(monkeypatch, capsys, "dataset", "show", str(masks), "--n", "4", "--out", str(sheet))
    assert code == 0 and sheet.stat().st_size > 0, stderr


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--window", "100,-1500"], "below max"),
        (["--label", "liver=77"], "does not occur"),
        (["--labels", "a", "--labels", "b"], "one --labels per --ct"),
    ],
)
def test_prepare_errors_are_one_line_exit_2_and_write_nothing(monkeypatch, capsys, ct_files, tmp_path, extra, message) -> None:
    out = tmp_path / "bad"
    args = ["synth", "prepare", "--ct", str(ct_files / "p2.nii.gz"), "--out", str(out), "--no-progress", *extra]
    if "--labels" not in extra:
        args += ["--labels", str(ct_files / "p2_seg.nii.gz")]
    if "--label" not in extra:
        args += ["--label", "organ=5"]
    code, stdout, stderr = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not out.exists() and not (tmp_path / "bad.partial").exists()


def test_mmfid_command(monkeypatch, capsys, tmp_path) -> None:
    import typer
    from PIL import Image

    from simreal.cli import evaluate_mmfid

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for n in range(4):
            Image.fromarray(rng.integers(0, 256, (80, 80), dtype=np.uint8)).save(tmp_path / name / f"{n}.png")
    app = typer.Typer()
    app.command()(evaluate_mmfid.mmfid_command)

    from simreal.metrics import mmfid
    from simreal.metrics.features import RandomConvFeatures

    real = mmfid.mm_fid
    monkeypatch.setattr(mmfid, "mm_fid", lambda *a, **k: real(*a, extractors=[RandomConvFeatures(num_features=4)], **k))
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [str(tmp_path / "a"), str(tmp_path / "b"), "--scales", "16,32", "--aggregate", "mean",
                                      "--out", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["scales"] == [16, 32] and r["aggregate"] == "mean" and r["n_a"] == 4
    assert r["mm_fid"] == pytest.approx(np.mean(r["fid"]))
