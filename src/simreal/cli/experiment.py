"""`simreal experiment NAME` and `simreal report DIR`: named protocols end to end, with an HTML report."""

from __future__ import annotations

from pathlib import Path

import typer

from simreal.errors import SimrealError


def experiment(
    name: str = typer.Argument(..., help="Experiment to run (see the list below)."),
    scale: str = typer.Option("smoke", "--scale", help="smoke (< 2 min, what the tests run) | small (CPU, < 30 min) | full (GPU)."),
    out: Path = typer.Option(..., "--out", help="Folder for everything the experiment writes."),
    seed: int = typer.Option(0, "--seed", help="Seed for rendering, splits and training."),
    workers: int = typer.Option(2, "--workers", min=1, help="Render processes."),
    real_data: Path = typer.Option(
        None, "--real-data", help="Folder holding the real data sets (default: ../shared/data beside the checkout)."
    ),
) -> None:
    """Run a named protocol end to end; writes OUT/results.json and a self-contained OUT/report.html.

    Experiments: baseline (render synthetic colonoscopy, train depth and polyp segmentation, evaluate on
    held-out synthetic frames and on real CVC-ClinicDB, split by video sequence). A rerun with the same
    arguments reuses every stage already finished (renders, training runs, predictions).
    """
    from simreal.experiments import EXPERIMENTS, SCALES

    if name not in EXPERIMENTS:
        raise SimrealError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    if scale not in SCALES:
        raise SimrealError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    results = EXPERIMENTS[name](out=out, scale=scale, seed=seed, workers=workers, real_data=real_data)
    for row in results.get("targets", []):
        mark = "met" if row["met"] else "NOT met"
        typer.echo(f"  {row['target']}: {row['value']:.4g} (threshold {row['threshold']}) {mark}")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.html'}")


def report(directory: Path = typer.Argument(..., help="An experiment's output folder.")) -> None:
    """Rebuild DIR/report.html from DIR/results.json (tables, plots, image grids, config, environment, timings)."""
    from simreal.experiments.report import write_report

    typer.echo(f"wrote {write_report(directory)}")
