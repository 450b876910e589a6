"""Paired statistics: Wilcoxon against scipy on a known case, bootstrap CI coverage, edge cases, CSV pairing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from simreal.errors import SimrealError
from simreal.metrics.stats import compare_rows, paired_comparison


def test_wilcoxon_known_case():
    a = np.array([1, 2, 3, 4, 5, 6, 7], float)
    b = np.array([0, 0, 0, 0, 0, 0, 8], float)
    r = paired_comparison(a, b, n_boot=500)
    # d = 1..6, -1: |d| ranks 1.5 (tie), 1.5, 3..7 -> W+ = 26.5, W- = 1.5.
    assert r.wilcoxon_statistic == pytest.approx(1.5)
    ref = sps.wilcoxon(a, b)
    assert r.wilcoxon_p == pytest.approx(ref.pvalue)
    assert r.wilcoxon_p < 0.05
    assert r.rank_biserial == pytest.approx(25 / 28)
    assert r.mean_diff == pytest.approx(20 / 7)
    assert r.n == 7 and r.note == ""
    greater = paired_comparison(a, b, n_boot=10, alternative="greater")
    assert greater.wilcoxon_p == pytest.approx(sps.wilcoxon(a, b, alternative="greater").pvalue)


def test_bootstrap_ci_contains_true_shift_and_is_deterministic():
    rng = np.random.default_rng(3)
    base = rng.normal(0.3, 0.1, 200)
    a = base + 0.05 + rng.normal(0, 0.02, 200)
    r = paired_comparison(a, base, n_boot=2000, seed=5)
    assert r.ci_low < 0.05 < r.ci_high
    assert r.ci_low > 0.0  # the shift is detected
    assert r.wilcoxon_p < 1e-10 and r.cohens_dz > 1
    again = paired_comparison(a, base, n_boot=2000, seed=5)
    assert (again.ci_low, again.ci_high) == (r.ci_low, r.ci_high)


def test_all_zero_differences_and_small_n():
    x = np.array([0.5, 0.6, 0.7])
    r = paired_comparison(x, x.copy(), n_boot=100)
    assert r.wilcoxon_p == 1.0 and r.mean_diff == 0.0 and "all differences are zero" in r.note
    assert math.isnan(r.cohens_dz)
    small = paired_comparison(np.array([1.0, 2, 3, 4, 5]), np.zeros(5), n_boot=100)
    assert "cannot reach p < 0.05" in small.note
    assert small.wilcoxon_p == pytest.approx(0.0625)


def test_nan_pairs_are_dropped_and_counted():
    r = paired_comparison(np.array([1.0, np.nan, 3, 4]), np.array([0.0, 1, 1, 1]), n_boot=100)
    assert r.n == 3 and r.n_dropped == 1 and "1 pairs with NaN" in r.note


def test_bad_input():
    with pytest.raises(SimrealError, match="equal lengths"):
        paired_comparison(np.ones(3), np.ones(4))
    with pytest.raises(SimrealError, match="no pair"):
        paired_comparison(np.array([np.nan]), np.array([1.0]))
    with pytest.raises(SimrealError, match="alternative"):
        paired_comparison(np.ones(3), np.ones(3), alternative="bigger")  # type: ignore[arg-type]


def _csv(path, rows):
    path.write_text("id,group,abs_rel\n" + "".join(f"{i},,{v}\n" for i, v in rows))
    return path


def test_compare_rows_pairs_by_id(tmp_path):
    a = _csv(tmp_path / "a.csv", [("s2", 0.3), ("s1", 0.1), ("s3", 0.5)])
    b = _csv(tmp_path / "b.csv", [("s1", 0.0), ("s3", 0.2), ("s2", 0.2)])
    r = compare_rows(a, b, "abs_rel", n_boot=100)
    assert r.mean_diff == pytest.approx((0.1 + 0.1 + 0.3) / 3)
    c = _csv(tmp_path / "c.csv", [("s1", 0.0), ("s4", 0.2)])
    with pytest.raises(SimrealError, match="2 ids only in .*a.csv .first: s2.*1 ids only in .*c.csv .first: s4"):
        compare_rows(a, c, "abs_rel")
    assert compare_rows(a, c, "abs_rel", intersect=True, n_boot=10).n == 1
    with pytest.raises(SimrealError, match="no metric 'rmse'"):
        compare_rows(a, b, "rmse")
    with pytest.raises(SimrealError, match="not found"):
        compare_rows(tmp_path / "nope.csv", b, "abs_rel")
