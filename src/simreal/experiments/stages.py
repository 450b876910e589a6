"""Helpers every experiment uses: cached stages with timings, default data locations, figures."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal.data.writer import write_json
from simreal.errors import SimrealError


class Stages:
    """Runs an experiment's stages once each: a rerun skips finished stages and resumes the rest.

    A stage is finished when its marker ``<out>/.stages/<name>.done`` exists (written only after the
    stage's work returned), not merely when its output exists: an interrupted training leaves a
    checkpoint behind but is not finished. Unfinished stages are simply run again; every stage's work
    resumes by itself (renders keep finished frames, training resumes from its last checkpoint).
    Timings of stages run now are kept in ``timings`` (seconds); skipped ones show as "reused", so a
    report never claims a time it did not measure.
    """

    def __init__(self, out: Path, arguments: dict[str, Any], log: Callable[[str], None] = print):
        self.markers = Path(out) / ".stages"
        self.timings: dict[str, float | str] = {}
        self.log = log
        self._check_arguments(json.loads(json.dumps(arguments, default=str)))

    def _check_arguments(self, arguments: dict[str, Any]) -> None:
        """Finished stages may only be reused by a run with the same arguments (scale, seed, data...)."""
        path = self.markers / "arguments.json"
        if path.is_file():
            before = json.loads(path.read_text())
            if before != arguments:
                changed = sorted(k for k in set(before) | set(arguments) if before.get(k) != arguments.get(k))
                raise SimrealError(
                    f"this experiment folder was made with other arguments ({', '.join(changed)} differ); "
                    "use another --out, or the same arguments to resume",
                    path.parent.parent,
                )
            return
        self.markers.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(arguments, indent=2, sort_keys=True) + "\n")

    def run(self, name: str, work: Callable[[], Any]) -> None:
        marker = self.markers / (name.replace(" ", "_").replace("/", "_") + ".done")
        if marker.is_file():
            self.timings[name] = "reused"
            self.log(f"[{name}] already done")
            return
        self.log(f"[{name}] ...")
        start = time.perf_counter()
        work()
        self.timings[name] = round(time.perf_counter() - start, 2)
        self.markers.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{self.timings[name]}\n")
        self.log(f"[{name}] done in {self.timings[name]} s")


def dataset_once(path: Path, make: Callable[[], Any]) -> None:
    """Make a dataset folder unless it is already complete (dataset folders appear atomically, so an
    existing one is whole; an unfinished one is still ``.partial`` and ``make`` resumes it)."""
    if not Path(path).exists():
        make()


def read_summary(eval_dir: Path) -> dict[str, Any]:
    return json.loads((eval_dir / "summary.json").read_text())


def read_rows(eval_dir: Path) -> list[dict[str, str]]:
    with open(eval_dir / "rows.csv", newline="") as f:
        return list(csv.DictReader(f))


def mean_of(rows: list[dict[str, str]], column: str, keep: Callable[[dict[str, str]], bool] = lambda r: True) -> tuple[float, int]:
    """Mean of a numeric column over the rows ``keep`` accepts (NaN cells skipped) and its n."""
    values = [float(r[column]) for r in rows if keep(r) and r.get(column, "") not in ("", "nan")]
    values = [v for v in values if np.isfinite(v)]
    return (float(np.mean(values)) if values else float("nan")), len(values)


#: Bootstrap resamples behind every interval in a report (seeded: same rows, same interval).
N_BOOT = 10000


def group_figure(rows: list[dict[str, Any]], column: str, keep: Callable[[dict[str, Any]], bool] = lambda r: True,
                 seed: int = 0) -> dict[str, Any]:
    """One reported figure of per-frame rows (``rows.csv``): the mean of group means with its cluster
    bootstrap interval (whole groups resampled), the plain frame mean, n_frames and n_groups.

    Rows without a group count as their own group. NaN and empty cells are left out.
    """
    from simreal.metrics.stats import group_summary

    picked = [r for r in rows if keep(r) and str(r.get(column, "")) not in ("", "nan")]
    values = np.array([float(r[column]) for r in picked])
    if not values.size:
        nan = float("nan")
        return {"value": nan, "frame_mean": nan, "ci_low": nan, "ci_high": nan, "n_frames": 0, "n_groups": 0}
    s = group_summary(values, [r.get("group") or r["id"] for r in picked], n_boot=N_BOOT, seed=seed)
    return {"value": s.mean, "frame_mean": s.frame_mean, "ci_low": s.ci_low, "ci_high": s.ci_high,
            "n_frames": s.n_frames, "n_groups": s.n_groups}


def write_results(out: Path, results: dict[str, Any]) -> Path:
    path = out / "results.json"
    write_json(path, results, default=_jsonable)
    return path


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x)}")


def plot_training_curves(runs: dict[str, Path], out: Path) -> Path:
    """One panel per run: every loss column of its metrics.csv against epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 3.4), squeeze=False)
    for ax, (name, run) in zip(axes[0], runs.items()):
        path = run / "metrics.csv"
        if not path.is_file():
            raise SimrealError("training run has no metrics.csv", run)
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        columns = [c for c in (rows[0].keys() if rows else []) if c.endswith("loss") or c.endswith("loss_epoch")]
        for col in sorted(columns):
            pts = [(float(r["epoch"]), float(r[col])) for r in rows if r.get(col) not in (None, "")]
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker=".", label=col)
        ax.set_title(f"{name} training")
        ax.set_xlabel("epoch")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def prediction_grid(rows: list[list[tuple[str, np.ndarray]]], out: Path, title: str, depth_range: tuple[float, float] | None = None) -> Path:
    """A grid of panels: each row a sample, each (name, array) a panel; 2-D float arrays are depth in mm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.0 * n_cols + 0.8, 2.0 * n_rows + 0.5), squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.88, bottom=0.01, top=1 - 0.5 / (2.0 * n_rows + 0.5), wspace=0.04, hspace=0.06)
    mappable = None
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.axis("off")
            if j >= len(row):
                continue
            name, arr = row[j]
            if arr.ndim == 2 and arr.dtype.kind == "f":
                vmin, vmax = depth_range or (float(arr[arr > 0].min(initial=0)), float(arr.max(initial=1)))
                mappable = ax.imshow(np.ma.masked_where(arr <= 0, arr), cmap="turbo", vmin=vmin, vmax=vmax)
            else:
                ax.imshow(arr)
            if i == 0:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    if mappable is not None:
        fig.colorbar(mappable, cax=fig.add_axes((0.9, 0.15, 0.02, 0.7))).set_label("depth (mm)")
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
