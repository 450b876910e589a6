"""Metrics and statistics: depth and segmentation metrics on arrays, folder evaluation (rows.csv +
summary.json) and paired tests between methods, at the level of groups (sequences, colons, patients)."""

from simreal.metrics.depth import DEPTH_METRICS, depth_metrics
from simreal.metrics.evaluate import evaluate_depth, evaluate_seg
from simreal.metrics.segmentation import dice, hd95, iou, segmentation_metrics
from simreal.metrics.compare import compare_rows
from simreal.metrics.stats import (
    GroupComparison,
    GroupSummary,
    PairedComparison,
    group_summary,
    paired_comparison,
    paired_group_comparison,
)

__all__ = [
    "DEPTH_METRICS",
    "GroupComparison",
    "GroupSummary",
    "PairedComparison",
    "compare_rows",
    "depth_metrics",
    "dice",
    "evaluate_depth",
    "evaluate_seg",
    "group_summary",
    "hd95",
    "iou",
    "paired_comparison",
    "paired_group_comparison",
    "segmentation_metrics",
]
