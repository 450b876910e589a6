"""The ``cinematic-ft`` experiment: fine-tune the synthetic-only depth network on cinematic renders of CT
(Mahmood et al., "Deep learning with cinematic rendering", 2018) and measure the error before and after.

Protocol (seeds in :func:`~simreal.experiments.colon_protocol.cinematic_colon_seeds`):

1. **Pretrained network**: the baseline's depth network, trained on the fast synthetic set only (best epoch
   chosen on the baseline's validation colons; :func:`~simreal.experiments.baseline.baseline_outputs`).
2. **Patients**: CT phantoms of procedural colons (:mod:`simreal.anatomy.ct_phantom`) never used by any other
   set: fine-tune patients ``seed*1000 + 600 + k``, validation patients ``+ 640 + k`` and held-out test
   patients ``+ 660 + k``. Each patient is rendered endoluminally (tip lights) by the path tracer
   (:mod:`simreal.render.cinematic`) at N views x K conditions (a transfer-function preset jittered, a
   lighting preset drawn, exposure and gamma); every patient has its own K conditions (its dataset seed is
   its colon seed), so held-out patients are seen under conditions never trained on too. Depth is z to the
   lumen wall, ray cast on the mesh that bounds the medium. The real TotalSegmentator colon
   (``example_ct_sm`` with its model segmentation, 3 mm voxels) is one more held-out patient.
3. **Fine-tuning**: all layers from the baseline's weights (``init=``), on the renders of the fine-tune
   patients' first ``views`` views under all K conditions; the fine-tune patients' further ``probe_views``
   views are never trained on (they measure "same patient, new view"). Fixed a priori: learning rate,
   cosine schedule, batch, flips and the number of optimisation steps; the checkpoint (i.e. the epoch) is
   chosen on the validation patients by median-scaled abs_rel. Nothing is chosen on a test figure.
4. **Evaluation, before and after**, once: (a) renders of the held-out test patients (groups = patients),
   (b) the CT patient (one group: no interval), (c) an external domain: the fast model's
   ``look="realistic"`` frames of colons ``seed*1000 + 300 + k`` that no other set uses (groups = colons;
   the stand-in for the paper's real porcine colon, which has no depth here). Error reduction =
   (before - after) / before of the mean of group means, for abs_rel and RMSE, per-image median-scaled and
   metric, with a paired cluster-bootstrap interval and a two-sided Wilcoxon test on group means (the frame
   level beside it, labelled).
5. **Ablations** on the held-out patients: multi- vs single-condition fine-tuning with the same frames per
   epoch and the same views (single: each view's condition-0 frame repeated K times), and a training-set-size
   curve (first n views of every fine-tune patient, all conditions) for the fine-tuned network and for the
   same network trained from scratch on the same renders with the same number of steps.

Scales (every number is reported with its scale; the networks see the baseline's image size):

* ``smoke``: what the tests run: 2 + 1 + 2 phantoms at 2 mm voxels, 32 px renders at 1 spp, 2 conditions,
  a dozen optimisation steps. Its numbers say nothing about the method.
* ``small``: this 2-core CPU given a finished baseline ``--scale small`` (networks at 128 px): 6 + 2 + 6
  phantoms (1 mm voxels, 150 mm colons), 4 conditions, 64 px renders at 4 spp upsampled to 128 px by the
  data loader (path tracing costs per pixel and sample; at 128 px the same time buys a quarter of the frames,
  and frames from more views and patients matter more than pixels for a 128 px network), 392 cinematic
  frames, 9 short training runs.
* ``full``: a GPU (``cuda_ad_rgb``): 20 + 4 + 12 phantoms at 0.75 mm, 8 conditions, 256 px at 64 spp.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.experiments import stages
from simreal.experiments.colon_protocol import (
    SCALE_PRESETS,
    ColonScale,
    cinematic_colon_seeds,
    colon_seeds,
    external_realistic_job,
    render_sets,
    scale_arguments,
)
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report

#: The paper's anchors (abstract): error reduction from fine-tuning on rendered and on real porcine frames.
PAPER_RENDERS_REDUCTION = 0.5687
PAPER_REAL_REDUCTION = 0.2749

#: The real CT patient: TotalSegmentator's example CT (3 mm voxels) and its model segmentation (same grid).
CT_DATASET = "totalsegmentator_ct"
CT_FILES = ("example_ct_sm.nii.gz", "example_seg.nii.gz")

#: The measures every comparison reports: (rows column, scaling, label).
MEASURES = (("abs_rel", "median", "abs_rel, per-image median scaling"), ("abs_rel", "none", "abs_rel, metric"),
            ("rmse", "median", "RMSE (mm), per-image median scaling"), ("rmse", "none", "RMSE (mm), metric"))


@dataclass(frozen=True)
class CinematicFTScale:
    """How big one run of the experiment is (on top of the baseline's :class:`ColonScale`).

    Args:
        n_finetune, n_val, n_test: phantom patients that fine-tune, choose the checkpoint, and test.
        views: views of each fine-tune patient trained on (each under every condition).
        probe_views: further views of each fine-tune patient, never trained on ("same patient, new view").
        val_views, test_views: views of each validation / test patient.
        conditions: rendering conditions K per patient (transfer function, lights, exposure, gamma).
        render_size: side of the cinematic renders, px (the data loader resizes them to the network's size).
        spp: Monte Carlo samples per pixel.
        max_depth: longest light path (scattering events) of the path tracer.
        phantom_voxel_mm, phantom_length_mm: the phantoms' voxel size and colon length.
        ct_views: views of the real TotalSegmentator colon (a held-out patient), 0 = leave it out.
        n_external, n_external_colons: realistic-look frames (and colons) of the external domain.
        steps: optimisation steps of every fine-tuning and from-scratch run (rounded up to whole epochs).
        lr: fine-tuning learning rate (all layers; cosine decay); from-scratch runs use the baseline's.
        batch_size: images per step.
        curve_views: views per fine-tune patient at each point of the training-set-size curve (the largest
            must be ``views``: that point is the main fine-tuning run).
    """

    n_finetune: int
    n_val: int
    n_test: int
    views: int
    probe_views: int
    val_views: int
    test_views: int
    conditions: int
    render_size: int
    spp: int
    max_depth: int
    phantom_voxel_mm: float
    phantom_length_mm: float
    ct_views: int
    n_external: int
    n_external_colons: int
    steps: int
    lr: float
    batch_size: int
    curve_views: tuple[int, ...]

    def __post_init__(self) -> None:
        problems = []
        for name in ("n_finetune", "n_val", "n_test", "views", "val_views", "test_views", "conditions", "spp",
                     "n_external", "n_external_colons", "steps", "batch_size", "max_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name}: expected an integer >= 1, got {v!r}")
        for name in ("probe_views", "ct_views"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                problems.append(f"{name}: expected an integer >= 0, got {v!r}")
        if not self.curve_views or list(self.curve_views) != sorted(set(self.curve_views)) or self.curve_views[-1] != self.views \
                or self.curve_views[0] < 1:
            problems.append(f"curve_views: expected increasing view counts ending at views ({self.views}), got {self.curve_views!r}")
        if self.conditions < 2:
            problems.append("conditions: the multi- vs single-condition ablation needs at least 2")
        if not self.lr > 0:
            problems.append(f"lr: must be > 0, got {self.lr}")
        if problems:
            raise SimrealError("cinematic-ft preset: " + "; ".join(problems))

    @property
    def finetune_frames(self) -> int:
        return self.n_finetune * self.views * self.conditions


CINEMATIC_FT_PRESETS = {
    "smoke": CinematicFTScale(n_finetune=2, n_val=1, n_test=2, views=2, probe_views=1, val_views=1, test_views=2,
                              conditions=2, render_size=32, spp=1, max_depth=4, phantom_voxel_mm=2.0,
                              phantom_length_mm=60.0, ct_views=1, n_external=12, n_external_colons=2, steps=8,
                              lr=2e-4, batch_size=4, curve_views=(1, 2)),
    "small": CinematicFTScale(n_finetune=6, n_val=2, n_test=6, views=8, probe_views=2, val_views=4, test_views=4,
                              conditions=4, render_size=64, spp=4, max_depth=8, phantom_voxel_mm=1.0,
                              phantom_length_mm=150.0, ct_views=6, n_external=240, n_external_colons=8, steps=480,
                              lr=2e-4, batch_size=8, curve_views=(1, 2, 4, 8)),
    "full": CinematicFTScale(n_finetune=20, n_val=4, n_test=12, views=50, probe_views=5, val_views=20, test_views=20,
                             conditions=8, render_size=256, spp=64, max_depth=8, phantom_voxel_mm=0.75,
                             phantom_length_mm=250.0, ct_views=40, n_external=2000, n_external_colons=12, steps=20000,
                             lr=1e-4, batch_size=16, curve_views=(2, 5, 10, 25, 50)),
}

#: Render seed of the real CT patient's views and conditions (after ``seed * 1000``; not a colon seed).
CT_RENDER_SEED_OFFSET = 999


def _patients(seed: int, cfg: ColonScale, c: CinematicFTScale) -> dict[str, list[int]]:
    return cinematic_colon_seeds(seed, cfg, {"finetune": c.n_finetune, "val": c.n_val, "test": c.n_test,
                                             "external": c.n_external_colons})


def cinematic_jobs(seed: int, cfg: ColonScale, c: CinematicFTScale, ct: tuple[Path, Path] | None) -> dict[str, dict[str, Any]]:
    """The :class:`~simreal.render.cinematic_run.CinematicJob` of every patient: role -> {name: job}.

    Roles: "finetune" (``views + probe_views`` views), "val", "test" and, when ``ct`` is given, "ct" (the
    real colon). A patient's dataset seed is its colon seed, so each patient has its own K conditions.
    """
    from simreal.render.cinematic import CinematicConfig
    from simreal.render.cinematic_run import CinematicJob

    config = CinematicConfig(max_depth=c.max_depth)
    seeds = _patients(seed, cfg, c)
    views = {"finetune": c.views + c.probe_views, "val": c.val_views, "test": c.test_views}
    common = dict(conditions=c.conditions, spp=c.spp, size=c.render_size, device="auto", config=config)
    jobs: dict[str, dict[str, Any]] = {}
    for role in ("finetune", "val", "test"):
        jobs[role] = {f"phantom-{s}": CinematicJob(n=views[role], seed=s, phantom_seed=s, phantom_voxel_mm=c.phantom_voxel_mm,
                                                   phantom_length_mm=c.phantom_length_mm, **common)
                      for s in seeds[role]}
    if ct is not None and c.ct_views:
        jobs["ct"] = {"totalsegmentator": CinematicJob(n=c.ct_views, seed=seed * 1000 + CT_RENDER_SEED_OFFSET, ct=str(ct[0]), labels=str(ct[1]),
                                                       label="colon", **common)}
    return jobs


def _views_of(reader: DatasetReader, keep: Callable[[int, int], bool]) -> list[int]:
    """Record indices whose (view, condition) ``keep`` accepts."""
    return [i for i, r in enumerate(reader.records) if keep(int(r.params["view_index"]), int(r.params["condition_index"]))]


def training_sets(patients: dict[str, Path], c: CinematicFTScale) -> dict[str, list[tuple[Path, list[int]]]]:
    """The merged sets (name -> parts of :func:`~simreal.experiments.stages.merge_datasets`) of the fine-tune
    patients: "multi" (views < ``views``, every condition), "single" (the same views, each view's condition-0
    frame repeated K times: the same frames per epoch), "probe" (the views never trained on, every condition)
    and "curve_<n>" (views < n, every condition) for each smaller point of the size curve."""
    out: dict[str, list[tuple[Path, list[int]]]] = {"multi": [], "single": [], "probe": []}
    for n in c.curve_views[:-1]:
        out[f"curve_{n}"] = []
    for path in patients.values():
        reader = DatasetReader(path)
        out["multi"].append((path, _views_of(reader, lambda v, k: v < c.views)))
        single = _views_of(reader, lambda v, k: v < c.views and k == 0)
        out["single"].append((path, [i for i in single for _ in range(c.conditions)]))
        if c.probe_views:
            out["probe"].append((path, _views_of(reader, lambda v, k: v >= c.views)))
        for n in c.curve_views[:-1]:
            out[f"curve_{n}"].append((path, _views_of(reader, lambda v, k, n=n: v < n)))
    if not c.probe_views:
        del out["probe"]
    return out


def run_cinematic_ft(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                     baseline: Path | None = None, log: Callable[[str], None] = print,
                     preset: ColonScale | None = None) -> dict[str, Any]:
    """Run the cinematic fine-tuning protocol into ``out``; returns the results (also written as results.json).

    Args:
        out: the experiment folder (a rerun with the same arguments reuses finished stages).
        scale: "smoke", "small" or "full" (the baseline's :data:`SCALE_PRESETS` and :data:`CINEMATIC_FT_PRESETS`).
        seed: seed of rendering and training (the baseline must have the same).
        workers: render processes of the fast model (the path tracer uses every core itself).
        real_data: folder holding ``cvc-clinicdb_256/`` (for the baseline) and ``totalsegmentator_ct/``.
        baseline: a finished ``experiment baseline`` folder of the same scale and seed (only read); None runs
            (or resumes) it into ``OUT/baseline``.
        log: where stage progress lines go.
        preset: the baseline's scale values, when they differ from the named preset (``--config``).

    Raises:
        SimrealError: ``baseline`` is not a finished baseline folder of the same scale, preset and seed (before
            any work), ``out`` holds a run with other arguments, or the real CT is missing.
    """
    from simreal.data.real_data import real_data_folder
    from simreal.experiments.baseline import start_from_baseline
    from simreal.metrics.evaluate import evaluate_depth
    from simreal.render.cinematic_run import render_cinematic_dataset
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    cfg = preset or SCALE_PRESETS[scale]
    c = CINEMATIC_FT_PRESETS[scale]
    out = Path(out)
    ct = None
    if c.ct_views:
        folder = real_data_folder(CT_DATASET, real_data)
        ct = (folder / CT_FILES[0], folder / CT_FILES[1])
        for p in ct:
            if not p.is_file():
                raise SimrealError("the real CT patient is missing", p)
    jobs = cinematic_jobs(seed, cfg, c, ct)  # bad seeds refused before any work
    base, st = start_from_baseline(out, baseline, "cinematic-ft", {
        "cinematic": dataclasses.asdict(c), "ct": [str(p.resolve()) for p in ct] if ct else None}, scale=scale, preset=cfg,
        seed=seed, workers=workers, real_data=real_data, log=log)

    # -- cinematic renders, one dataset per patient ----------------------------------------------------------
    data = out / "data"
    rendered: dict[str, dict[str, Path]] = {}
    frame_timings: list[float] = []
    for role, patients in jobs.items():
        rendered[role] = {}
        for name, job in patients.items():
            dest = data / "cinematic" / role / name
            st.run(f"render cinematic {role} {name}", lambda dest=dest, job=job: stages.dataset_once(
                dest, lambda: render_cinematic_dataset(dest, job, progress=False,
                                                       on_frame=lambda i, t: frame_timings.append(
                                                           sum(v for k, v in t.items() if k != "scene_ms")))))
            rendered[role][name] = dest

    sets_dir = data / "sets"
    sets: dict[str, Path] = {}
    for name, parts in training_sets(rendered["finetune"], c).items():
        sets[name] = sets_dir / f"finetune_{name}"
        st.run(f"merge {name}", lambda name=name, parts=parts: stages.dataset_once(sets[name], lambda: stages.merge_datasets(
            parts, sets[name], kinds=("image", "depth"), why=f"cinematic fine-tune patients: {name}")))
    for role in ("val", "test"):
        parts = [(p, list(range(len(DatasetReader(p))))) for p in rendered[role].values()]
        sets[role] = sets_dir / role
        st.run(f"merge {role}", lambda role=role, parts=parts: stages.dataset_once(sets[role], lambda: stages.merge_datasets(
            parts, sets[role], kinds=("image", "depth"), why=f"cinematic {role} patients")))
    if "ct" in rendered:
        sets["ct"] = rendered["ct"]["totalsegmentator"]
    seeds = _patients(seed, cfg, c)
    ext = render_sets(st, out, {"external_realistic": external_realistic_job(cfg, seed, n=c.n_external,
                                                                               colons=seeds["external"])}, workers, prefix="")
    sets["external"] = ext["external_realistic"]

    # -- fine-tuning and from-scratch runs -------------------------------------------------------------------
    runs_dir = out / "runs"
    common = dict(size=cfg.size, batch_size=c.batch_size, channels=cfg.channels, schedule="cosine", augment=True,
                  seed=seed, val=str(sets["val"]))
    runs: dict[str, Path] = {"before": base.depth_run}
    plan = {"multi": ("multi", True), "single": ("single", True),
            **{f"ft_{n}": (f"curve_{n}", True) for n in c.curve_views[:-1]},
            **{f"scratch_{n}": (f"curve_{n}" if n != c.views else "multi", False) for n in c.curve_views}}
    for run_name, (set_name, finetune) in plan.items():
        train_set = sets[set_name]
        run = runs_dir / run_name
        n_frames = len(DatasetReader(train_set))
        extra = dict(init=str(base.depth_run), lr=c.lr) if finetune else dict(lr=cfg.lr)
        st.run(f"train {run_name}", lambda run=run, train_set=train_set, n_frames=n_frames, extra=extra: train_from_kwargs(
            "depth", train_set, run, progress=False, epochs=stages.epochs_for_steps(n_frames, c.steps, c.batch_size), **common, **extra))
        runs[run_name] = run
    runs[f"ft_{c.views}"] = runs["multi"]

    # -- predictions and evaluations ------------------------------------------------------------------------
    evaluate = {"test": ["before", "multi", "single", *(f"ft_{n}" for n in c.curve_views[:-1]),
                         *(f"scratch_{n}" for n in c.curve_views)],
                "external": ["before", "multi", "single", f"scratch_{c.views}"],
                "probe": ["before", "multi", "single"], "ct": ["before", "multi", "single"]}
    preds, evals = out / "predictions", out / "eval"
    for set_name, models in evaluate.items():
        if set_name not in sets:
            continue
        for model in models:
            dest = preds / f"{model}_{set_name}"
            st.run(f"predict {model} {set_name}", lambda model=model, set_name=set_name, dest=dest: stages.dataset_once(
                dest, lambda: predict(runs[model], sets[set_name], dest, progress=False)))
            for scaling in ("median", "none"):
                st.run(f"eval {model} {set_name} ({scaling})", lambda dest=dest, set_name=set_name, model=model, scaling=scaling:
                       evaluate_depth(dest, sets[set_name], evals / f"{model}_{set_name}_{scaling}", scaling=scaling))

    results = _collect(out, cfg, c, scale, seed, base, jobs, rendered, sets, runs, evaluate, st.timings, frame_timings)
    stages.write_results(out, results)
    write_report(out)
    return results


# -- results -------------------------------------------------------------------------------------------------


def reduction(after: list[dict[str, Any]], before: list[dict[str, Any]], column: str) -> dict[str, Any]:
    """Error reduction (before - after) / before of ``column`` on the same frames, at the level of groups.

    Returns :func:`~simreal.experiments.stages.paired_figure` (a = after, b = before) plus ``reduction`` =
    ``1 - mean_a / mean_b`` of the means of group means with its paired cluster-bootstrap interval
    (``reduction_ci_low`` / ``_high``), and ``frame_reduction`` (plain frame means; assumes independent frames).
    """
    d = stages.paired_figure(after, before, column)
    fl = d["frame_level"]
    d["reduction"] = -d["relative_change"]
    d["reduction_ci_low"], d["reduction_ci_high"] = -d["rel_ci_high"], -d["rel_ci_low"]
    d["frame_reduction"] = float(1.0 - fl["mean_a"] / fl["mean_b"]) if fl["mean_b"] else float("nan")
    return d


def _pct(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{100 * x:+.1f}%"


def _reduction_row(label: str, d: dict[str, Any], **extra: Any) -> dict[str, Any]:
    fl = d["frame_level"]
    return {
        "measure": label, **extra, "before": d["mean_b"], "after": d["mean_a"],
        "error reduction [95% CI, groups resampled]": f"{_pct(d['reduction'])} [{_pct(d['reduction_ci_low'])}, "
                                                      f"{_pct(d['reduction_ci_high'])}]",
        "Wilcoxon p (group means)": d["wilcoxon_p"],
        "frame level (assumes independent frames): reduction, p": f"{_pct(d['frame_reduction'])}, p={fl['wilcoxon_p']:.3g}",
        "n_groups": d["n_groups"], "n_frames": d["n_frames"],
    }


_REDUCTION_COLUMNS = ["measure", "before", "after", "error reduction [95% CI, groups resampled]", "Wilcoxon p (group means)",
                      "frame level (assumes independent frames): reduction, p", "n_groups", "n_frames"]


def _ci(f: dict[str, Any]) -> str:
    return f"{f['value']:.4f} [{f['ci_low']:.4f}, {f['ci_high']:.4f}]"


def _collect(out: Path, cfg: ColonScale, c: CinematicFTScale, scale: str, seed: int, base: Any, jobs: dict[str, Any],
             rendered: dict[str, dict[str, Path]], sets: dict[str, Path], runs: dict[str, Path],
             evaluate: dict[str, list[str]], timings: dict[str, Any], frame_timings: list[float]) -> dict[str, Any]:
    evals = out / "eval"
    rows = {(m, s, sc): stages.read_rows(evals / f"{m}_{s}_{sc}") for s, models in evaluate.items() if s in sets
            for m in models for sc in ("median", "none")}
    comparisons: dict[str, dict[str, Any]] = {}
    for s in ("test", "external", "ct", "probe"):
        if s not in sets:
            continue
        comparisons[s] = {}
        for model in ("multi", "single"):
            comparisons[s][model] = {f"{col}_{sc}": reduction(rows[(model, s, sc)], rows[("before", s, sc)], col)
                                     for col, sc, _ in MEASURES}
    main = comparisons["test"]["multi"]["abs_rel_median"]
    ext = comparisons["external"]["multi"]["abs_rel_median"]
    targets = []
    for key, what in (("abs_rel_median", "median-scaled"), ("abs_rel_none", "metric")):
        d = comparisons["test"]["multi"][key]
        targets.append({"target": f"error reduction on renders of held-out patients, abs_rel {what} (n_groups={d['n_groups']} "
                                  f"patients, n_frames={d['n_frames']}; paper: {PAPER_RENDERS_REDUCTION:.2%})",
                        "value": d["reduction"], "threshold": f">= {PAPER_RENDERS_REDUCTION:.4f}",
                        "met": bool(d["reduction"] >= PAPER_RENDERS_REDUCTION)})
    for key, what in (("abs_rel_median", "median-scaled"), ("abs_rel_none", "metric")):
        d = comparisons["external"]["multi"][key]
        targets.append({"target": f"error reduction on the external realistic domain, abs_rel {what} (n_groups={d['n_groups']} "
                                  f"colons, n_frames={d['n_frames']}; paper, real porcine colon: {PAPER_REAL_REDUCTION:.2%})",
                        "value": d["reduction"], "threshold": f">= {PAPER_REAL_REDUCTION:.4f}",
                        "met": bool(d["reduction"] >= PAPER_REAL_REDUCTION)})

    tables = []
    titles = {"test": f"Held-out cinematic patients (renders): before vs after fine-tuning ({main['n_groups']} patients)",
              "external": f"External domain: fast model, realistic look, unseen colons ({ext['n_groups']} colons)",
              "ct": "Real CT patient (TotalSegmentator colon, 3 mm voxels): before vs after fine-tuning (one patient)",
              "probe": "Fine-tune patients, views never trained on (same patients): before vs after"}
    for s in ("test", "external", "ct", "probe"):
        if s in comparisons:
            tables.append({"title": titles[s], "columns": _REDUCTION_COLUMNS,
                           "rows": [_reduction_row(label, comparisons[s]["multi"][f"{col}_{sc}"]) for col, sc, label in MEASURES],
                           "note": "Error reduction = (before - after) / before of the means of group means; its interval "
                                   "resamples groups (the same for before and after). Groups: patients (renders), colons "
                                   "(external). " + ("One group: no interval or test is possible." if s == "ct" else "")})

    # ablation: multi vs single condition
    abl = {}
    fig = lambda m, s: stages.group_figure(rows[(m, s, "median")], "abs_rel")  # noqa: E731
    for model in ("before", "multi", "single"):
        held, seen = fig(model, "test"), fig(model, "probe") if "probe" in sets else None
        abl[model] = {"held_out": held, "seen_patients_new_views": seen,
                      "gap": (held["value"] - seen["value"]) if seen else float("nan"),
                      "external": fig(model, "external")}
    single_vs_multi = stages.paired_figure(rows[("single", "test", "median")], rows[("multi", "test", "median")], "abs_rel")
    abl_rows = []
    for model, label in (("before", "no fine-tuning (baseline network)"),
                         ("multi", f"fine-tuned, {c.conditions} conditions per view"),
                         ("single", f"fine-tuned, 1 condition per view (repeated {c.conditions}x)")):
        a = abl[model]
        abl_rows.append({"fine-tuning": label, "held-out patients [95% CI]": _ci(a["held_out"]),
                         "fine-tune patients, new views [95% CI]": _ci(a["seen_patients_new_views"]) if a["seen_patients_new_views"] else "",
                         "gap held-out - seen": a["gap"], "external realistic [95% CI]": _ci(a["external"]),
                         "n_groups (held-out)": a["held_out"]["n_groups"], "n_frames (held-out)": a["held_out"]["n_frames"]})
    tables.append({"title": "Ablation: multi- vs single-condition fine-tuning (abs_rel, per-image median scaling)",
                   "columns": list(abl_rows[0]), "rows": abl_rows,
                   "note": f"Same views and the same frames per epoch ({c.finetune_frames}); single-condition repeats each "
                           f"view's condition-0 frame {c.conditions} times. A large gap between held-out and seen patients is "
                           f"patient-specific learning. Single - multi on held-out patients: {single_vs_multi['mean_diff']:+.4f} "
                           f"[{single_vs_multi['ci_low']:+.4f}, {single_vs_multi['ci_high']:+.4f}], Wilcoxon p = "
                           f"{single_vs_multi['wilcoxon_p']:.3g} over {single_vs_multi['n_groups']} patients."})

    # training-set-size curve
    curve = []
    for n in c.curve_views:
        tuned = "multi" if n == c.views else f"ft_{n}"  # the last point is the main fine-tuning run
        ft, sc = fig(tuned, "test"), fig(f"scratch_{n}", "test")
        cmp = stages.paired_figure(rows[(tuned, "test", "median")], rows[(f"scratch_{n}", "test", "median")], "abs_rel")
        n_frames = len(DatasetReader(sets["multi" if n == c.views else f"curve_{n}"]))
        curve.append({"views per patient": n, "fine-tuning frames": n_frames, "fine-tuned": ft, "scratch": sc,
                      "fine-tuned - scratch": cmp})
    before_test = fig("before", "test")
    curve_rows = [{"fine-tuning frames": p["fine-tuning frames"], "views per patient": p["views per patient"],
                   "fine-tuned [95% CI]": _ci(p["fine-tuned"]), "from scratch [95% CI]": _ci(p["scratch"]),
                   "fine-tuned - scratch, Wilcoxon p": f"{p['fine-tuned - scratch']['mean_diff']:+.4f}, "
                                                       f"p={p['fine-tuned - scratch']['wilcoxon_p']:.3g}",
                   "n_groups": p["fine-tuned"]["n_groups"], "n_frames": p["fine-tuned"]["n_frames"]} for p in curve]
    tables.append({"title": "Training-set-size curve: abs_rel (median-scaled) on held-out patients after training on n frames",
                   "columns": list(curve_rows[0]), "rows": curve_rows,
                   "note": f"Every run: about {c.steps} optimisation steps (whole epochs), checkpoint chosen on the validation "
                           f"patients. Fine-tuned: from the baseline network, lr {c.lr:g}; from scratch: the same U-Net, lr "
                           f"{cfg.lr:g}. No fine-tuning: {_ci(before_test)}."})

    per_patient = []
    for s in ("test", "ct"):
        if s not in sets:
            continue
        for g in sorted({r["group"] for r in rows[("before", s, "median")]}):
            keep = lambda r, g=g: r["group"] == g  # noqa: E731
            b, n = stages.mean_of(rows[("before", s, "median")], "abs_rel", keep)
            per_patient.append({"patient": g, "set": s, "abs_rel before": b,
                                "abs_rel after (multi)": stages.mean_of(rows[("multi", s, "median")], "abs_rel", keep)[0],
                                "abs_rel after (single)": stages.mean_of(rows[("single", s, "median")], "abs_rel", keep)[0],
                                "n_frames": n})
    tables.append({"title": "abs_rel (median-scaled) per held-out patient", "columns": list(per_patient[0]), "rows": per_patient})

    protocol = []
    views = {"finetune": f"{c.views} trained + {c.probe_views} probe", "val": str(c.val_views), "test": str(c.test_views),
             "ct": str(c.ct_views)}
    for role, patients in jobs.items():
        n = sum(len(DatasetReader(p)) for p in rendered[role].values())
        protocol.append({"role": role, "patients": ", ".join(patients), "views per patient": views[role],
                         "conditions": c.conditions, "frames": n, "render size (px)": c.render_size, "spp": c.spp})
    protocol.append({"role": "external (fast model, realistic look)", "patients": ", ".join(map(str, _patients(seed, cfg, c)["external"])),
                     "views per patient": "", "conditions": "", "frames": len(DatasetReader(sets["external"])),
                     "render size (px)": cfg.size, "spp": ""})
    tables.append({"title": f"Protocol at scale {scale!r}", "columns": list(protocol[0]), "rows": protocol,
                   "note": f"Networks see {cfg.size} px (renders are resized by the data loader; predictions are resized back "
                           "to each frame's own size for evaluation)."})

    render_s = [v for k, v in timings.items() if k.startswith("render cinematic") and isinstance(v, float)]
    n_now = len(frame_timings)
    speed = {"frames rendered now": n_now, "render stages (s)": round(sum(render_s), 2),
             "mean frame (s, render + depth cast + write)": float(np.mean(frame_timings) / 1e3) if n_now else None}
    notes = _notes(scale, c, cfg, comparisons, abl, single_vs_multi, curve, before_test, speed)
    return {
        "name": "cinematic-ft",
        "scale": scale,
        "summary": (f"Cinematic fine-tuning at scale {scale!r}: the baseline's synthetic-only depth network fine-tuned on "
                    "path-traced renders of CT phantoms (all layers), measured before and after on held-out patients, a "
                    "real CT colon and an external realistic-look domain; groups are patients / colons."),
        "targets": targets,
        "tables": tables,
        "figures": _figures(out, c, rendered, sets, runs, curve, before_test),
        "notes": notes,
        "metrics": {"comparisons": comparisons, "ablation": abl, "single_vs_multi": single_vs_multi, "curve": curve,
                    "render_speed": speed},
        "config": {
            "scale": scale_arguments(scale, cfg), "cinematic": dataclasses.asdict(c), "seed": seed,
            "baseline": str(base.root.resolve()),
            "colons": {**{f"baseline {k}": v for k, v in colon_seeds(seed, cfg).items()},
                       **{f"cinematic {k}": v for k, v in _patients(seed, cfg, c).items()}},
            "jobs": {role: {n: j.to_dict() for n, j in p.items()} for role, p in jobs.items()},
            "runs": {name: json.loads((run / "config.json").read_text()) for name, run in runs.items()
                     if name != "before" and (run / "config.json").is_file()},
        },
        "environment": environment(),
        "timings": {**timings, "total (stages run now)": round(sum(v for v in timings.values() if isinstance(v, float)), 2)},
    }


def _verdict(d: dict[str, Any]) -> str:
    sig = d["wilcoxon_p"] < 0.05
    word = "lower" if d["reduction"] > 0 else "higher" if d["reduction"] < 0 else "unchanged"
    return (f"{d['mean_b']:.4f} -> {d['mean_a']:.4f} ({word}: reduction {_pct(d['reduction'])} "
            f"[{_pct(d['reduction_ci_low'])}, {_pct(d['reduction_ci_high'])}], p = {d['wilcoxon_p']:.3g} over "
            f"{d['n_groups']} groups / {d['n_frames']} frames{'' if sig else ', not significant'})")


def _notes(scale: str, c: CinematicFTScale, cfg: ColonScale, comparisons: dict[str, Any], abl: dict[str, Any],
           single_vs_multi: dict[str, Any], curve: list[dict[str, Any]], before_test: dict[str, Any],
           speed: dict[str, Any]) -> list[str]:
    notes = []
    if scale == "smoke":
        notes.append("SMOKE SCALE: a handful of tiny renders (32 px, 1 spp) and a few optimisation steps. These numbers "
                     "only show that every stage runs; they say nothing about the method.")
    t, e = comparisons["test"]["multi"], comparisons["external"]["multi"]
    helped = lambda d: d["reduction"] > 0 and d["wilcoxon_p"] < 0.05  # noqa: E731
    notes.append(f"Held-out patients (renders): abs_rel (median-scaled) {_verdict(t['abs_rel_median'])}; metric abs_rel "
                 f"{_verdict(t['abs_rel_none'])}; RMSE (median-scaled) {_verdict(t['rmse_median'])}. Paper: "
                 f"{PAPER_RENDERS_REDUCTION:.2%} less error on renders; here "
                 + ("fine-tuning helped significantly." if helped(t["abs_rel_median"]) else
                    "fine-tuning did NOT give a significant reduction of median-scaled abs_rel."))
    notes.append(f"External realistic domain (fast model, look='realistic', {e['abs_rel_median']['n_groups']} colons no other "
                 f"set uses): abs_rel (median-scaled) {_verdict(e['abs_rel_median'])}; metric abs_rel "
                 f"{_verdict(e['abs_rel_none'])}. Paper: {PAPER_REAL_REDUCTION:.2%} on a real porcine colon; this stand-in "
                 "domain has ground-truth depth, real frames here (CVC-ClinicDB) have none. "
                 + ("Fine-tuning on renders transferred to it." if helped(e["abs_rel_median"]) else
                    "Fine-tuning on renders did NOT transfer to it significantly."))
    if "ct" in comparisons:
        d = comparisons["ct"]["multi"]["abs_rel_median"]
        notes.append(f"Real CT colon (TotalSegmentator example, one patient, {d['n_frames']} frames): abs_rel (median-scaled) "
                     f"{d['mean_b']:.4f} -> {d['mean_a']:.4f}. Its voxels are 3 mm and its colon label is a model output, so "
                     "the lumen wall is coarse and blocky next to the phantoms' 1 mm; one patient gives no interval and no test.")
    gap_m, gap_s = abl["multi"]["gap"], abl["single"]["gap"]
    notes.append(f"Multi- vs single-condition (same views, same frames per epoch): held-out patients abs_rel "
                 f"{abl['multi']['held_out']['value']:.4f} (multi) vs {abl['single']['held_out']['value']:.4f} (single), "
                 f"single - multi {single_vs_multi['mean_diff']:+.4f} [{single_vs_multi['ci_low']:+.4f}, "
                 f"{single_vs_multi['ci_high']:+.4f}], p = {single_vs_multi['wilcoxon_p']:.3g} over "
                 f"{single_vs_multi['n_groups']} patients; gap held-out - seen patients {gap_m:+.4f} (multi) vs {gap_s:+.4f} "
                 "(single). " + ("Condition variety helped on held-out patients." if single_vs_multi["mean_diff"] > 0 and
                                 single_vs_multi["wilcoxon_p"] < 0.05 else
                                 "No significant benefit of condition variety on held-out patients at this scale."))
    first, last = curve[0], curve[-1]
    notes.append(f"Training-set-size curve (held-out patients, abs_rel median-scaled; no fine-tuning {before_test['value']:.4f}): "
                 f"fine-tuned {first['fine-tuned']['value']:.4f} with {first['fine-tuning frames']} frames -> "
                 f"{last['fine-tuned']['value']:.4f} with {last['fine-tuning frames']}; from scratch "
                 f"{first['scratch']['value']:.4f} -> {last['scratch']['value']:.4f}. "
                 + ("The fine-tuned network is better than from-scratch training at every size."
                    if all(p["fine-tuned"]["value"] < p["scratch"]["value"] for p in curve) else
                    "The fine-tuned network is NOT better than from-scratch training at every size."))
    notes.append(f"Fixed a priori, chosen on no test figure: fine-tuning all layers from the baseline's best checkpoint, lr "
                 f"{c.lr:g} with cosine decay, batch {c.batch_size}, flips, about {c.steps} optimisation steps; the checkpoint "
                 f"(epoch) is the best on the {c.n_val} validation patients by median-scaled abs_rel. From-scratch runs: the "
                 f"baseline's U-Net and lr {cfg.lr:g}, same steps and selection. Test patients, the CT patient and the "
                 "external colons were never rendered for training or validation and were evaluated once.")
    notes.append("Groups: frames of one patient (or colon) are not independent, so tests and intervals use group means "
                 "(two-sided Wilcoxon signed-rank, cluster bootstrap); the frame-level column assumes independent frames and "
                 "is shown only beside them. With fewer than 6 groups a two-sided Wilcoxon test cannot reach p < 0.05.")
    if speed["frames rendered now"]:
        notes.append(f"Render speed in this run: {speed['frames rendered now']} cinematic frames at {c.render_size} px, {c.spp} spp, "
                     f"{speed['mean frame (s, render + depth cast + write)']:.2f} s per frame (render, depth cast, write; scene "
                     "building and phantom voxelisation are in the stage timings), on this machine as loaded at the time.")
    return notes


# -- figures ---------------------------------------------------------------------------------------------------


def _figures(out: Path, c: CinematicFTScale, rendered: dict[str, dict[str, Path]], sets: dict[str, Path],
             runs: dict[str, Path], curve: list[dict[str, Any]], before_test: dict[str, Any]) -> list[dict[str, str]]:
    from simreal.data.contact_sheet import pick_indices

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    figures = []

    # contact sheet: views of one fine-tune patient under every condition
    name, path = next(iter(rendered["finetune"].items()))
    reader = DatasetReader(path)
    by = {(int(r.params["view_index"]), int(r.params["condition_index"])): i for i, r in enumerate(reader.records)}
    rows = []
    for v in range(min(3, c.views + c.probe_views)):
        row = []
        for k in range(c.conditions):
            p = reader.records[by[(v, k)]].params["condition"]
            row.append((f"cond {k}: {p['transfer']['name']}, {p['lighting']['kind']}", reader.read(by[(v, k)], "image")))
        row.append(("depth (truth)", reader.read(by[(v, 0)], "depth")))
        rows.append(row)
    stages.prediction_grid(rows, fig_dir / "contact_sheet.png", f"Cinematic renders of {name}: views (rows) under "
                           f"{c.conditions} rendering conditions ({c.render_size} px, {c.spp} spp)")
    figures.append({"title": f"Contact sheet: {name}, one row per view, one column per rendering condition, and the depth label",
                    "path": "figures/contact_sheet.png"})

    for set_name, title in (("test", "Held-out cinematic patients"), ("external", "External realistic domain (fast model)"),
                            ("ct", "Real CT colon (TotalSegmentator, 3 mm voxels)")):
        if set_name not in sets:
            continue
        gt = DatasetReader(sets[set_name])
        pb, pa = DatasetReader(out / "predictions" / f"before_{set_name}"), DatasetReader(out / "predictions" / f"multi_{set_name}")
        rows = []
        for i in pick_indices(len(gt), 5):
            sid, d = gt.ids[i], gt.read(i, "depth")
            b, a = pb.read(pb.ids.index(sid), "depth"), pa.read(pa.ids.index(sid), "depth")
            rows.append([("frame", gt.read(i, "image")), ("depth (truth)", d), ("predicted before", b), ("predicted after", a),
                         ("error before", stages.abs_rel_error_rgb(b, d)), ("error after", stages.abs_rel_error_rgb(a, d))])
        valid = np.concatenate([gt.read(i, "depth")[gt.read(i, "depth") > 0] for i in range(min(len(gt), 20))])
        stages.prediction_grid(rows, fig_dir / f"depth_{set_name}.png",
                               f"{title}: depth before / after fine-tuning (error: median-scaled abs rel, 0 black to 0.5 white)",
                               depth_range=(float(np.percentile(valid, 1)), float(np.percentile(valid, 99))))
        figures.append({"title": f"{title}: frame / true depth / predicted before / after / error before / after",
                        "path": f"figures/depth_{set_name}.png"})

    _plot_curve(curve, before_test, fig_dir / "curve.png")
    figures.append({"title": "Training-set-size curve: abs_rel (median-scaled) on held-out patients vs fine-tuning frames "
                             "(95% CI over patients)", "path": "figures/curve.png"})
    stages.plot_training_curves({"fine-tune, multi-condition": runs["multi"], "fine-tune, single-condition": runs["single"],
                                 "from scratch": runs[f"scratch_{c.views}"]}, fig_dir / "training.png")
    figures.append({"title": "Training and validation losses (validation = the validation patients)", "path": "figures/training.png"})
    return figures


def _plot_curve(curve: list[dict[str, Any]], before: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    x = [p["fine-tuning frames"] for p in curve]
    for key, label in (("fine-tuned", "fine-tuned from the synthetic network"), ("scratch", "trained from scratch")):
        y = np.array([p[key]["value"] for p in curve])
        lo = y - np.array([p[key]["ci_low"] for p in curve])
        hi = np.array([p[key]["ci_high"] for p in curve]) - y
        ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=3, label=label)
    ax.axhline(before["value"], color="grey", ls="--", label="no fine-tuning")
    ax.set_xscale("log")
    ax.set_xlabel("fine-tuning frames")
    ax.set_ylabel("abs_rel (median-scaled)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
