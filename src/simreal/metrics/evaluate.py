"""Evaluate a prediction dataset folder against a ground-truth dataset folder (rows.csv + summary.json).

Both folders are simreal datasets (:class:`~simreal.data.reader.DatasetReader`). Samples are paired by
id (a prediction made from a dataset keeps the input's ids); the two id sets must be identical unless
``intersect=True``. Every metric is computed before anything is written, so bad input leaves no output;
then ``rows.csv`` (one row per sample: ``id``, ``group``, every metric) and ``summary.json`` (mean, std,
median and n per metric, plus the settings) are written atomically (temporary file, then rename).

Summary conventions: ``std`` is the sample standard deviation (ddof 1; 0 for one sample); NaN values
(e.g. an HD95 with one empty mask) are left out of mean / std / median, ``n`` counts the finite values
and ``n_nan`` the others; a statistic with no finite value is ``null`` in JSON.

Groups: frames of one sequence (or rendered colon, CT volume) are not independent. When every
ground-truth record carries a ``group``, each metric's summary also gives ``n_groups``, ``group_mean``
(the mean of the per-group means: each group weighs equally) and ``group_ci_low`` / ``group_ci_high``
(its percentile cluster-bootstrap interval, whole groups resampled, seeded so the same input gives the
same interval; see :mod:`simreal.metrics.stats`); the top level gives ``n_frames``, ``n_groups`` and
the bootstrap settings under ``group_stats``. Without groups ``n_groups`` is ``null``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from simreal.atomic import write_text
from simreal.data.reader import DatasetReader
from simreal.data.writer import write_json
from simreal.errors import SimrealError
from simreal.metrics.depth import DEPTH_METRICS, NrmseNorm, Scaling, depth_metrics, fit_scale, valid_mask
from simreal.metrics.segmentation import segmentation_metrics
from simreal.metrics.stats import GROUP_ESTIMAND, group_summary
from simreal.progress import progress_bar

ROWS_FILE = "rows.csv"
SUMMARY_FILE = "summary.json"

#: Cluster-bootstrap settings of the group-level summary (fixed so a summary is reproducible).
SUMMARY_N_BOOT = 10000
SUMMARY_SEED = 0
SUMMARY_CONFIDENCE = 0.95


def _open_pair(
    pred_dir: str | Path, gt_dir: str | Path, kind: str, *, intersect: bool
) -> tuple[DatasetReader, DatasetReader, list[tuple[str, int, int]]]:
    """Open both datasets, check they hold ``kind``, pair samples by id -> [(id, pred index, gt index)]."""
    pred, gt = DatasetReader(pred_dir), DatasetReader(gt_dir)
    for name, ds in (("prediction", pred), ("ground truth", gt)):
        if len(ds) == 0:
            raise SimrealError(f"{name} dataset has no samples", ds.root)
        if kind not in ds.info.files:
            raise SimrealError(
                f"{name} dataset has no {kind!r} files (it has: {', '.join(ds.info.files) or 'none'})", ds.root
            )
    p_index = {sid: i for i, sid in enumerate(pred.ids)}
    g_index = {sid: i for i, sid in enumerate(gt.ids)}
    missing = sorted(set(g_index) - set(p_index))
    extra = sorted(set(p_index) - set(g_index))
    if (missing or extra) and not intersect:
        parts = []
        if missing:
            parts.append(f"{len(missing)} ground-truth samples have no prediction (first missing: {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} predictions have no ground truth (first: {extra[0]})")
        raise SimrealError("prediction and ground truth hold different samples: " + "; ".join(parts), pred.root)
    ids = sorted(set(p_index) & set(g_index))
    if not ids:
        raise SimrealError("prediction and ground truth share no sample id", pred.root)
    return pred, gt, [(sid, p_index[sid], g_index[sid]) for sid in ids]


def _read_checked(pred: DatasetReader, gt: DatasetReader, sid: str, ip: int, ig: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    p, g = pred.read(ip, kind), gt.read(ig, kind)
    if p.shape != g.shape:
        raise SimrealError(
            f"sample {sid}: prediction {pred.path(ip, kind)} is {p.shape} but ground truth "
            f"{gt.path(ig, kind)} is {g.shape}",
            pred.root,
        )
    if kind == "depth":
        for name, arr, ds, i in (("prediction", p, pred, ip), ("ground truth", g, gt, ig)):
            if not np.isfinite(arr).all():
                raise SimrealError(f"sample {sid}: {name} depth holds {int((~np.isfinite(arr)).sum())} NaN/inf values", ds.path(i, kind))
    return p, g


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def summarise(
    rows: Sequence[Mapping[str, Any]],
    metrics: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    n_boot: int = SUMMARY_N_BOOT,
    seed: int = SUMMARY_SEED,
    confidence: float = SUMMARY_CONFIDENCE,
) -> dict[str, dict[str, Any]]:
    """Per-metric summary over the rows: mean, std (ddof 1), median, n (finite values), n_nan.

    Args:
        rows: one mapping per frame holding every name in ``metrics``.
        metrics: the metric names to summarise.
        groups: the group of every row (same order), or None. When given, each metric also gets
            ``n_groups``, ``group_mean`` (mean of group means), ``group_ci_low`` and ``group_ci_high``
            (cluster bootstrap, see :func:`simreal.metrics.stats.group_summary`), over its finite values.
        n_boot, seed, confidence: of that cluster bootstrap.

    Returns:
        metric -> dict of the statistics above (None where undefined).
    """
    out: dict[str, dict[str, Any]] = {}
    for m in metrics:
        v = np.array([float(r[m]) for r in rows], dtype=np.float64)
        finite = np.isfinite(v)
        f = v[finite]
        out[m] = {
            "mean": _num(f.mean()) if f.size else None,
            "std": _num(f.std(ddof=1)) if f.size > 1 else (0.0 if f.size == 1 else None),
            "median": _num(np.median(f)) if f.size else None,
            "n": int(f.size),
            "n_nan": int(v.size - f.size),
        }
        if groups is not None:
            if f.size:
                g = group_summary(v, groups, n_boot=n_boot, seed=seed, confidence=confidence)
                out[m].update(n_groups=g.n_groups, group_mean=_num(g.mean), group_ci_low=_num(g.ci_low), group_ci_high=_num(g.ci_high))
            else:
                out[m].update(n_groups=0, group_mean=None, group_ci_low=None, group_ci_high=None)
    return out


def _group_fields(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str] | None, dict[str, Any]]:
    """The rows' groups (None unless every row has one) and the top-level summary fields about them."""
    groups = [r.get("group") for r in rows]
    present = [g for g in groups if g not in (None, "")]
    fields: dict[str, Any] = {"n_frames": len(rows), "n_groups": None}
    if not present:
        return None, fields
    if len(present) < len(groups):
        # A partial grouping cannot define group means; say so rather than invent groups.
        fields["note"] = (
            f"{len(groups) - len(present)} of {len(groups)} ground-truth samples have no group: "
            "group-level statistics left out"
        )
        return None, fields
    fields["n_groups"] = len(set(present))
    fields["group_stats"] = {
        "estimand": GROUP_ESTIMAND,
        "interval": "percentile cluster bootstrap (whole groups resampled)",
        "n_boot": SUMMARY_N_BOOT,
        "seed": SUMMARY_SEED,
        "confidence": SUMMARY_CONFIDENCE,
    }
    return [str(g) for g in groups], fields


