"""`simreal experiment baseline --scale smoke`: every stage end to end, rerun resumes, report rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal_testing import SHARED_DATA
from simreal_testing import run_simreal as simreal

CVC = SHARED_DATA / "cvc-clinicdb_256"
needs_cvc = pytest.mark.skipif(not CVC.is_dir(), reason="../shared/data/cvc-clinicdb_256 not present")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "smoke"
    done = simreal("experiment", "baseline", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@needs_cvc
def test_smoke_writes_results_and_report(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["name"] == "baseline" and results["scale"] == "smoke"
    names = [t["target"] for t in results["targets"]]
    assert "synthetic depth abs_rel, per-image median scaling" in names
    assert any(n.startswith("synthetic polyp Dice") for n in names)
    cvc = results["metrics"]["seg_cvc_dice_all"]
    assert cvc["n"] == 609 and 0.0 <= cvc["mean"] <= 1.0  # every real frame evaluated
    assert len(results["metrics"]["seg_cvc_dice_per_sequence"]) == 29
    test_seqs = set(results["metrics"]["seg_cvc_dice_test"]["sequences"])
    assert 0 < len(test_seqs) < 29  # a split by sequence, not by frame
    depth = results["metrics"]["depth_synth"]["metrics"]["abs_rel"]
    assert depth["n"] == 12 and depth["mean"] > 0
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Timings" in page


@needs_cvc
def test_rerun_reuses_every_stage_and_report_rebuilds(smoke_run: Path) -> None:
    before = json.loads((smoke_run / "results.json").read_text())
    again = simreal("experiment", "baseline", "--scale", "smoke", "--out", str(smoke_run), "--real-data", str(SHARED_DATA))
    assert again.returncode == 0, again.stderr[-2000:]
    after = json.loads((smoke_run / "results.json").read_text())
    assert after["timings"].pop("total (stages run now)") == 0
    assert set(after["timings"].values()) == {"reused"}
    assert after["metrics"] == before["metrics"]
    other = simreal("experiment", "baseline", "--scale", "smoke", "--seed", "1", "--out", str(smoke_run),
                    "--real-data", str(SHARED_DATA))
    assert other.returncode == 2 and "seed differ" in other.stderr  # never mix two runs' stages
    (smoke_run / "report.html").unlink()
    rebuilt = simreal("report", str(smoke_run))
    assert rebuilt.returncode == 0 and (smoke_run / "report.html").is_file()


def test_bad_requests_exit_2(tmp_path: Path) -> None:
    unknown = simreal("experiment", "nope", "--out", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "unknown experiment 'nope'" in unknown.stderr
    no_data = simreal("experiment", "baseline", "--out", str(tmp_path / "y"), "--real-data", str(tmp_path))
    assert no_data.returncode == 2 and "CVC-ClinicDB not found" in no_data.stderr
    assert not (tmp_path / "y").exists()
    assert simreal("report", str(tmp_path)).returncode == 2


@needs_cvc
def test_folder_of_an_older_preset_is_refused(smoke_run: Path, tmp_path: Path) -> None:
    from simreal.errors import SimrealError
    from simreal.experiments.baseline import run_baseline

    arguments = json.loads((smoke_run / ".stages" / "arguments.json").read_text())
    arguments["preset"]["depth_epochs"] += 1  # what the folder looks like after the preset changed
    old = tmp_path / "old"
    (old / ".stages").mkdir(parents=True)
    (old / ".stages" / "arguments.json").write_text(json.dumps(arguments))
    with pytest.raises(SimrealError, match="preset differ"):
        run_baseline(out=old, scale="smoke", real_data=SHARED_DATA, log=lambda _: None)
    assert sorted(p.name for p in old.iterdir()) == [".stages"]  # refused before any work
