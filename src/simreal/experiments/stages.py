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


# -- helpers of the adaptation experiments ------------------------------------------------------------------


def subset_dataset(src: Path, dest: Path, indices: list[int], *, kinds: tuple[str, ...] | None = None,
                   why: str = "") -> Path:
    """A dataset of some records of ``src``, their files copied byte for byte (nothing is decoded).

    Args:
        src: a simreal dataset folder.
        dest: the new dataset folder (must not exist; written atomically).
        indices: record indices of ``src`` to keep (ids, groups, cameras, params and sources kept).
        kinds: file kinds to keep (e.g. ``("image",)`` to hand an adaptation method the images of a set
            and never its masks); default: all of them.
        why: a few words recorded in ``dataset.json`` (``generator.purpose``).

    Returns:
        ``dest``.
    """
    import shutil

    from simreal.data.format import DatasetInfo, SampleRecord
    from simreal.data.reader import DatasetReader
    from simreal.data.writer import DatasetWriter

    reader = DatasetReader(src)
    kinds = tuple(reader.info.files) if kinds is None else tuple(kinds)
    missing = sorted(set(kinds) - set(reader.info.files))
    if missing:
        raise SimrealError(f"dataset has no {', '.join(missing)} files", src)
    records = [reader.records[i] for i in sorted(indices)]
    info = DatasetInfo(
        modality=reader.info.modality, domain=reader.info.domain, image_size=reader.info.image_size, files=kinds,
        labels={k: v for k, v in reader.info.labels.items() if k in kinds}, seed=reader.info.seed,
        generator={"name": "simreal subset", "purpose": why, "source": str(Path(src).resolve()),
                   "ids": [r.id for r in records], "kinds": list(kinds), "source_generator": reader.info.generator},
    )
    writer = DatasetWriter(Path(dest), info)
    try:
        for rec in records:
            if writer.has(rec.id):
                continue
            files = {k: v for k, v in rec.files.items() if k in kinds}
            for rel in files.values():
                target = writer.root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(reader.root / rel, target)
            writer.write(SampleRecord(**{**rec.__dict__, "files": files}), {})
        return writer.finish(expected_ids=[r.id for r in records])
    except SimrealError:
        writer.abort()
        raise
    except BaseException:
        writer.close()
        raise