def write_results(out_dir: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], summary: dict[str, Any]) -> None:
    """Write ``rows.csv`` then ``summary.json`` into ``out_dir`` atomically (floats with full precision).

    Raises:
        SimrealError: the folder cannot be created or a file in it cannot be written (naming the file).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimrealError(f"cannot create the output folder ({exc.strerror})", out) from None
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else (repr(float(r[k])) if isinstance(r[k], (float, np.floating)) else r[k])) for k in columns})
    path = out / ROWS_FILE
    try:
        write_text(path, buf.getvalue())
        path = out / SUMMARY_FILE
        write_json(path, summary)
    except OSError as exc:  # e.g. an existing but read-only --out folder
        raise SimrealError(f"cannot write the file ({exc.strerror or exc})", path) from None


def evaluate_depth(
    pred_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path,
    *,
    scaling: Scaling = "none",
    per: Literal["image", "sequence"] = "image",
    min_depth: float | None = None,
    max_depth: float | None = None,
    nrmse_norm: NrmseNorm = "range",
    intersect: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Depth metrics of a prediction dataset against a ground-truth dataset, both with "depth" (mm).

    Args:
        pred_dir: simreal dataset of predicted depth (kind "depth", mm).
        gt_dir: simreal dataset with ground-truth depth (kind "depth", mm, 0 = no surface).
        out_dir: where ``rows.csv`` and ``summary.json`` go (created; the two files are replaced).
        scaling: "none", "median" or "lsq" (see :mod:`simreal.metrics.depth`).
        per: fit the scale per "image" or per "sequence" (the ground truth's ``SampleRecord.group``).
        min_depth, max_depth: optional depth caps in mm.
        nrmse_norm: "range" or "mean".
        intersect: evaluate the shared ids instead of failing on different id sets.
        progress: show a rich progress bar on stderr.

    Returns:
        The summary written to ``summary.json``: ``task``, ``n`` (= ``n_frames``), ``n_groups``,
        ``settings``, ``metrics`` (metric -> mean / std / median / n / n_nan, plus n_groups /
        group_mean / group_ci_low / group_ci_high when the ground truth carries groups: see the
        module docstring).

    Raises:
        SimrealError: missing / empty folders, a folder without depth, different id sets, shape
            mismatch, NaN depth, no valid pixel, a sample without a group when ``per="sequence"``.
    """
    if scaling not in ("none", "median", "lsq"):
        raise SimrealError(f"unknown scaling {scaling!r}; choose none, median or lsq")
    if per not in ("image", "sequence"):
        raise SimrealError(f"unknown --per {per!r}; choose image or sequence")
    if nrmse_norm not in ("range", "mean"):
        raise SimrealError(f"unknown nrmse normalisation {nrmse_norm!r}; choose range or mean")
    if min_depth is not None and max_depth is not None and min_depth >= max_depth:
        raise SimrealError(f"min depth {min_depth} mm must be below max depth {max_depth} mm")
    pred, gt, pairs = _open_pair(pred_dir, gt_dir, "depth", intersect=intersect)
    groups: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for sid, ip, ig in pairs:
        group = gt.records[ig].group
        if per == "sequence" and group is None:
            raise SimrealError(
                f"sample {sid} has no group (sequence), so per-sequence scaling is impossible; use per image",
                gt.root / "samples.jsonl",
            )
        groups[group if per == "sequence" else sid].append((sid, ip, ig))
    rows: dict[str, dict[str, Any]] = {}
    with progress_bar("evaluating depth", len(pairs), enabled=progress) as bar:
        for members in groups.values():
            loaded = [(sid, ig, *_read_checked(pred, gt, sid, ip, ig, "depth")) for sid, ip, ig in members]
            scale = None
            if per == "sequence" and scaling != "none":
                masks = [valid_mask(p, g, min_depth=min_depth, max_depth=max_depth, sample=sid) for sid, _, p, g in loaded]
                scale = fit_scale([p for _, _, p, _ in loaded], [g for _, _, _, g in loaded], masks, scaling)
            for sid, ig, p, g in loaded:
                m = depth_metrics(
                    p, g, scale=scale, scaling=scaling, min_depth=min_depth, max_depth=max_depth, nrmse_norm=nrmse_norm, sample=sid
                )
                rows[sid] = {"id": sid, "group": gt.records[ig].group, **m}
                bar.advance()
    ordered = [rows[sid] for sid, _, _ in pairs]
    metric_names = [*DEPTH_METRICS, "scale"]
    row_groups, group_fields = _group_fields(ordered)
    summary = {
        "task": "depth",
        "pred": str(pred.root),
        "gt": str(gt.root),
        "n": len(ordered),
        **group_fields,
        "settings": {
            "scaling": scaling,
            "per": per,
            "min_depth_mm": min_depth,
            "max_depth_mm": max_depth,
            "nrmse_norm": nrmse_norm,
            "intersect": intersect,
            "unit": "mm",
        },
        "metrics": summarise(ordered, metric_names, groups=row_groups),
    }
    write_results(out_dir, ordered, ["id", "group", *metric_names], summary)
    return summary


