"""`simreal eval depth|seg` and `simreal compare`: metrics and paired statistics.

    simreal eval depth --pred PRED --gt GT --out OUT [--scaling none|median|lsq] [--per image|sequence]
                       [--min-depth MM] [--max-depth MM] [--nrmse-norm range|mean] [--intersect]
                       [--progress/--no-progress]
    simreal eval seg   --pred PRED --gt GT --out OUT [--include-background] [--spacing MM] [--intersect]
                       [--progress/--no-progress]
    simreal compare A.csv B.csv --metric abs_rel [--out result.json] [--intersect] [--n-boot 10000]
                       [--seed 0] [--alternative two-sided|greater|less] [--frame-level]

When the rows carry groups (sequences), summaries and comparisons are given at the group level (per-
group means, cluster bootstrap); ``compare --frame-level`` adds the frame level, which assumes
independent frames, beside it.
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
    """Print an evaluation summary as a table: metric, mean, std, median, n and, with groups, n_groups
    and the mean of group means with its cluster-bootstrap CI."""
    console = console or _wide_console()
    n_groups = summary.get("n_groups")
    title = f"{summary['task']} evaluation, n = {summary['n']} frames"
    if n_groups:
        title += f", n_groups = {n_groups}"
    table = Table(title=title)
    columns = ["metric", "mean", "std", "median", "n"]
    if n_groups:
        conf = summary.get("group_stats", {}).get("confidence", 0.95)
        columns += ["n_groups", "mean of group means", f"{100 * conf:.0f}% cluster CI"]
    for col in columns:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name, s in summary["metrics"].items():
        n = str(s["n"]) + (f" ({s['n_nan']} NaN)" if s.get("n_nan") else "")
        cells = [name, _fmt(s["mean"]), _fmt(s["std"]), _fmt(s["median"]), n]
        if n_groups:
            ci = f"[{_fmt(s.get('group_ci_low'))}, {_fmt(s.get('group_ci_high'))}]"
            cells += [_fmt(s.get("n_groups")), _fmt(s.get("group_mean")), ci]
        table.add_row(*cells)
    console.print(table)
    settings = ", ".join(f"{k}={v}" for k, v in summary["settings"].items() if k != "classes")
    console.print(f"settings: {settings}")
    if n_groups:
        console.print("group level: each group weighs equally; CI from a cluster bootstrap over whole groups")
    if summary.get("note"):
        console.print(f"note: {summary['note']}")
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
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
        progress=progress,
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
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Per-class Dice, IoU and HD95 per sample and summary."""
    from simreal.metrics.evaluate import evaluate_seg

    summary = evaluate_seg(
        pred, gt, out, include_background=include_background, spacing=spacing, intersect=intersect, progress=progress
    )
    print_summary(summary, out)


def _nan_to_none(x: Any) -> Any:
    """JSON has no NaN: undefined numbers (e.g. d_z of constant differences) become null."""
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    return x


def _comparison_rows(r: Any, *, group: bool) -> list[tuple[str, str]]:
    """(quantity, value) rows of one level of a comparison; the labels are the same at both levels.

    At the group level every number is over group means (pairs = groups, groups resampled whole);
    the command says so under the table.
    """
    return [
        ("n pairs", f"{r.n_groups} groups ({r.n_frames} frames)" if group else f"{r.n} frames"),
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


def _wide_console() -> Console:
    # Piped output (logs, CI, tests) has no terminal width; rich would then wrap the long column
    # titles at 80 characters, so give it room. A real terminal keeps its own width.
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 140))


def compare(
    a: Path = typer.Argument(..., help="rows.csv of method A."),
    b: Path = typer.Argument(..., help="rows.csv of method B."),
    metric: str = typer.Option(..., "--metric", help="Column to compare, e.g. abs_rel or dice_polyp."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result (both levels) as JSON here."),
    intersect: bool = typer.Option(False, "--intersect", help="Compare the shared sample ids only."),
    n_boot: int = typer.Option(10000, "--n-boot", help="Bootstrap resamples for the CI."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    alternative: AltChoice = typer.Option(AltChoice.two_sided, "--alternative", help="Wilcoxon alternative for A - B."),
    frame_level: bool = typer.Option(
        False, "--frame-level", help="Also show the frame-level numbers, which assume independent frames, beside the group level."
    ),
) -> None:
    """Paired comparison of two per-sample metric tables (difference = A - B): bootstrap CI, Wilcoxon.

    When the rows carry groups (sequences), every number is computed on per-group means (pairs =
    groups, cluster bootstrap over groups, each group weighs equally). Without groups, frames are
    treated as independent.
    """
    from simreal.metrics.compare import compare_rows
    from simreal.metrics.stats import FRAME_LEVEL_ASSUMPTION, GroupComparison

    r = compare_rows(a, b, metric, intersect=intersect, n_boot=n_boot, seed=seed, alternative=alternative.value)  # type: ignore[arg-type]
    group = r if isinstance(r, GroupComparison) else None
    frame = group.frame_level if group is not None else r
    console = _wide_console()
    table = Table(title=f"{metric}: A = {a}, B = {b}")
    table.add_column("quantity")
    columns = []
    if group is not None:
        table.add_column(f"group level (n_groups = {group.n_groups})", justify="right")
        columns.append(_comparison_rows(group, group=True))
    if frame_level or group is None:
        table.add_column(f"frame level, {FRAME_LEVEL_ASSUMPTION} (n_frames = {frame.n})", justify="right")
        columns.append(_comparison_rows(frame, group=False))
    for i, (label, _) in enumerate(columns[0]):
        table.add_row(label, *(col[i][1] for col in columns))
    console.print(table)
    if group is not None:
        console.print("group level: one pair per group mean, the CI resamples whole groups, each group weighs equally")
        if group.note:
            console.print(f"note (group level): {group.note}")
        if frame_level and frame.note:
            console.print(f"note (frame level): {frame.note}")
        if not frame_level:
            console.print("frame-level numbers (which assume independent frames): add --frame-level")
    elif frame.note:
        console.print(f"note: {frame.note}")
    if out is not None:
        result = {
            "metric": metric,
            "a": str(a),
            "b": str(b),
            "level": "group" if group is not None else "frame",
            "group_level": None,
            "frame_level": {"level": "frame", "assumption": FRAME_LEVEL_ASSUMPTION, **frame.to_dict()},
        }
        if group is not None:
            result["group_level"] = {k: v for k, v in group.to_dict().items() if k != "frame_level"}
        result = _nan_to_none(result)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimrealError(f"cannot create the output folder ({exc.strerror})", out.parent) from None
        try:
            write_json(out, result)
        except OSError as exc:
            raise SimrealError(f"cannot write the result ({exc.strerror or exc})", out) from None
        console.print(f"wrote {out}")


from simreal.cli.evaluate_sets import fid_command  # noqa: E402  (image-set metrics: FID, KID)

app.command("fid")(fid_command)

from simreal.cli.evaluate_mmfid import mmfid_command  # noqa: E402  (multi-scale FID / STD, paper 3)

app.command("mmfid")(mmfid_command)

from simreal.cli.evaluate_label_validity import label_validity_command  # noqa: E402  (translated images vs source labels)

app.command("label-validity")(label_validity_command)
