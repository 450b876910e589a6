"""`simreal experiment baseline --scale smoke`: every stage end to end, networks that beat trivial predictors,
group-level figures, rerun resumes, report rebuilds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simreal_testing import SHARED_DATA
from simreal_testing import run_simreal as simreal

CVC = SHARED_DATA / "cvc-clinicdb_256"
needs_cvc = pytest.mark.skipif(not CVC.is_dir(), reason="needs ../shared/data/cvc-clinicdb_256 beside the checkout")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CVC.is_dir():
        pytest.skip("needs ../shared/data/cvc-clinicdb_256 beside the checkout")
    out = tmp_path_factory.mktemp("baseline") / "smoke"
    done = simreal("experiment", "baseline", "--scale", "smoke", "--out", str(out), "--real-data", str(SHARED_DATA))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@needs_cvc
def test_smoke_networks_beat_trivial_predictors_on_held_out_frames(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "results.json").read_text())
    depth, seg = results["metrics"]["depth"], results["metrics"]["seg"]
    # A constant depth (the median training depth) and an all-background mask, on the same held-out frames.
    assert depth["median"]["value"] < depth["flat_median"]["value"]
    assert depth["none"]["value"] < depth["flat_none"]["value"]
    assert seg["synth"]["value"] > seg["synth_empty"]["value"] == 0.0
    assert results["metrics"]["beats_trivial"]["depth_median_scaled"] is True


@needs_cvc
def test_smoke_figures_carry_group_level_n(smoke_run: Path) -> None:
    results = json.loads((smoke_run / "results.json").read_text())
    assert results["name"] == "baseline" and results["scale"] == "smoke"
    depth, seg = results["metrics"]["depth"], results["metrics"]["seg"]
    assert depth["median"]["n_frames"] == 24 and depth["median"]["n_groups"] == 3   # three held-out test colons
    assert depth["median"]["ci_low"] <= depth["median"]["value"] <= depth["median"]["ci_high"]
    assert seg["cvc_all"]["n_frames"] == 609 and seg["cvc_all"]["n_groups"] == 28  # every real frame, by study
    test_seqs = results["metrics"]["seg_cvc_test_sequences"]
    assert 0 < len(test_seqs) < 28 and seg["cvc_test"]["n_groups"] == len(test_seqs)
    assert len(results["metrics"]["seg_cvc_dice_per_sequence"]) == 29
    colons = results["config"]["colons"]
    assert not set(colons["train"]) & set(colons["val"]) | set(colons["train"]) & set(colons["test"]) | set(colons["val"]) & set(colons["test"])
    for table in results["tables"][:2]:
        assert {"n_groups", "n_frames"} <= set(table["columns"])
    page = (smoke_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "Timings" in page and "n_groups" in page


@needs_cvc
def test_compare_tests_the_network_against_a_trivial_predictor_at_group_level(smoke_run: Path) -> None:
    done = simreal("compare", str(smoke_run / "eval" / "seg_cvc" / "rows.csv"),
                   str(smoke_run / "eval" / "trivial_seg_cvc_empty" / "rows.csv"), "--metric", "dice_polyp", "--frame-level")
    assert done.returncode == 0, done.stderr
    assert "group level (n_groups = 28)" in done.stdout and "frame level, assumes independent frames (n_frames = 609)" in done.stdout


@needs_cvc
def test_networks_were_chosen_on_validation_colons(smoke_run: Path) -> None:
    for task, figure in (("depth", "val/abs_rel_median"), ("seg", "val/dice")):
        cfg = json.loads((smoke_run / "runs" / task / "config.json").read_text())
        assert cfg["data"]["val"].endswith("synth_val") and cfg["select"] is None  # the task's reported figure
        text = (smoke_run / "runs" / task / "metrics.csv").read_text()
        assert figure in text.splitlines()[0]


@needs_cvc
def test_the_training_set_is_reproduced_from_its_config_file(smoke_run: Path, tmp_path: Path) -> None:
    import filecmp

    again = tmp_path / "again"
    done = simreal("render", "colon", "--config", str(smoke_run / "configs" / "render_train.yaml"), "--out", str(again),
                   "--workers", "2", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    original = smoke_run / "data" / "synth_train"
    files = sorted(p.relative_to(original) for p in original.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    match, mismatch, errors = filecmp.cmpfiles(original, again, [str(f) for f in files], shallow=False)
    assert not mismatch and not errors and len(match) == len(files)


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
    assert no_data.returncode == 2 and "has no cvc-clinicdb_256/" in no_data.stderr
    assert not (tmp_path / "y").exists()
    assert simreal("report", str(tmp_path)).returncode == 2
    typo = tmp_path / "typo.yaml"
    typo.write_text("scale: smoke\npreset:\n  depth_epoch: 3\n")
    bad = simreal("experiment", "baseline", "--config", str(typo), "--out", str(tmp_path / "z"))
    assert bad.returncode == 2 and "unknown field 'depth_epoch' in preset" in bad.stderr and "Traceback" not in bad.stderr
    other = tmp_path / "other.yaml"
    other.write_text("experiment: depth-recipes\n")
    bad = simreal("experiment", "baseline", "--config", str(other), "--out", str(tmp_path / "z"))
    assert bad.returncode == 2 and "for experiment 'depth-recipes'" in bad.stderr
    assert not (tmp_path / "z").exists()


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