def evaluate_seg(
    pred_dir: str | Path,
    gt_dir: str | Path,
    out_dir: str | Path,
    *,
    classes: Mapping[int, str] | None = None,
    include_background: bool = False,
    spacing: float | None = None,
    intersect: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Segmentation metrics of a prediction dataset against a ground-truth dataset, both with "mask".

    Args:
        pred_dir: simreal dataset of predicted class-id maps (kind "mask").
        gt_dir: simreal dataset with ground-truth class-id maps (kind "mask").
        out_dir: where ``rows.csv`` and ``summary.json`` go.
        classes: class id -> name; default: the ground truth's ``labels["mask"].classes``.
        include_background: also score class 0.
        spacing: pixel size in mm for HD95 (None = pixels).
        intersect: evaluate the shared ids instead of failing on different id sets.
        progress: show a rich progress bar on stderr.

    Returns:
        The summary written to ``summary.json`` (per-class ``dice_<name>``, ``iou_<name>``,
        ``hd95_<name>`` and their means over classes; group fields as in :func:`evaluate_depth`).

    Raises:
        SimrealError: as :func:`evaluate_depth`, plus no class list or unknown label values.
    """
    pred, gt, pairs = _open_pair(pred_dir, gt_dir, "mask", intersect=intersect)
    if classes is None:
        label = gt.info.labels.get("mask")
        if label is None or not label.classes:
            raise SimrealError("ground truth dataset.json names no mask classes; pass classes explicitly", gt.root / "dataset.json")
        classes = label.classes
    rows = []
    with progress_bar("evaluating segmentation", len(pairs), enabled=progress) as bar:
        for sid, ip, ig in pairs:
            p, g = _read_checked(pred, gt, sid, ip, ig, "mask")
            m = segmentation_metrics(p, g, classes, include_background=include_background, spacing=spacing, sample=sid)
            rows.append({"id": sid, "group": gt.records[ig].group, **m})
            bar.advance()
    metric_names = [k for k in rows[0] if k not in ("id", "group")]
    row_groups, group_fields = _group_fields(rows)
    summary = {
        "task": "seg",
        "pred": str(pred.root),
        "gt": str(gt.root),
        "n": len(rows),
        **group_fields,
        "settings": {
            "classes": {str(k): v for k, v in sorted(classes.items())},
            "include_background": include_background,
            "spacing_mm": spacing,
            "hd95_unit": "mm" if spacing is not None else "px",
            "intersect": intersect,
        },
        "metrics": summarise(rows, metric_names, groups=row_groups),
    }
    write_results(out_dir, rows, ["id", "group", *metric_names], summary)
    return summary
