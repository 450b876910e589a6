"""Image-edge / label-boundary agreement: closed forms, kept vs shifted outlines, contrast invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simreal.errors import SimrealError
from simreal.metrics.edges import (
    EDGE_SCORES,
    boundary_edge_agreement,
    brightness,
    edge_map,
    label_boundaries,
    near,
    strong_edges,
    tolerant_f1,
)


def _disk_scene(size: int = 32, shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A disk of class 1 on class 0, and an RGB image of it drawn ``shift`` px to the right."""
    y, x = np.mgrid[:size, :size]
    mask = ((y - size / 2) ** 2 + (x - size / 2) ** 2 < (size / 4) ** 2).astype(np.uint8)
    drawn = np.roll(mask, shift, axis=1)
    image = np.stack([drawn * 180 + 30, drawn * 60 + 90, 200 - drawn * 150], axis=2).astype(np.uint8)
    return image, mask


def test_brightness_is_the_channel_mean_in_unit_range():
    img = np.array([[[255, 0, 0], [30, 60, 90]]], np.uint8)
    assert np.allclose(brightness(img), [[1 / 3, 60 / 255]])
    assert brightness(np.full((2, 2), 0.25)).tolist() == [[0.25, 0.25], [0.25, 0.25]]
    with pytest.raises(SimrealError, match="shape"):
        brightness(np.zeros((2, 2, 2, 2)))


def test_edge_map_of_a_blurred_step_peaks_at_the_closed_form():
    img = np.zeros((16, 64))
    img[:, 32:] = 1.0
    e = edge_map(img, sigma=2.0)
    assert e[8].argmax() in (31, 32)
    assert e[8].max() == pytest.approx(1 / (math.sqrt(2 * math.pi) * 2.0), rel=0.05)
    assert edge_map(np.full((8, 8), 0.7)).max() == pytest.approx(0.0, abs=1e-12)


def test_boundaries_are_both_sides_and_can_be_restricted_to_classes():
    mask = np.zeros((4, 6), np.uint8)
    mask[:, 3:] = 2
    b = label_boundaries(mask)
    assert b.sum() == 8 and b[:, 2].all() and b[:, 3].all()
    assert label_boundaries(mask, classes=[2]).sum() == 4
    assert not label_boundaries(np.ones((5, 5), np.uint8)).any()


def test_near_and_tolerant_f1_closed_forms():
    a = np.zeros((1, 10), bool)
    b = np.zeros((1, 10), bool)
    a[0, 2], b[0, 5] = True, True
    assert not near(a, b, 2.9).any() and near(a, b, 3.0)[0, 2] and near(a, b, 3.0).sum() == 1
    assert tolerant_f1(a, b, 3.0) == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    r = tolerant_f1(a, b, 1.0)
    assert r["f1"] == 0.0
    empty = np.zeros((1, 10), bool)
    assert tolerant_f1(empty, empty)["f1"] == 1.0
    assert tolerant_f1(a, empty)["f1"] == 0.0 and math.isnan(tolerant_f1(a, empty)["recall"])


def test_strong_edges_floor_keeps_flat_images_edge_free():
    assert not strong_edges(np.zeros((8, 8))).any()
    e = np.zeros((10, 10))
    e[5, :] = 0.5
    assert strong_edges(e, quantile=0.5).sum() == 10


def test_kept_outline_scores_high_and_a_shifted_one_low():
    image, mask = _disk_scene()
    kept = boundary_edge_agreement(image, mask, tolerance_px=1)
    assert list(kept) == list(EDGE_SCORES)
    assert kept["boundary_recall"] == 1.0 and kept["boundary_contrast"] > 3
    shifted_image, _ = _disk_scene(shift=5)
    moved = boundary_edge_agreement(shifted_image, mask, tolerance_px=1)
    assert moved["boundary_recall"] < 0.6 and moved["boundary_contrast"] < kept["boundary_contrast"] * 0.8
    assert moved["f1"] < kept["f1"]


def test_contrast_is_invariant_to_image_contrast_and_flat_images_score_zero():
    image, mask = _disk_scene()
    a = boundary_edge_agreement(image.astype(np.float64) / 255, mask)
    b = boundary_edge_agreement(image.astype(np.float64) / 255 * 0.5, mask)
    assert a["boundary_contrast"] == pytest.approx(b["boundary_contrast"], rel=1e-9)
    flat = boundary_edge_agreement(np.full((32, 32, 3), 128, np.uint8), mask)
    assert flat["boundary_recall"] == 0.0 and flat["boundary_contrast"] == 0.0 and math.isnan(flat["edge_precision"])
    single = boundary_edge_agreement(image, np.zeros((32, 32), np.uint8))
    assert math.isnan(single["boundary_recall"]) and single["n_boundary_px"] == 0


def test_mismatched_sizes_are_refused():
    image, mask = _disk_scene()
    with pytest.raises(SimrealError, match="32x32 but its mask is 16x32"):
        boundary_edge_agreement(image, mask[:16])
