"""Mucosa texture: range, determinism, world-coordinate locality, feature scales."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.anatomy.texture import bake_mucosa_texture, value_noise
from simreal.errors import SimrealError


def _cloud(n=4000, seed=0):
    return np.random.default_rng(seed).uniform(-50, 50, (n, 3))


def test_shape_range_determinism():
    pts = _cloud()
    a = bake_mucosa_texture(pts, 3)
    assert a.shape == (len(pts), 2) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    np.testing.assert_array_equal(a, bake_mucosa_texture(pts, 3))
    assert not np.allclose(a, bake_mucosa_texture(pts, 4))
    b = bake_mucosa_texture(pts, np.random.default_rng(1))
    np.testing.assert_array_equal(b, bake_mucosa_texture(pts, np.random.default_rng(1)))
    assert a[:, 0].std() > 0.15  # the mottling uses the range


def test_depends_only_on_position():
    pts = _cloud()
    full = bake_mucosa_texture(pts, 9)
    np.testing.assert_allclose(bake_mucosa_texture(pts[17:18], 9), full[17:18], atol=1e-7)
    np.testing.assert_allclose(bake_mucosa_texture(pts[::-1], 9), full[::-1], atol=1e-7)


def test_noise_is_smooth_with_mm_features():
    rng = np.random.default_rng(0)
    p = rng.uniform(-100, 100, (3000, 3))
    d = rng.normal(size=(3000, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    n0 = value_noise(p, 4.0, 1)
    near = value_noise(p + 0.05 * d, 4.0, 1)
    far = value_noise(p + 20.0 * d, 4.0, 1)
    assert np.abs(n0).max() <= 1.0
    assert np.abs(near - n0).max() < 0.1  # continuous
    assert abs(np.corrcoef(n0, far)[0, 1]) < 0.15  # decorrelated beyond a few features


def test_vessels_are_thin_sparse_ridges():
    # Sample many straight lines every 0.05 mm and measure how long the walk stays on a vessel.
    rng = np.random.default_rng(2)
    widths, frac = [], []
    for _ in range(40):
        start = rng.uniform(-100, 100, 3)
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        t = np.arange(0, 60, 0.05)
        v = bake_mucosa_texture(start + t[:, None] * d, 5)[:, 1] > 0.5
        frac.append(v.mean())
        edges = np.diff(v.astype(int))
        ups, downs = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        for u in ups:
            later = downs[downs > u]
            if len(later):
                widths.append((later[0] - u) * 0.05)
    assert 0.01 < np.mean(frac) < 0.25
    assert len(widths) > 20
    assert 0.2 < np.median(widths) < 2.0  # crossings of ~1 mm ridges at random angles


def test_bad_vertices():
    with pytest.raises(SimrealError):
        bake_mucosa_texture(np.zeros((3, 2)), 0)
    with pytest.raises(SimrealError):
        bake_mucosa_texture(np.full((3, 3), np.nan), 0)