def evenly_spaced_images(src: Path, dest: Path, n_max: int) -> Path:
    """The images of dataset ``src`` for an image-set metric (FID, KID), at most ``n_max`` of them.

    A dataset of up to ``n_max`` samples is returned as it is; a larger one gives a plain folder ``dest``
    of ``n_max`` evenly spaced images (copied byte for byte, named by sample id), so two sets with the same
    ids (a set and its refined copy) give the same subset.
    """
    import shutil

    from simreal.data.reader import DatasetReader

    reader = DatasetReader(src)
    n = len(reader)
    if n <= n_max:
        return Path(src)
    dest = Path(dest)
    if not dest.is_dir():
        tmp = dest.with_name(dest.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for i in np.linspace(0, n - 1, n_max).round().astype(int):
            path = reader.path(int(i), "image")
            shutil.copyfile(path, tmp / f"{reader.ids[int(i)]}{path.suffix}")
        tmp.rename(dest)
    return dest


def slug(name: str) -> str:
    """A file-name-safe form of a label: lower case, every other character "_" ("CVC test, raw" -> "cvc_test__raw")."""
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


def image_set_distances(sets: dict[str, Path], pairs: tuple[tuple[str, str, str], ...], out: Path, n_max: int,
                        dest: Path) -> list[dict[str, Any]]:
    """FID and KID (offline FID Inception-v3) of every ``(label, set A, set B)`` of ``pairs``; written as JSON
    to ``dest``.

    ``sets`` maps a name to a dataset folder. A set larger than ``n_max`` enters as ``n_max`` evenly spaced
    images (:func:`evenly_spaced_images`: a set and its adapted copy give the same ids). Features are cached
    in ``OUT/cache/features``. KID subsets hold half the smaller set (at most the standard 1000), so that the
    spread over subsets says something (subsets of all the images would all be the same set).
    """
    import torch

    from simreal.data.writer import write_json
    from simreal.metrics.features import open_image_set
    from simreal.metrics.fid import compare_image_sets

    folders = {name: evenly_spaced_images(path, out / "fid_sets" / slug(name), n_max) for name, path in sets.items()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for label, a, b in pairs:
        subset = max(2, min(1000, min(len(open_image_set(folders[k]).paths) for k in (a, b)) // 2))
        r = compare_image_sets(folders[a], folders[b], cache_dir=out / "cache" / "features", device=device, fid_method="eigh",
                               kid_subset_size=subset)
        rows.append({"pair": label, "a": a, "b": b, "n_a": r.n_a, "n_b": r.n_b, "fid": r.fid, "kid_mean": r.kid_mean,
                     "kid_std": r.kid_std, "kid_subset_size": r.kid_subset_size, "kid_subsets": r.kid_subsets,
                     "extractor": r.extractor, "note": r.note})
    write_json(dest, rows)
    return rows


def epochs_for_steps(n_frames: int, steps: int, batch_size: int) -> int:
    """Whole training epochs over ``n_frames`` that hold at least ``steps`` optimisation steps of ``batch_size``
    (so that runs on sets of different sizes get the same number of updates)."""
    import math

    return max(1, math.ceil(steps / max(1, math.ceil(n_frames / batch_size))))


def paired_figure(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]], column: str,
                  keep: Callable[[dict[str, Any]], bool] = lambda r: True, seed: int = 0) -> dict[str, Any]:
    """Method A against method B on the same frames (rows of two ``rows.csv``, paired by id), groups = the
    rows' ``group``.

    Returns a dict with the group-level comparison of :func:`~simreal.metrics.stats.paired_group_comparison`
    (``a - b``; two-sided Wilcoxon on the G pairs of group means; cluster-bootstrap CI of the difference;
    ``frame_level``, labelled as assuming independent frames), plus ``relative_change`` =
    ``mean_a / mean_b - 1`` of the means of group means with its paired cluster-bootstrap interval
    (``rel_ci_low``, ``rel_ci_high``: the same groups drawn for A and B in every replicate) and
    ``n_groups`` / ``n_frames``. Frames missing on one side or NaN on either are left out.
    """
    from simreal.metrics.stats import group_means, paired_group_comparison

    by_id = {r["id"]: r for r in rows_b}
    pairs = []
    for r in rows_a:
        other = by_id.get(r["id"])
        if other is None or not keep(r):
            continue
        va, vb = str(r.get(column, "")), str(other.get(column, ""))
        if va in ("", "nan") or vb in ("", "nan"):
            continue
        a, b = float(va), float(vb)
        if np.isfinite(a) and np.isfinite(b):
            pairs.append((a, b, r.get("group") or r["id"]))
    if not pairs:
        raise SimrealError(f"no frame has a finite {column!r} in both sets")
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    groups = [p[2] for p in pairs]
    comparison = paired_group_comparison(a, b, groups, n_boot=N_BOOT, seed=seed).to_dict()
    _, ga, _ = group_means(a, groups)
    _, gb, _ = group_means(b, groups)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ga.size, size=(N_BOOT, ga.size))
    with np.errstate(divide="ignore", invalid="ignore"):
        replicates = ga[idx].mean(axis=1) / gb[idx].mean(axis=1) - 1.0
        rel = float(ga.mean() / gb.mean() - 1.0)
    lo, hi = np.quantile(replicates[np.isfinite(replicates)], [0.025, 0.975]) if np.isfinite(replicates).any() else (np.nan, np.nan)
    return {**comparison, "column": column, "relative_change": rel, "rel_ci_low": float(lo), "rel_ci_high": float(hi)}


# -- helpers of the cinematic fine-tuning experiment --------------------------------------------------------


def merge_datasets(parts: list[tuple[Path, list[int]]], dest: Path, *, kinds: tuple[str, ...] | None = None,
                   why: str = "") -> Path:
    """One dataset made of records of several datasets, their files copied byte for byte (nothing decoded).

    Args:
        parts: (dataset folder, record indices) pairs, in order. An index listed more than once is copied
            again under a new id (to repeat frames so that two training sets hold the same number).
        dest: the new dataset folder (must not exist; written atomically).
        kinds: file kinds to keep; default: those of the first part (every part must have them).
        why: a few words recorded in ``dataset.json`` (``generator.purpose``).

    The new ids are ``<group>-<source id>`` (the source's id when a record has no group), ``-r<j>`` added
    for the j-th repeat (j >= 1); groups, cameras and params are kept, ``source`` names the source image
    file. Every part must have the same image size, modality and domain.

    Returns:
        ``dest``.

    Raises:
        SimrealError: no part, parts that differ in size, modality or domain or lack a kind, a repeated id.
    """
    import shutil

    from simreal.data.format import DatasetInfo, SampleRecord, file_name
    from simreal.data.reader import DatasetReader
    from simreal.data.writer import DatasetWriter

    if not parts:
        raise SimrealError("nothing to merge: no dataset given")
    readers = [DatasetReader(p) for p, _ in parts]
    first = readers[0].info
    kinds = tuple(first.files) if kinds is None else tuple(kinds)
    for r in readers:
        missing = sorted(set(kinds) - set(r.info.files))
        if missing:
            raise SimrealError(f"dataset has no {', '.join(missing)} files", r.root)
        if (r.info.image_size, r.info.modality, r.info.domain) != (first.image_size, first.modality, first.domain):
            raise SimrealError(f"dataset differs from {readers[0].root} in image size, modality or domain", r.root)
    picked: list[tuple[DatasetReader, SampleRecord, str]] = []
    for reader, (_, indices) in zip(readers, parts):
        seen: dict[int, int] = {}
        for i in indices:
            rec = reader.records[i]
            j = seen.get(i, 0)
            seen[i] = j + 1
            sid = f"{rec.group}-{rec.id}" if rec.group else rec.id
            picked.append((reader, rec, sid if j == 0 else f"{sid}-r{j}"))
    ids = [sid for _, _, sid in picked]
    if len(set(ids)) != len(ids):
        raise SimrealError(f"merged ids repeat (first: {next(s for s in ids if ids.count(s) > 1)}): two parts share a group")
    info = DatasetInfo(
        modality=first.modality, domain=first.domain, image_size=first.image_size, files=kinds,
        labels={k: v for k, v in first.labels.items() if k in kinds}, seed=first.seed,
        generator={"name": "simreal merge", "purpose": why, "kinds": list(kinds),
                   "parts": [{"source": str(Path(p).resolve()), "ids": [r.records[i].id for i in idx],
                              "generator": r.info.generator} for r, (p, idx) in zip(readers, parts)]},
    )
    writer = DatasetWriter(Path(dest), info)
    try:
        for reader, rec, sid in picked:
            if writer.has(sid):
                continue
            files = {}
            for kind in kinds:
                rel = rec.files[kind]
                new = file_name(kind, sid)
                target = writer.root / new
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(reader.root / rel, target)
                files[kind] = new
            writer.write(SampleRecord(id=sid, files=files, camera=rec.camera, params=rec.params,
                                      source=str((reader.root / rec.files[kinds[0]]).resolve()), group=rec.group), {})
        return writer.finish(expected_ids=ids)
    except SimrealError:
        writer.abort()
        raise
    except BaseException:
        writer.close()
        raise


def abs_rel_error_rgb(pred: np.ndarray, gt: np.ndarray, *, scaling: str = "median", vmax: float = 0.5) -> np.ndarray:
    """A colour picture of the per-pixel relative depth error ``|s p - g| / g`` (magma, 0 black .. ``vmax``
    white), black where ``gt`` is 0; ``s`` is the per-image median ratio (``scaling="median"``) or 1.

    Args:
        pred: (H, W) predicted depth, mm. gt: (H, W) true depth, mm, 0 = no surface.

    Returns:
        (H, W, 3) uint8.
    """
    import matplotlib

    if pred.shape != gt.shape:
        raise SimrealError(f"prediction {pred.shape} and truth {gt.shape} differ in shape")
    valid = gt > 0
    err = np.zeros(gt.shape)
    if valid.any():
        s = float(np.median(gt[valid]) / max(float(np.median(pred[valid])), 1e-6)) if scaling == "median" else 1.0
        err[valid] = np.abs(s * pred[valid] - gt[valid]) / gt[valid]
    rgb = (matplotlib.colormaps["magma"](np.clip(err / vmax, 0, 1))[..., :3] * 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb
