"""`simreal eval depth|seg` and `simreal compare`: metrics and paired statistics.

    simreal eval depth --pred PRED --gt GT --out OUT [--scaling none|median|lsq] [--per image|sequence]
                       [--min-depth MM] [--max-depth MM] [--nrmse-norm range|mean] [--intersect]
    simreal eval seg   --pred PRED --gt GT --out OUT [--include-background] [--spacing MM] [--intersect]
    simreal compare A.csv B.csv --metric abs_rel [--out result.json] [--intersect] [--n-boot 10000]
                       [--seed 0] [--alternative two-sided|greater|less]
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from simreal.data.writer import write_json
from simreal.errors import SimrealError

app = typer.Typer(
    help="Evaluate predictions against ground truth: per-sample rows.csv and summary.json.",
    no_args_is_help=True,
)


class ScalingChoice(str, Enum):
    none = "none"
    median = "median"
    lsq = "lsq"


class PerChoice(str, Enum):
    image = "image"
    sequence = "sequence"


class NormChoice(str, Enum):
    range = "range"
    mean = "mean"


class AltChoice(str, Enum):
    two_sided = "two-sided"
    greater = "greater"
    less = "less"


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def print_summary(summary: dict[str, Any], out_dir: Path | None = None, console: Console | None = None) -> None:
    """Print an evaluation summary as a table: metric, mean, std, median, n."""
    console = console or Console()
    title = f"{summary['task']} evaluation, n = {summary['n']}"
    table = Table(title=title)
    for col in ("metric", "mean", "std", "median", "n"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, s in summary["metrics"].items():
        n = str(s["n"]) + (f" ({s['n_nan']} NaN)" if s.get("n_nan") else "")
        table.add_row(name, _fmt(s["mean"]), _fmt(s["std"]), _fmt(s["median"]), n)
    console.print(table)
    settings = ", ".join(f"{k}={v}" for k, v in summary["settings"].items() if k != "classes")
    console.print(f"settings: {settings}")
    if out_dir is not None:
        console.print(f"wrote {out_dir / 'rows.csv'} and {out_dir / 'summary.json'}")


@app.command("depth")
def depth(
    pred: Path = typer.Option(..., "--pred", help="Prediction dataset folder (kind depth, mm)."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth dataset folder (kind depth, mm)."),
    out: Path = typer.Option(..., "--out", help="Output folder for rows.csv and summary.json."),
    scaling: ScalingChoice = typer.Option(ScalingChoice.none, help="Scale predictions: none, median ratio, least squares."),
    per: PerChoice = typer.Option(PerChoice.image, help="Fit the scale per image or per sequence (record group)."),
    min_depth: Optional[float] = typer.Option(None, "--min-depth", help="Ignore gt below this depth (mm); clip predictions."),
    max_depth: Optional[float] = typer.Option(None, "--max-depth", help="Ignore gt above this depth (mm); clip predictions."),
    nrmse_norm: NormChoice = typer.Option(NormChoice.range, "--nrmse-norm", help="NRMSE divisor: gt range or gt mean."),
    intersect: bool = typer.Option(False, "--intersect", help="Evaluate shared ids instead of failing on different sets."),
) -> None:
    """Depth metrics (abs_rel, sq_rel, rmse, rmse_log, delta1-3, nrmse, l1_mm, ssim) per sample and summary."""
    from simreal.metrics.evaluate import evaluate_depth

    summary = evaluate_depth(
        pred,
        gt,
        out,
        scaling=scaling.value,  # type: ignore[arg-type]
        per=per.value,
        min_depth=min_depth,
        max_depth=max_depth,
        nrmse_norm=nrmse_norm.value,  # type: ignore[arg-type]
        intersect=intersect,
    )
    print_summary(summary, out)


@app.command("seg")
def seg(
    pred: Path = typer.Option(..., "--pred", help="Prediction dataset folder (kind mask)."),
    gt: Path = typer.Option(..., "--gt", help="Ground-truth dataset folder (kind mask, classes in dataset.json)."),
    out: Path = typer.Option(..., "--out", help="Output folder for rows.csv and summary.json."),
    include_background: bool = typer.Option(False, "--include-background", help="Also score class 0."),
    spacing: Optional[float] = typer.Option(None, "--spacing", help="Pixel size in mm: HD95 in mm instead of pixels."),
    intersect: bool = typer.Option(False, "--intersect", help="Evaluate shared ids instead of failing on different sets."),
) -> None:
    """Per-class Dice, IoU and HD95 per sample and summary."""
    from simreal.metrics.evaluate import evaluate_seg

    summary = evaluate_seg(pred, gt, out, include_background=include_background, spacing=spacing, intersect=intersect)
    print_summary(summary, out)


def compare(
    a: Path = typer.Argument(..., help="rows.csv of method A."),
    b: Path = typer.Argument(..., help="rows.csv of method B."),
    metric: str = typer.Option(..., "--metric", help="Column to compare, e.g. abs_rel or dice_polyp."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result as JSON here."),
    intersect: bool = typer.Option(False, "--intersect", help="Compare the shared sample ids only."),
    n_boot: int = typer.Option(10000, "--n-boot", help="Bootstrap resamples for the CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    alternative: AltChoice = typer.Option(AltChoice.two_sided, "--alternative", help="Wilcoxon alternative for A - B."),
) -> None:
    """Paired comparison of two per-sample metric tables (difference = A - B): bootstrap CI, Wilcoxon."""
    from simreal.metrics.stats import compare_rows

    r = compare_rows(a, b, metric, intersect=intersect, n_boot=n_boot, seed=seed, alternative=alternative.value)  # type: ignore[arg-type]
    console = Console()
    table = Table(title=f"{metric}: A = {a}, B = {b}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    rows = [
        ("n pairs", str(r.n)),
        ("mean A", _fmt(r.mean_a)),
        ("mean B", _fmt(r.mean_b)),
        ("median A", _fmt(r.median_a)),
        ("median B", _fmt(r.median_b)),
        ("mean difference A - B", _fmt(r.mean_diff)),
        (f"{100 * r.confidence:.0f}% bootstrap CI", f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"),
        (f"Wilcoxon p ({r.alternative})", _fmt(r.wilcoxon_p)),
        ("Cohen's d_z", _fmt(r.cohens_dz)),
        ("rank-biserial r", _fmt(r.rank_biserial)),
    ]
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)
    if r.note:
        console.print(f"note: {r.note}")
    if out is not None:
        # JSON has no NaN: undefined numbers (e.g. d_z of constant differences) become null.
        result = {
            "metric": metric,
            "a": str(a),
            "b": str(b),
            **{k: (None if isinstance(v, float) and v != v else v) for k, v in r.to_dict().items()},
        }
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimrealError(f"cannot create the output folder ({exc.strerror})", out.parent) from None
        try:
            write_json(out, result)
        except OSError as exc:
            raise SimrealError(f"cannot write the result ({exc.strerror or exc})", out) from None
        console.print(f"wrote {out}")
