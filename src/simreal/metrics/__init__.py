"""Metrics and statistics: depth and segmentation metrics on arrays, folder evaluation (rows.csv +
summary.json) and paired tests between methods."""

from simreal.metrics.depth import DEPTH_METRICS, depth_metrics
from simreal.metrics.evaluate import evaluate_depth, evaluate_seg
from simreal.metrics.segmentation import dice, hd95, iou, segmentation_metrics
from simreal.metrics.stats import PairedComparison, compare_rows, paired_comparison

__all__ = [
    "DEPTH_METRICS",
    "PairedComparison",
    "compare_rows",
    "depth_metrics",
    "dice",
    "evaluate_depth",
    "evaluate_seg",
    "hd95",
    "iou",
    "paired_comparison",
    "segmentation_metrics",
]
