"""The ``depth-recipes`` experiment: choose the depth network's training recipe on validation colons only.

Every candidate recipe trains the same depth U-Net on the same training colons for the same number of
epochs (the baseline protocol's data, :mod:`simreal.experiments.colon_protocol`); each run keeps its best
epoch by the validation figure that is reported (per-image median-scaled abs_rel), and the recipe with
the lowest validation figure wins. **The test colons are never rendered here**: the chosen recipe is what
:mod:`simreal.experiments.baseline` trains, and the baseline reports its test figure, once.

The candidates are the recipes behind the README's earlier table (chosen then on test figures, which is
what this experiment replaces).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable

from simreal.experiments import stages
from simreal.experiments.stages import group_figure
from simreal.experiments.colon_protocol import (
    SCALE_PRESETS,
    ColonData,
    ColonScale,
    colon_seeds,
    render_jobs,
    render_sets,
    scale_arguments,
    training_options,
)
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report

#: Candidate recipes: keyword overrides of the protocol's training options (cosine decay + flips, L1 0.1).
RECIPES: dict[str, dict[str, Any]] = {
    "L1 1.0, constant LR, no flips": {"l1_weight": 1.0, "schedule": "constant", "augment": False},
    "L1 1.0, cosine LR + flips": {"l1_weight": 1.0},
    "log-L1 1.0 instead of L1, cosine LR + flips": {"l1_weight": 0.0, "log_l1_weight": 1.0},
    "L1 0.1, cosine LR + flips (the default)": {"l1_weight": 0.1},
}

#: Epochs of every candidate per scale (equal budgets; the baseline then trains the winner for its own
#: ``depth_epochs``). Sized so that the small scale's four runs fit in an hour on 2 CPU cores.
RECIPE_EPOCHS = {"smoke": 2, "small": 10, "full": 40}


def _slug(name: str) -> str:
    return stages.slug(name)[:40]


def _validation_curve(run: Path) -> list[tuple[int, float, float]]:
    """(epoch, val/abs_rel_median, val/abs_rel) per validation in a run's metrics.csv."""
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [(int(float(r["epoch"])), float(r["val/abs_rel_median"]), float(r["val/abs_rel"]))
            for r in rows if r.get("val/abs_rel_median")]


def run_depth_recipes(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                      log: Callable[[str], None] = print, preset: ColonScale | None = None) -> dict[str, Any]:
    """Train every candidate recipe and choose one on validation; returns the results (results.json)."""
    from simreal.metrics.evaluate import evaluate_depth
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    cfg = preset or SCALE_PRESETS[scale]
    epochs = RECIPE_EPOCHS[scale]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = stages.Stages(out, {"experiment": "depth-recipes", **scale_arguments(scale, cfg), "seed": seed,
                             "epochs": epochs, "recipes": RECIPES}, log)
    jobs = render_jobs(cfg, seed)
    folders = render_sets(st, out, {name: jobs[name] for name in ("train", "val")}, workers)  # never the test colons
    data = ColonData(train=folders["train"], val=folders["val"], test=Path("not-rendered"), cvc=Path("not-used"))
    common = training_options(cfg, seed, data)

    rows, curves = [], {}
    for name, recipe in RECIPES.items():
        run = out / "runs" / _slug(name)
        st.run(f"train {name}", lambda run=run, recipe=recipe: train_from_kwargs(
            "depth", data.train, run, progress=False, epochs=epochs, **{**common, **recipe}))
        pred = out / "predictions" / _slug(name)
        st.run(f"predict val {name}", lambda run=run, pred=pred: stages.dataset_once(
            pred, lambda: predict(run, data.val, pred, progress=False)))
        evals = {s: out / "eval" / f"{_slug(name)}_{s}" for s in ("median", "none")}
        for scaling, folder in evals.items():
            st.run(f"eval val {name} ({scaling})", lambda folder=folder, scaling=scaling, pred=pred: evaluate_depth(
                pred, data.val, folder, scaling=scaling))
        curve = _validation_curve(run)
        curves[name] = curve
        best_epoch = min(curve, key=lambda c: c[1])[0]
        med, metric = (group_figure(stages.read_rows(evals[s]), "abs_rel") for s in ("median", "none"))
        rows.append({"recipe": name, "best epoch": best_epoch, "val abs_rel (median-scaled)": med["value"],
                     "95% CI (colons resampled)": f"[{med['ci_low']:.3f}, {med['ci_high']:.3f}]",
                     "val abs_rel (metric)": metric["value"], "n_groups": med["n_groups"], "n_frames": med["n_frames"]})
    chosen = min(rows, key=lambda r: r["val abs_rel (median-scaled)"])
    figures = [_plot_curves(curves, out / "figures" / "validation.png")]
    default = "L1 0.1, cosine LR + flips (the default)"
    notes = [
        f"Every recipe trained {epochs} epochs on the same {cfg.n_train} frames of {cfg.n_colons} colons; its best "
        f"epoch and the recipe were chosen on {cfg.n_val} validation frames of {cfg.n_val_colons} other colons "
        f"({', '.join(f'colon-{s}' for s in colon_seeds(seed, cfg)['val'])}). No test frame was rendered.",
        f"Chosen on validation: {chosen['recipe']}." + (
            "" if chosen["recipe"] == default else f" This is NOT the current default ({default}); the baseline "
            "should train the chosen recipe."),
        "The baseline experiment trains the default recipe and reports its test figure once.",
    ]
    results = {
        "name": "depth-recipes", "scale": scale,
        "summary": "Depth training recipes compared on validation colons only; the winner is the baseline's recipe.",
        "tables": [{"title": "Depth recipes on the validation colons (best epoch of each run)",
                    "columns": ["recipe", "best epoch", "val abs_rel (median-scaled)", "95% CI (colons resampled)",
                                "val abs_rel (metric)", "n_groups", "n_frames"], "rows": rows}],
        "figures": figures, "notes": notes,
        "metrics": {"chosen": chosen["recipe"], "rows": rows, "curves": curves},
        "config": {"scale": scale_arguments(scale, cfg), "seed": seed, "epochs": epochs, "recipes": RECIPES},
        "environment": environment(),
        "timings": {**st.timings, "total (stages run now)": round(sum(v for v in st.timings.values() if isinstance(v, float)), 2)},
    }
    stages.write_results(out, results)
    write_report(out)
    return results


def _plot_curves(curves: dict[str, list[tuple[int, float, float]]], path: Path) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, curve in curves.items():
        ax.plot([c[0] for c in curve], [c[1] for c in curve], marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation abs_rel (median-scaled)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {"title": "Validation abs_rel (median-scaled) per epoch, every recipe", "path": f"figures/{path.name}"}
