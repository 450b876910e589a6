"""The ``baseline`` experiment: synthetic-only depth and polyp segmentation, measured on held-out
synthetic colons and on real CVC-ClinicDB.

Protocol (:mod:`simreal.experiments.colon_protocol`):
  1. render a training set, a validation set and a test set from three disjoint sets of procedural
     colons (held-out anatomy, not just held-out frames);
  2. train a depth network (mm) and a polyp segmentation network on the training set; their best
     checkpoints are chosen on the validation colons by the figures that are reported (median-scaled
     abs_rel, polyp Dice);
  3. evaluate both once on the test colons: depth with no scaling (the networks predict metric depth),
     per-image median scaling and one least-squares scale per colon; polyp Dice;
  4. evaluate the segmentation network on real CVC-ClinicDB frames. It never saw a real image, so all
     609 frames are a fair test; the figure to beat for the adaptation work is the one on the fixed TEST
     sequences, which adaptation methods may not train on;
  5. beside every figure, what a trivial predictor scores on the same frames (a constant depth, an empty
     mask, a mask covering the frame), and intervals and n at the level of groups (test colons, video
     sequences): frames of one colon or one sequence are not independent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.experiments import stages
from simreal.experiments.stages import group_figure
from simreal.experiments.colon_protocol import (
    CVC_SPLIT,
    SCALE_PRESETS,
    ColonData,
    ColonScale,
    colon_seeds,
    cvc_halves,
    prepare_data,
    scale_arguments,
    training_options,
)
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report

DEPTH_TARGET_ABS_REL = 0.10
SEG_TARGET_DICE = 0.80

def run_baseline(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                 log: Callable[[str], None] = print, preset: ColonScale | None = None) -> dict[str, Any]:
    """Run the baseline protocol into ``out``; returns the results (also written as results.json).

    Args:
        out: the experiment folder (a rerun with the same arguments reuses finished stages).
        scale: "smoke", "small" or "full" (:data:`~simreal.experiments.colon_protocol.SCALE_PRESETS`).
        seed: seed of rendering, splits and training.
        workers: render processes.
        real_data: folder holding ``cvc-clinicdb_256/`` (default: :func:`simreal.data.real_data.real_data_root`).
        log: where stage progress lines go.
        preset: the scale's values, when they differ from the named preset (``--config``).
    """
    from simreal.data.real_data import real_data_folder
    from simreal.metrics.evaluate import evaluate_depth, evaluate_seg
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    cfg = preset or SCALE_PRESETS[scale]
    out = Path(out)
    cvc_src = real_data_folder("cvc-clinicdb_256", real_data)
    out.mkdir(parents=True, exist_ok=True)
    st = stages.Stages(out, {"experiment": "baseline", **scale_arguments(scale, cfg), "seed": seed,
                             "real_data": cvc_src.parent.resolve()}, log)
    data = prepare_data(st, out, cfg, seed, workers, cvc_src)
    runs, preds, evals = out / "runs", out / "predictions", out / "eval"

    common = training_options(cfg, seed, data)
    depth_run, seg_run = runs / "depth", runs / "seg"
    st.run("train depth", lambda: train_from_kwargs("depth", data.train, depth_run, progress=False,
                                                    epochs=cfg.depth_epochs, **common))
    st.run("train seg", lambda: train_from_kwargs("seg", data.train, seg_run, progress=False,
                                                  epochs=cfg.seg_epochs, **common))

    for name, run, src in (("depth_synth", depth_run, data.test), ("seg_synth", seg_run, data.test),
                           ("seg_cvc", seg_run, data.cvc)):
        dest = preds / name
        st.run(f"predict {name}", lambda run=run, src=src, dest=dest: stages.dataset_once(
            dest, lambda: predict(run, src, dest, progress=False)))
    depth_pred = preds / "depth_synth"
    st.run("eval depth synthetic", lambda: evaluate_depth(depth_pred, data.test, evals / "depth_synth", scaling="none"))
    st.run("eval depth synthetic (median scaled)", lambda: evaluate_depth(
        depth_pred, data.test, evals / "depth_synth_median", scaling="median"))
    # One least-squares scale per test colon (SimCol3D's per-trajectory protocol): what a single known size
    # per video, e.g. from a tool of known width, would give.
    st.run("eval depth synthetic (one scale per colon)", lambda: evaluate_depth(
        depth_pred, data.test, evals / "depth_synth_sequence", scaling="lsq", per="sequence"))
    st.run("eval seg synthetic", lambda: evaluate_seg(preds / "seg_synth", data.test, evals / "seg_synth"))
    st.run("eval seg CVC", lambda: evaluate_seg(preds / "seg_cvc", data.cvc, evals / "seg_cvc"))
    st.run("trivial predictors", lambda: _write_trivial_rows(evals, depth_run, data))

    results = _collect(out, cfg, scale, seed, data, st.timings)
    stages.write_results(out, results)
    write_report(out)
    return results


@dataclass(frozen=True)
class BaselineOutputs:
    """What a finished baseline experiment folder holds, for the experiments that build on it.

    Attributes:
        root: the baseline folder.
        data: its synthetic train / val / test sets and the imported CVC-ClinicDB.
        depth_run, seg_run: the synthetic-only depth and polyp networks (run folders; best checkpoints
            chosen on the validation colons).
        results: its results.json (the figures the adaptation methods must beat).
    """

    root: Path
    data: ColonData
    depth_run: Path
    seg_run: Path
    results: dict[str, Any]


def baseline_outputs(out: Path, baseline: Path | None, *, scale: str, preset: ColonScale | None, seed: int,
                     workers: int, real_data: Path | None, log: Callable[[str], None] = print) -> BaselineOutputs:
    """The synthetic-only networks and data an adaptation experiment starts from.

    With ``baseline`` None the baseline protocol runs (or resumes) into ``OUT/baseline``; otherwise
    ``baseline`` must be a finished baseline folder made with the same scale, preset values and seed (it
    is only read, never written), so that the synthetic-only figures an adaptation is compared with are
    the baseline's own.

    Raises:
        SimrealError: ``baseline`` is not a finished baseline folder, or was made with other arguments.
    """
    cfg = preset or SCALE_PRESETS[scale]
    if baseline is None:
        baseline = Path(out) / "baseline"
        run_baseline(out=baseline, scale=scale, seed=seed, workers=workers, real_data=real_data, log=log, preset=cfg)
    baseline = Path(baseline)
    results_path, arguments_path = baseline / "results.json", baseline / ".stages" / "arguments.json"
    if not results_path.is_file() or not arguments_path.is_file():
        raise SimrealError("not a finished baseline experiment folder (no results.json); run `simreal experiment "
                           "baseline` into it first, or leave --baseline out", baseline)
    arguments = json.loads(arguments_path.read_text())
    wanted = json.loads(json.dumps({"experiment": "baseline", **scale_arguments(scale, cfg), "seed": seed}))
    differ = sorted(k for k in wanted if arguments.get(k) != wanted[k])
    if differ:
        raise SimrealError(f"the baseline folder was made with other arguments ({', '.join(differ)} differ)", baseline)
    data = baseline / "data"
    return BaselineOutputs(
        root=baseline, data=ColonData(train=data / "synth_train", val=data / "synth_val", test=data / "synth_test",
                                      cvc=data / "cvc"),
        depth_run=baseline / "runs" / "depth", seg_run=baseline / "runs" / "seg",
        results=json.loads(results_path.read_text()),
    )


def start_from_baseline(out: Path, baseline: Path | None, experiment: str, arguments: dict[str, Any], *, scale: str,
                        preset: ColonScale | None, seed: int, workers: int, real_data: Path | None,
                        log: Callable[[str], None] = print) -> tuple[BaselineOutputs, stages.Stages]:
    """How every experiment built on the baseline starts: (the baseline's outputs, OUT's stages).

    A given ``baseline`` is checked before anything is written (refused: ``out`` is not even made). Then OUT's
    stages open with the experiment's name, scale, ``arguments``, seed and where the baseline is (a rerun with
    other arguments is refused), and without ``baseline`` the baseline protocol runs, or resumes, into
    ``OUT/baseline``.
    """
    cfg = preset or SCALE_PRESETS[scale]
    base_args = dict(scale=scale, preset=cfg, seed=seed, workers=workers, real_data=real_data, log=log)
    base = baseline_outputs(out, baseline, **base_args) if baseline is not None else None
    Path(out).mkdir(parents=True, exist_ok=True)
    st = stages.Stages(out, {"experiment": experiment, **scale_arguments(scale, cfg), **arguments, "seed": seed,
                             "baseline": str(Path(baseline).resolve()) if baseline is not None else "OUT/baseline"}, log)
    return (base or baseline_outputs(out, None, **base_args)), st


#: The trivial predictors scored beside the networks: eval folder -> (what, dataset).
TRIVIAL = {
    "trivial_depth_constant": "constant depth (the median training depth) on the synthetic test frames",
    "trivial_seg_synth_empty": "all-background mask on the synthetic test frames",
    "trivial_seg_cvc_empty": "all-background mask on CVC-ClinicDB",
    "trivial_seg_cvc_full": "mask covering the whole frame on CVC-ClinicDB",
}


def _write_trivial_rows(evals: Path, depth_run: Path, data: ColonData) -> None:
    """Per-frame rows of the trivial predictors, in the rows.csv layout of ``simreal eval``, so that
    ``simreal compare`` can test a network against them."""
    from simreal.experiments.trivial import constant_depth_rows, constant_mask_rows
    from simreal.metrics.evaluate import summarise, write_results
    from simreal.tasks.config import read_config

    depth_mm = float(read_config(depth_run / "config.json").model.depth_scale_mm)
    for name, rows in (("trivial_depth_constant", constant_depth_rows(data.test, depth_mm)),
                       ("trivial_seg_synth_empty", constant_mask_rows(data.test, 0)),
                       ("trivial_seg_cvc_empty", constant_mask_rows(data.cvc, 0)),
                       ("trivial_seg_cvc_full", constant_mask_rows(data.cvc, 1))):
        metrics = [k for k in rows[0] if k not in ("id", "group")]
        summary = {"task": "trivial", "what": TRIVIAL[name], "n": len(rows),
                   "metrics": summarise(rows, metrics, groups=[r["group"] for r in rows])}
        if name == "trivial_depth_constant":
            summary["depth_mm"] = depth_mm
        write_results(evals / name, rows, ["id", "group", *metrics], summary)


def _polyp_ids(dataset: Path) -> set[str]:
    reader = DatasetReader(dataset)
    return {rec.id for i, rec in enumerate(reader.records) if (reader.read(i, "mask") > 0).any()}


def _row(label: str, fig: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"set": label, **extra, "mean of group means": fig["value"], "95% CI (groups resampled)":
            f"[{fig['ci_low']:.3f}, {fig['ci_high']:.3f}]", "frame mean": fig["frame_mean"],
            "n_groups": fig["n_groups"], "n_frames": fig["n_frames"]}


_FIGURE_COLUMNS = ["mean of group means", "95% CI (groups resampled)", "frame mean", "n_groups", "n_frames"]


def _collect(out: Path, cfg: ColonScale, scale: str, seed: int, data: ColonData, timings: dict[str, Any]) -> dict[str, Any]:
    from simreal.data.external.cvc import cvc_sequence_name

    evals = out / "eval"
    depth = {"none": stages.read_rows(evals / "depth_synth"), "median": stages.read_rows(evals / "depth_synth_median"),
             "sequence": stages.read_rows(evals / "depth_synth_sequence")}
    seg_rows = stages.read_rows(evals / "seg_synth")
    cvc_rows = stages.read_rows(evals / "seg_cvc")
    depth_scale = stages.read_summary(evals / "trivial_depth_constant")["depth_mm"]
    flat = stages.read_rows(evals / "trivial_depth_constant")

    with_polyp = _polyp_ids(data.test)
    polyp = lambda r: r["id"] in with_polyp  # noqa: E731
    cvc = DatasetReader(data.cvc)
    halves = cvc_halves(data.cvc)
    test_ids = {cvc.records[i].id for i in halves["test"]}
    test_groups = sorted({cvc.records[i].group for i in halves["test"]})
    in_test = lambda r: r["id"] in test_ids  # noqa: E731
    empty_cvc, full_cvc = stages.read_rows(evals / "trivial_seg_cvc_empty"), stages.read_rows(evals / "trivial_seg_cvc_full")
    empty_synth = stages.read_rows(evals / "trivial_seg_synth_empty")

    depth_figs = {
        "median": group_figure(depth["median"], "abs_rel"), "none": group_figure(depth["none"], "abs_rel"),
        "sequence": group_figure(depth["sequence"], "abs_rel"),
        "flat_median": group_figure(flat, "abs_rel_median"), "flat_none": group_figure(flat, "abs_rel"),
    }
    depth_table = [
        _row("network, per-image median scaling", depth_figs["median"],
             delta1=group_figure(depth["median"], "delta1")["value"]),
        _row("network, one least-squares scale per test colon", depth_figs["sequence"],
             delta1=group_figure(depth["sequence"], "delta1")["value"]),
        _row("network, metric (no scaling)", depth_figs["none"], delta1=group_figure(depth["none"], "delta1")["value"]),
        _row(f"trivial: constant {depth_scale:.1f} mm (median training depth), median-scaled", depth_figs["flat_median"]),
        _row(f"trivial: constant {depth_scale:.1f} mm, metric", depth_figs["flat_none"],
             delta1=group_figure(flat, "delta1")["value"]),
    ]
    seg_figs = {
        "synth": group_figure(seg_rows, "dice_polyp", polyp), "synth_empty": group_figure(empty_synth, "dice_polyp", polyp),
        "cvc_all": group_figure(cvc_rows, "dice_polyp"), "cvc_test": group_figure(cvc_rows, "dice_polyp", in_test),
        "cvc_test_empty": group_figure(empty_cvc, "dice_polyp", in_test), "cvc_test_full": group_figure(full_cvc, "dice_polyp", in_test),
    }
    seg_table = [
        _row("synthetic test colons, frames with a polyp: network", seg_figs["synth"]),
        _row("synthetic test colons, frames with a polyp: trivial empty mask", seg_figs["synth_empty"]),
        _row("CVC-ClinicDB, all frames (real, never trained on): network", seg_figs["cvc_all"]),
        _row(f"CVC-ClinicDB TEST half ({len(test_groups)} studies): network, the baseline to beat", seg_figs["cvc_test"]),
        _row("CVC-ClinicDB TEST half: trivial mask covering the whole frame", seg_figs["cvc_test_full"]),
        _row("CVC-ClinicDB TEST half: trivial empty mask", seg_figs["cvc_test_empty"]),
    ]
    # Per video sequence (two sequences of one study share a group, so by the frame number, not the group).
    sequence_of = {r["id"]: cvc_sequence_name(int(r["id"])) for r in cvc_rows}
    study_of = {sequence_of[r["id"]]: r["group"] for r in cvc_rows}
    per_seq = {q: stages.mean_of(cvc_rows, "dice_polyp", lambda r, q=q: sequence_of[r["id"]] == q)[0]
               for q in sorted(set(sequence_of.values()))}
    per_colon = {g: group_figure(depth["median"], "abs_rel", lambda r, g=g: r["group"] == g)
                 for g in sorted({r["group"] for r in depth["median"]})}
    targets = [
        {"target": "synthetic depth abs_rel, per-image median scaling (mean of test-colon means)",
         "value": depth_figs["median"]["value"], "threshold": f"<= {DEPTH_TARGET_ABS_REL}",
         "met": bool(depth_figs["median"]["value"] <= DEPTH_TARGET_ABS_REL)},
        {"target": "synthetic depth abs_rel, metric (no scaling)", "value": depth_figs["none"]["value"],
         "threshold": f"<= {DEPTH_TARGET_ABS_REL}", "met": bool(depth_figs["none"]["value"] <= DEPTH_TARGET_ABS_REL)},
        {"target": f"synthetic polyp Dice, frames with a polyp (n_frames={seg_figs['synth']['n_frames']}, "
                   f"n_colons={seg_figs['synth']['n_groups']})", "value": seg_figs["synth"]["value"],
         "threshold": f">= {SEG_TARGET_DICE}", "met": bool(seg_figs["synth"]["value"] >= SEG_TARGET_DICE)},
    ]
    beats_trivial = {
        "depth_median_scaled": bool(depth_figs["median"]["value"] < depth_figs["flat_median"]["value"]),
        "depth_metric": bool(depth_figs["none"]["value"] < depth_figs["flat_none"]["value"]),
        "synthetic_polyp_dice": bool(seg_figs["synth"]["value"] > seg_figs["synth_empty"]["value"]),
        "cvc_test_dice_vs_full_frame": bool(seg_figs["cvc_test"]["value"] > seg_figs["cvc_test_full"]["value"]),
    }
    notes = [
        "Trained on synthetic frames only. The networks' best epochs were chosen on validation colons; the test "
        f"colons ({', '.join(sorted(per_colon))}) were never rendered for training or validation and were "
        "evaluated once.",
        "Intervals resample whole groups (test colons, CVC video sequences), because frames of one colon or one "
        "sequence are not independent; 'mean of group means' weighs every group equally.",
        "CVC-ClinicDB is split by study (never by frame): its 29 video sequences come from 25 studies, and "
        "sequences 23 and 24 (one rare capture setup) are taken as one study, seq23-24; which other sequences "
        "share a study is not published, so they stay separate groups. The TEST half is fixed for every "
        f"experiment: {', '.join(test_groups)}.",
        "Metric depth (no scaling) is ill-posed for this forward model on purpose: auto-exposure is randomised per "
        "frame, as on a real endoscope, so image brightness does not fix the scale; only anatomical priors do. "
        "The scale-invariant figure (per-image median scaling, the usual protocol for monocular endoscopic depth) "
        "measures the shape of the predicted depth; one least-squares scale per colon (SimCol3D's "
        "per-trajectory protocol) sits between the two.",
    ]
    failed = [k for k, v in beats_trivial.items() if not v]
    if failed:
        notes.append("The networks do NOT beat the trivial predictor on: " + ", ".join(failed) + ".")
    if seg_figs["cvc_test"]["value"] < 0.5:
        notes.append(f"Synthetic-only segmentation transfers poorly to real frames (CVC TEST Dice "
                     f"{seg_figs['cvc_test']['value']:.3f}): this is the domain gap the adaptation methods have to close.")
    return {
        "name": "baseline",
        "scale": scale,
        "summary": "Synthetic-only depth and polyp segmentation: held-out synthetic colons and real CVC-ClinicDB.",
        "targets": targets,
        "tables": [
            {"title": "Depth abs_rel on the held-out synthetic test colons", "columns": ["set", *_FIGURE_COLUMNS, "delta1"],
             "rows": depth_table},
            {"title": "Polyp segmentation Dice", "columns": ["set", *_FIGURE_COLUMNS], "rows": seg_table},
            {"title": "Depth abs_rel (median-scaled) per test colon", "columns": ["colon", "abs_rel", "n_frames"],
             "rows": [{"colon": g, "abs_rel": f["value"], "n_frames": f["n_frames"]} for g, f in per_colon.items()]},
            {"title": "CVC-ClinicDB Dice per video sequence", "columns": ["sequence", "dice", "study", "split"],
             "rows": [{"sequence": q, "dice": v, "study": study_of[q], "split": "test" if study_of[q] in test_groups else "adapt"}
                      for q, v in per_seq.items()]},
        ],
        "figures": _figures(out, cfg, data.test, data.cvc),
        "notes": notes,
        "metrics": {
            "depth": depth_figs, "seg": seg_figs, "beats_trivial": beats_trivial,
            "depth_synth": stages.read_summary(evals / "depth_synth"),
            "depth_synth_median": stages.read_summary(evals / "depth_synth_median"),
            "depth_synth_sequence": stages.read_summary(evals / "depth_synth_sequence"),
            "seg_cvc_test_sequences": test_groups, "seg_cvc_dice_per_sequence": per_seq,
            "depth_synth_median_per_colon": per_colon, "constant_depth_mm": float(depth_scale),
        },
        "config": {"scale": scale_arguments(scale, cfg), "seed": seed, "cvc_split": CVC_SPLIT,
                   "colons": colon_seeds(seed, cfg)},
        "environment": environment(),
        "timings": {**timings, "total (stages run now)": round(sum(v for v in timings.values() if isinstance(v, float)), 2)},
    }


def _figures(out: Path, cfg: ColonScale, test_dir: Path, cvc_dir: Path) -> list[dict[str, str]]:
    from simreal.data.contact_sheet import overlay_mask, pick_indices

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    figures = []
    stages.plot_training_curves({"depth": out / "runs" / "depth", "seg": out / "runs" / "seg"}, fig_dir / "training.png")
    figures.append({"title": "Training and validation losses", "path": "figures/training.png"})

    gt, pd, ps = DatasetReader(test_dir), DatasetReader(out / "predictions" / "depth_synth"), DatasetReader(out / "predictions" / "seg_synth")
    rows = []
    for i in pick_indices(len(gt), 6):
        rgb = gt.read(i, "image")
        rows.append([("image", rgb), ("depth (truth)", gt.read(i, "depth")), ("depth (predicted)", pd.read(pd.ids.index(gt.ids[i]), "depth")),
                     ("polyp (truth)", overlay_mask(rgb, gt.read(i, "mask"))),
                     ("polyp (predicted)", overlay_mask(rgb, ps.read(ps.ids.index(gt.ids[i]), "mask")))])
    valid = np.concatenate([gt.read(i, "depth")[gt.read(i, "depth") > 0] for i in range(min(len(gt), 20))])
    stages.prediction_grid(rows, fig_dir / "synthetic_test.png", "Held-out synthetic frames",
                           depth_range=(float(np.percentile(valid, 1)), float(np.percentile(valid, 99))))
    figures.append({"title": "Held-out synthetic frames: depth and polyp predictions", "path": "figures/synthetic_test.png"})

    cvc, pc = DatasetReader(cvc_dir), DatasetReader(out / "predictions" / "seg_cvc")
    rows = []
    for i in pick_indices(len(cvc), 8):
        rgb = cvc.read(i, "image")
        rows.append([("CVC-ClinicDB frame", rgb), ("polyp (truth)", overlay_mask(rgb, cvc.read(i, "mask"))),
                     ("polyp (synthetic-only model)", overlay_mask(rgb, pc.read(pc.ids.index(cvc.ids[i]), "mask")))])
    stages.prediction_grid(rows, fig_dir / "cvc.png", "Real CVC-ClinicDB frames, segmentation model trained on synthetic frames only")
    figures.append({"title": "Real CVC-ClinicDB: synthetic-only polyp segmentation", "path": "figures/cvc.png"})
    return figures
