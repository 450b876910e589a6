"""Label-validity audit: do translated (or refined) images still agree with their source's labels?

A sim-to-real translation keeps the simulation's labels only if it keeps the structures they outline.
:func:`evaluate_label_validity` pairs every sample of a translated dataset with its source sample and
measures, per pair (``rows.csv``) and summarised with groups (``summary.json``, as
:mod:`simreal.metrics.evaluate` does):

* **structure of brightness**: ``ssim_gray`` (SSIM, 11 px Gaussian window, sigma 1.5, valid region,
  data range 1) and ``ms_ssim_gray`` (MS-SSIM, the original definition, as many of 5 levels as the size
  allows: :func:`simreal.adapt.losses.ms_ssim`) of the channel means of source and translated image.
  Colour changes do not count; moved, blurred or invented structure does.
* **label boundaries on image edges** (:mod:`simreal.metrics.edges`, with the source mask):
  ``boundary_recall_source`` / ``_translated`` (share of mask-boundary pixels within ``tolerance_px`` of a
  strong image edge), ``boundary_recall_kept`` (translated / source: 1 = the translation shows the
  outlines as well as the source did), ``boundary_contrast_source`` / ``_translated`` /
  ``_kept`` (the threshold-free score and its ratio), and ``edge_f1`` (strong edges of the translated
  image matched to those of the source within the tolerance).
* with ``segmenter``: a segmentation run predicts masks on the translated images
  (:func:`simreal.tasks.predict.predict`), scored against the labels
  (:func:`simreal.metrics.evaluate.evaluate_seg`): ``seg_dice_<class>``, ``seg_dice_mean``, ``seg_iou_mean``.
  A segmenter trained on real images that still finds the labelled structures says the labels fit.

Pairing: a translated sample pairs with the source sample of the same id, or, for datasets written by
``simreal adapt translate --styles K`` (ids ``<id>_s00`` ...), with the source sample ``<id>``; the
``style`` column gives the style index (empty for same-id pairs). Source and translated masks must
declare the same classes.

Example:
    >>> evaluate_label_validity("data/lap_sim", "data/lap_translated", "eval/validity")   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.metrics.edges import boundary_edge_agreement, edge_map, strong_edges, tolerant_f1

__all__ = ["LABEL_VALIDITY_METRICS", "evaluate_label_validity", "gray_structure", "label_validity_row", "pair_translated"]

#: Columns of every row (the segmenter's are added after them).
LABEL_VALIDITY_METRICS = (
    "ssim_gray", "ms_ssim_gray",
    "boundary_recall_source", "boundary_recall_translated", "boundary_recall_kept",
    "boundary_contrast_source", "boundary_contrast_translated", "boundary_contrast_kept",
    "edge_f1",
)

_STYLE_SUFFIX = re.compile(r"^(?P<id>.+)_s(?P<style>\d+)$")


def gray_structure(source: np.ndarray, translated: np.ndarray) -> dict[str, float]:
    """``ssim_gray`` and ``ms_ssim_gray`` of the channel means of two (H, W, C) uint8 images (or [0, 1] floats).

    Images smaller than the 11 px window use the largest odd window that fits (one level).
    """
    from simreal.adapt.losses import ms_ssim, ms_ssim_scales, ssim_components
    from simreal.metrics.edges import brightness

    a, b = brightness(source), brightness(translated)
    if a.shape != b.shape:
        raise SimrealError(f"source image is {a.shape[0]}x{a.shape[1]} but the translated one {b.shape[0]}x{b.shape[1]}")
    x = torch.from_numpy(a).float()[None, None]
    y = torch.from_numpy(b).float()[None, None]
    _, kernel = ms_ssim_scales(*a.shape)
    with torch.no_grad():
        ssim, _ = ssim_components(x, y, data_range=1.0, kernel_size=kernel)
        msssim = ms_ssim(x, y, data_range=1.0, normalize=False)
    return {"ssim_gray": float(ssim[0]), "ms_ssim_gray": float(msssim[0])}


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0:
        return math.nan
    return a / b


def label_validity_row(source: np.ndarray, translated: np.ndarray, mask: np.ndarray, *, tolerance_px: float = 2.0,
                       sigma: float = 1.0, quantile: float = 0.9, min_strength: float = 0.01) -> dict[str, float]:
    """Every :data:`LABEL_VALIDITY_METRICS` value of one (source image, translated image, source mask)."""
    kw = dict(tolerance_px=tolerance_px, sigma=sigma, quantile=quantile, min_strength=min_strength)
    row = gray_structure(source, translated)
    s = boundary_edge_agreement(source, mask, **kw)
    t = boundary_edge_agreement(translated, mask, **kw)
    edges_s = strong_edges(edge_map(source, sigma), quantile, min_strength)
    edges_t = strong_edges(edge_map(translated, sigma), quantile, min_strength)
    row.update(
        boundary_recall_source=s["boundary_recall"], boundary_recall_translated=t["boundary_recall"],
        boundary_recall_kept=_ratio(t["boundary_recall"], s["boundary_recall"]),
        boundary_contrast_source=s["boundary_contrast"], boundary_contrast_translated=t["boundary_contrast"],
        boundary_contrast_kept=_ratio(t["boundary_contrast"], s["boundary_contrast"]),
        edge_f1=tolerant_f1(edges_t, edges_s, tolerance_px)["f1"],
    )
    return {k: float(row[k]) for k in LABEL_VALIDITY_METRICS}


def pair_translated(source: DatasetReader, translated: DatasetReader) -> list[tuple[str, int, int, str]]:
    """[(translated id, translated index, source index, style)] for every translated sample.

    Raises:
        SimrealError: a translated sample with no source sample (naming it).
    """
    index = {sid: i for i, sid in enumerate(source.ids)}
    pairs = []
    for j, rec in enumerate(translated.records):
        if rec.id in index:
            pairs.append((rec.id, j, index[rec.id], ""))
            continue
        m = _STYLE_SUFFIX.match(rec.id)
        if m and m["id"] in index:
            pairs.append((rec.id, j, index[m["id"]], str(int(m["style"]))))
            continue
        raise SimrealError(f"translated sample {rec.id!r} has no source sample (neither {rec.id!r} nor <id>_sNN of one)",
                           translated.root / "samples.jsonl")
    return pairs


def _classes(reader: DatasetReader) -> dict[int, str] | None:
    label = reader.info.labels.get("mask")
    return None if label is None else label.classes


def _check_segmenter(run: Path, classes: dict[int, str]) -> None:
    from simreal.tasks.config import read_config

    config = read_config(Path(run) / "config.json")
    if config.task != "seg":
        raise SimrealError(f"--segmenter must be a segmentation run, this is a {config.task!r} run", run)
    if config.data.mask_map is not None:
        raise SimrealError("the segmenter was trained with a mask map, so it does not predict the dataset's class ids", run)
    n = config.model.num_classes or 2
    wanted = max(classes) + 1
    if n != wanted:
        raise SimrealError(f"the segmenter predicts {n} classes but the dataset's mask classes are "
                           f"{sorted(classes)} ({wanted} ids)", run)


def evaluate_label_validity(
    source_dir: str | Path,
    translated_dir: str | Path,
    out_dir: str | Path,
    *,
    segmenter: str | Path | None = None,
    tolerance_px: float = 2.0,
    sigma: float = 1.0,
    quantile: float = 0.9,
    min_strength: float = 0.01,
    include_background: bool = False,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Audit how well ``translated_dir``'s images still fit ``source_dir``'s labels (module docstring).

    Args:
        source_dir: the dataset that was translated (images + ``mask`` labels).
        translated_dir: its translation (ids as the source's, or ``<id>_sNN``).
        out_dir: where ``rows.csv`` and ``summary.json`` go.
        segmenter: optional segmentation training run (``simreal train seg``) to score on the translations.
        tolerance_px, sigma, quantile, min_strength: of the edge measures (:mod:`simreal.metrics.edges`).
        include_background: also score class 0 in the segmenter's Dice.
        device: for the segmenter.
        progress: progress bars on stderr.

    Returns:
        The summary written to ``summary.json``.

    Raises:
        SimrealError: missing / empty datasets, a source without masks, mask classes that differ between
            the two datasets, a translated sample without source, images of different sizes, a segmenter
            that is no segmentation run or predicts other classes; nothing is written then.
    """
    from simreal.metrics.evaluate import _group_fields, summarise, write_results
    from simreal.progress import progress_bar

    src, trans = DatasetReader(source_dir), DatasetReader(translated_dir)
    for name, ds in (("source", src), ("translated", trans)):
        if len(ds) == 0:
            raise SimrealError(f"{name} dataset has no samples", ds.root)
        if "image" not in ds.info.files:
            raise SimrealError(f"{name} dataset has no 'image' files", ds.root)
    if "mask" not in src.info.files:
        raise SimrealError(f"source dataset has no 'mask' files (it has: {', '.join(src.info.files)}); "
                           "label validity needs the labels", src.root)
    classes = _classes(src)
    if not classes:
        raise SimrealError("source dataset.json names no mask classes (labels.mask.classes)", src.root / "dataset.json")
    t_classes = _classes(trans)
    if "mask" in trans.info.files and t_classes != classes:
        raise SimrealError(f"mask classes differ: source {dict(sorted(classes.items()))}, translated "
                           f"{dict(sorted((t_classes or {}).items()))}", trans.root / "dataset.json")
    if segmenter is not None:
        if "mask" not in trans.info.files:
            raise SimrealError("--segmenter scores the translated dataset's masks, but it carries none "
                               "(datasets written by simreal adapt translate do)", trans.root)
        _check_segmenter(Path(segmenter), classes)
    pairs = pair_translated(src, trans)
    rows = []
    with progress_bar("auditing labels", len(pairs), enabled=progress) as bar:
        for tid, j, i, style in pairs:
            s_img, t_img = src.read(i, "image"), trans.read(j, "image")
            mask = src.read(i, "mask")
            if s_img.shape != t_img.shape:
                raise SimrealError(f"sample {tid}: translated image {t_img.shape[1]}x{t_img.shape[0]} differs from its "
                                   f"source {s_img.shape[1]}x{s_img.shape[0]}", trans.path(j, "image"))
            if mask.shape != s_img.shape[:2]:
                raise SimrealError(f"sample {src.ids[i]}: mask {mask.shape} differs from its image {s_img.shape[:2]}", src.path(i, "mask"))
            m = label_validity_row(s_img, t_img, mask, tolerance_px=tolerance_px, sigma=sigma, quantile=quantile,
                                   min_strength=min_strength)
            group = trans.records[j].group if trans.records[j].group is not None else src.records[i].group
            rows.append({"id": tid, "group": group, "source_id": src.ids[i], "style": style, **m})
            bar.advance()
    metric_names = list(LABEL_VALIDITY_METRICS)
    if segmenter is not None:
        seg = _segmenter_rows(Path(segmenter), trans.root, classes, include_background, device, progress)
        seg_names = [k for k in next(iter(seg.values())) if k.startswith(("dice_", "iou_"))]
        for r in rows:
            r.update({f"seg_{k}": seg[r["id"]][k] for k in seg_names})
        metric_names += [f"seg_{k}" for k in seg_names]
    row_groups, group_fields = _group_fields(rows)
    summary = {
        "task": "label-validity",
        "source": str(src.root),
        "translated": str(trans.root),
        "n": len(rows),
        **group_fields,
        "settings": {
            "tolerance_px": tolerance_px, "edge_sigma_px": sigma, "edge_quantile": quantile, "edge_min_strength": min_strength,
            "ssim": "11 px Gaussian window, sigma 1.5, valid region, data range 1, channel means",
            "ms_ssim": "original definition (no normalize), levels as the size allows, channel means",
            "segmenter": None if segmenter is None else str(Path(segmenter).resolve()),
            "include_background": include_background,
            "classes": {str(k): v for k, v in sorted(classes.items())},
        },
        "metrics": summarise(rows, metric_names, groups=row_groups),
    }
    write_results(out_dir, rows, ["id", "group", "source_id", "style", *metric_names], summary)
    return summary


def _segmenter_rows(run: Path, translated: Path, classes: dict[int, str], include_background: bool, device: str,
                    progress: bool) -> dict[str, dict[str, str]]:
    """Predict masks on the translated images and score them against its (copied) labels: id -> row."""
    from simreal.metrics.evaluate import evaluate_seg
    from simreal.tasks.predict import predict

    with tempfile.TemporaryDirectory(prefix="simreal-label-validity-") as tmp:
        pred = predict(run, translated, Path(tmp) / "pred", device=device, progress=progress)
        evaluate_seg(pred, translated, Path(tmp) / "eval", classes=classes, include_background=include_background)
        with open(Path(tmp) / "eval" / "rows.csv", newline="") as f:
            return {r["id"]: {k: (float(v) if v != "" else math.nan) for k, v in r.items() if k not in ("id", "group")}
                    for r in csv.DictReader(f)}
