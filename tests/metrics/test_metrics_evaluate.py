"""Folder evaluation (rows.csv + summary.json), its errors, and the eval / compare CLI."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from simreal.cli import evaluate as cli_eval
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError
from simreal.metrics.depth import DEPTH_METRICS
from simreal.metrics.evaluate import evaluate_depth, evaluate_seg

CLASSES = {0: "background", 1: "polyp"}


def write_ds(root: Path, arrays: dict[str, dict[str, np.ndarray]], groups: dict[str, str] | None = None, size=(8, 8)) -> Path:
    """A dataset whose samples hold the given arrays (id -> kind -> array)."""
    kinds = tuple(next(iter(arrays.values())))
    info = DatasetInfo(
        modality="colonoscopy",
        domain="synthetic",
        image_size=size,
        files=kinds,
        labels={"depth": LabelKind(unit="mm"), "mask": LabelKind(classes=CLASSES)},
        generator={"name": "test"},
    )
    w = DatasetWriter(root, info)
    for sid, arrs in arrays.items():
        w.write(SampleRecord(id=sid, files={}, group=(groups or {}).get(sid)), arrs)
    return w.finish()


@pytest.fixture
def depth_pair(tmp_path):
    rng = np.random.default_rng(0)
    gts = {f"{i:03d}": rng.uniform(10, 60, (8, 8)).astype(np.float32) for i in range(4)}
    gts["000"][0, 0] = 0.0  # a pixel without surface
    groups = {"000": "seqA", "001": "seqA", "002": "seqB", "003": "seqB"}
    factor = {"000": 2.0, "001": 3.0, "002": 2.0, "003": 2.0}
    gt = write_ds(tmp_path / "gt", {k: {"depth": v} for k, v in gts.items()}, groups)
    pred = write_ds(tmp_path / "pred", {k: {"depth": v * factor[k]} for k, v in gts.items()})
    return pred, gt, gts


def test_evaluate_depth_rows_and_summary(depth_pair, tmp_path):
    pred, gt, _ = depth_pair
    out = tmp_path / "ev"
    s = evaluate_depth(pred, gt, out)
    with (out / "rows.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and rows[0]["id"] == "000" and rows[0]["group"] == "seqA"
    assert set(DEPTH_METRICS) <= set(rows[0])
    assert float(rows[1]["abs_rel"]) == pytest.approx(2.0)  # pred = 3 gt
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == s
    assert s["n"] == 4 and s["metrics"]["abs_rel"]["n"] == 4
    assert s["n_frames"] == 4 and s["n_groups"] == 2
    assert set(s["metrics"]["rmse"]) == {"mean", "std", "median", "n", "n_nan", "n_groups", "group_mean", "group_ci_low", "group_ci_high"}
    assert s["metrics"]["abs_rel"]["mean"] == pytest.approx((1 + 2 + 1 + 1) / 4)
    # seqA: abs_rel 1 and 2, seqB: 1 and 1 -> group means 1.5 and 1; two groups resampled: CI [1, 1.5].
    a = s["metrics"]["abs_rel"]
    assert a["n_groups"] == 2 and a["group_mean"] == pytest.approx(1.25)
    assert (a["group_ci_low"], a["group_ci_high"]) == (pytest.approx(1.0), pytest.approx(1.5))
    assert s["settings"]["scaling"] == "none"


def test_group_summary_weighs_groups_equally_and_is_deterministic(depth_pair, tmp_path):
    _, _, gts = depth_pair
    factor = {"000": 2.0, "001": 3.0, "002": 2.0, "003": 2.0}  # abs_rel 1, 2, 1, 1
    groups = {"000": "seqA", "001": "seqA", "002": "seqA", "003": "seqB"}  # unequal sizes
    gt = write_ds(tmp_path / "gt3", {k: {"depth": v} for k, v in gts.items()}, groups)
    pred = write_ds(tmp_path / "pred3", {k: {"depth": v * factor[k]} for k, v in gts.items()})
    s = evaluate_depth(pred, gt, tmp_path / "e1")
    a = s["metrics"]["abs_rel"]
    assert a["mean"] == pytest.approx(1.25)  # frames weigh equally
    assert a["group_mean"] == pytest.approx((4 / 3 + 1) / 2)  # groups weigh equally
    assert (a["group_ci_low"], a["group_ci_high"]) == (pytest.approx(1.0), pytest.approx(4 / 3))
    assert s["n_groups"] == 2 and s["group_stats"]["n_boot"] > 0 and "each group weighs equally" in s["group_stats"]["estimand"]
    again = json.loads((tmp_path / "e1" / "summary.json").read_text())
    assert evaluate_depth(pred, gt, tmp_path / "e1")["metrics"] == again["metrics"]  # same seed, same CI
    # No groups: frame-level summary only, n_groups null.
    flat = write_ds(tmp_path / "gt0", {k: {"depth": v} for k, v in gts.items()})
    s0 = evaluate_depth(pred, flat, tmp_path / "e3")
    assert s0["n_groups"] is None and s0["n_frames"] == 4 and "group_mean" not in s0["metrics"]["abs_rel"]
    # Some samples without a group: no group statistics, and the summary says why.
    part = write_ds(tmp_path / "gtp", {k: {"depth": v} for k, v in gts.items()}, {"000": "seqA", "001": "seqA"})
    sp = evaluate_depth(pred, part, tmp_path / "e4")
    assert sp["n_groups"] is None and "2 of 4 ground-truth samples have no group" in sp["note"]


def test_progress_bar_goes_to_stderr(depth_pair, tmp_path, capsys):
    pred, gt, _ = depth_pair
    evaluate_depth(pred, gt, tmp_path / "quiet")
    assert capsys.readouterr().err == ""  # library default: no bar
    evaluate_depth(pred, gt, tmp_path / "loud", progress=True)
    out = capsys.readouterr()
    assert "evaluating depth" in out.err and "4/4" in out.err and out.out == ""


def test_scaling_per_image_and_per_sequence(depth_pair, tmp_path):
    pred, gt, _ = depth_pair
    per_image = evaluate_depth(pred, gt, tmp_path / "a", scaling="median")
    assert per_image["metrics"]["abs_rel"]["mean"] == pytest.approx(0.0, abs=1e-6)
    # seqA mixes factors 2 and 3, so one scale cannot fit both frames; seqB is fitted exactly.
    per_seq = evaluate_depth(pred, gt, tmp_path / "b", scaling="lsq", per="sequence")
    rows = {r["id"]: r for r in csv.DictReader((tmp_path / "b" / "rows.csv").open())}
    assert float(rows["002"]["abs_rel"]) == pytest.approx(0.0, abs=1e-6)
    assert float(rows["000"]["abs_rel"]) > 0.05
    assert rows["000"]["scale"] == rows["001"]["scale"] != rows["002"]["scale"]
    assert per_seq["settings"]["per"] == "sequence"


def test_evaluate_depth_errors(depth_pair, tmp_path):
    pred, gt, gts = depth_pair
    out = tmp_path / "ev"
    fewer = write_ds(tmp_path / "fewer", {k: {"depth": v} for k, v in list(gts.items())[1:]})
    with pytest.raises(SimrealError, match="1 ground-truth samples have no prediction .first missing: 000"):
        evaluate_depth(fewer, gt, out)
    assert evaluate_depth(fewer, gt, out, intersect=True)["n"] == 3
    big = write_ds(tmp_path / "big", {k: {"depth": np.ones((8, 9), np.float32)} for k in gts}, size=(8, 9))
    with pytest.raises(SimrealError, match=r"sample 000: prediction .* is \(8, 9\) but ground truth .* is \(8, 8\)"):
        evaluate_depth(big, gt, tmp_path / "x1")
    nan = {k: {"depth": v.copy()} for k, v in gts.items()}
    nan["002"]["depth"][3, 3] = np.nan
    with pytest.raises(SimrealError, match="sample 002: ground truth depth holds 1 NaN"):
        evaluate_depth(pred, write_ds(tmp_path / "nan", nan), tmp_path / "x2")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimrealError, match="no dataset.json"):
        evaluate_depth(tmp_path / "empty", gt, tmp_path / "x3")
    masks = write_ds(tmp_path / "masks", {k: {"mask": np.zeros((8, 8), np.uint8)} for k in gts})
    with pytest.raises(SimrealError, match="prediction dataset has no 'depth' files .it has: mask"):
        evaluate_depth(masks, gt, tmp_path / "x4")
    nogroup = write_ds(tmp_path / "nogroup", {k: {"depth": v} for k, v in gts.items()})
    with pytest.raises(SimrealError, match="sample 000 has no group"):
        evaluate_depth(pred, nogroup, tmp_path / "x5", scaling="median", per="sequence")
    with pytest.raises(SimrealError, match="unknown scaling"):
        evaluate_depth(pred, gt, tmp_path / "x6", scaling="max")  # type: ignore[arg-type]
    assert not any((tmp_path / f"x{i}").exists() for i in range(1, 7))  # nothing half-written


def _masks(tmp_path):
    gt, pred = {}, {}
    for i in range(3):
        g = np.zeros((16, 16), np.uint8)
        g[4:10, 3 + i : 9 + i] = 1
        p = np.roll(g, i, axis=0)
        gt[f"{i:03d}"], pred[f"{i:03d}"] = {"mask": g}, {"mask": p}
    pred["002"]["mask"][:] = 0  # a missed polyp: Dice 0, HD95 undefined
    return write_ds(tmp_path / "pred", pred), write_ds(tmp_path / "gt", gt)


def test_evaluate_seg(tmp_path):
    pred, gt = _masks(tmp_path)
    s = evaluate_seg(pred, gt, tmp_path / "ev")
    rows = list(csv.DictReader((tmp_path / "ev" / "rows.csv").open()))
    assert len(rows) == 3 and "dice_background" not in rows[0]
    assert float(rows[0]["dice_polyp"]) == 1.0 and rows[2]["hd95_polyp"] == "nan"
    assert s["metrics"]["dice_polyp"]["n"] == 3
    assert s["n_groups"] is None and "n_groups" not in s["metrics"]["dice_polyp"]  # no groups in this ground truth
    assert s["metrics"]["hd95_polyp"]["n"] == 2 and s["metrics"]["hd95_polyp"]["n_nan"] == 1
    assert s["settings"]["classes"] == {"0": "background", "1": "polyp"}
    depth_only = write_ds(tmp_path / "d", {"000": {"depth": np.ones((8, 8), np.float32)}})
    with pytest.raises(SimrealError, match="no 'mask' files"):
        evaluate_seg(depth_only, gt, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_eval_and_compare(depth_pair, tmp_path):
    pred, gt, _ = depth_pair
    runner = CliRunner()
    r = runner.invoke(cli_eval.app, ["depth", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "abs_rel" in r.output and "n = 4" in r.output and "n_groups = 2" in r.output
    assert "mean of group means" in r.output
    r = runner.invoke(
        cli_eval.app, ["depth", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "b"), "--scaling", "median"]
    )
    assert r.exit_code == 0, r.output
    cmp_app = typer.Typer()
    cmp_app.command()(cli_eval.compare)
    out_json = tmp_path / "cmp.json"
    r = runner.invoke(
        cmp_app, [str(tmp_path / "a" / "rows.csv"), str(tmp_path / "b" / "rows.csv"), "--metric", "abs_rel", "--out", str(out_json), "--n-boot", "200"]
    )
    assert r.exit_code == 0, r.output
    # Two sequences: the comparison has two pairs (groups), whatever the number of frames.
    assert "Wilcoxon p" in r.output and "only 2 groups" in r.output and "group level (n_groups = 2)" in r.output
    res = json.loads(out_json.read_text())
    assert res["group_level"]["n_groups"] == 2 and res["group_level"]["mean_diff"] == pytest.approx(1.25)
    assert res["frame_level"]["n"] == 4 and res["frame_level"]["mean_diff"] == pytest.approx(1.25)
    assert "only 4 non-zero differences" in res["frame_level"]["note"]


def test_cli_bad_input_exits_2(tmp_path, monkeypatch, capsys):
    from simreal.cli import main

    monkeypatch.setattr(sys, "argv", ["simreal", "eval", "depth", "--pred", str(tmp_path / "no"), "--gt", str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_unwritable_out_is_one_error_naming_the_file(depth_pair, tmp_path, monkeypatch, capsys):
    pred, gt, _ = depth_pair
    out = tmp_path / "ev"
    (out / "rows.csv").mkdir(parents=True)  # the folder exists but rows.csv cannot be replaced (works as root too)
    with pytest.raises(SimrealError, match="cannot write") as exc:
        evaluate_depth(pred, gt, out)
    assert "rows.csv" in str(exc.value)
    assert not [p for p in out.iterdir() if p.name != "rows.csv"]  # no temporary file left behind

    from simreal.cli import main

    evaluate_depth(pred, gt, tmp_path / "a")
    blocked = tmp_path / "cmp.json"
    blocked.mkdir()
    rows = str(tmp_path / "a" / "rows.csv")
    monkeypatch.setattr(sys, "argv", ["simreal", "compare", rows, rows, "--metric", "abs_rel", "--out", str(blocked), "--n-boot", "10"])
    with pytest.raises(SystemExit) as code:
        main()
    assert code.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "cmp.json" in err and "cannot write" in err and "Traceback" not in err
