"""Paired statistics: Wilcoxon against scipy on a known case, bootstrap CI coverage, edge cases, CSV pairing,
and the group level (per-group means, cluster bootstrap) against the frame level on clustered data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from simreal.errors import SimrealError
from simreal.metrics.compare import compare_rows
from simreal.metrics.stats import (
    GroupComparison,
    PairedComparison,
    bootstrap_mean_ci,
    cluster_bootstrap_ci,
    cluster_bootstrap_means,
    group_means,
    group_summary,
    paired_cluster_bootstrap_ci,
    paired_comparison,
    paired_group_comparison,
    wilcoxon_group_means,
)


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
    assert "cannot reach p < 0.05 two-sided" in small.note
    assert small.wilcoxon_p == pytest.approx(0.0625)
    one_sided = paired_comparison(np.array([1.0, 2, 3, 4, 5]), np.zeros(5), n_boot=100, alternative="greater")
    assert one_sided.wilcoxon_p == pytest.approx(1 / 32) and one_sided.note == ""  # 1 / 2^5 can reach 0.05


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


def clustered(seed: int = 0):
    """10 sequences x 20 frames: A - B is a per-sequence offset (+-0.01 .. 0.10) plus tiny frame noise.

    The offsets of sequences 1, 2, 3, 4, 7 are negative: on the 10 sequence means the signed-rank
    test sees W- = 17 of 55 (exact two-sided p = 0.322), but over 200 "independent" frames the same
    pattern looks overwhelming.
    """
    rng = np.random.default_rng(seed)
    sign = np.array([-1.0 if k in (1, 2, 3, 4, 7) else 1.0 for k in range(1, 11)])
    offset = 0.01 * np.arange(1, 11) * sign
    groups = np.repeat([f"seq{k:02d}" for k in range(10)], 20)
    b = rng.uniform(0.2, 0.4, 200)
    a = b + np.repeat(offset, 20) + rng.normal(0, 1e-4, 200)
    return a, b, groups, offset


def test_clustered_frames_are_not_independent_evidence():
    a, b, groups, offset = clustered()
    r = paired_group_comparison(a, b, groups, n_boot=4000, seed=1)
    assert isinstance(r, GroupComparison) and isinstance(r.frame_level, PairedComparison)
    assert r.n_groups == 10 and r.n_frames == 200 and r.frame_level.n == 200
    assert r.wilcoxon_p > 0.05
    assert r.wilcoxon_p == pytest.approx(sps.wilcoxon(offset).pvalue, abs=1e-3)  # noise 1e-4 << offsets
    assert r.frame_level.wilcoxon_p < 1e-3
    assert r.ci_low < 0 < r.ci_high  # groups resampled: no evidence of a difference
    assert r.frame_level.ci_low > 0  # frames resampled: a spurious "significant" shift
    # Equal group sizes: the mean of group means is the frame mean.
    assert r.mean_diff == pytest.approx(r.frame_level.mean_diff, abs=1e-12)
    assert r.mean_diff == pytest.approx(offset.mean(), abs=1e-4)
    assert r.note == ""


def test_wilcoxon_on_group_means_equals_scipy_on_the_means():
    rng = np.random.default_rng(11)
    sizes = [3, 7, 1, 12, 5, 9, 4, 6]
    groups = np.concatenate([[f"g{i}"] * n for i, n in enumerate(sizes)])
    a = rng.normal(0.5, 0.1, groups.size)
    b = a - rng.normal(0.03, 0.05, groups.size)
    perm = rng.permutation(groups.size)  # row order must not matter
    a, b, groups = a[perm], b[perm], groups[perm]
    names, ma, n = group_means(a, groups)
    _, mb, _ = group_means(b, groups)
    assert list(names) == [f"g{i}" for i in range(8)] and list(n) == sizes
    for i in range(8):
        assert ma[i] == pytest.approx(a[groups == f"g{i}"].mean())
    for alt in ("two-sided", "greater", "less"):
        ref = sps.wilcoxon(ma, mb, alternative=alt)
        stat, p = wilcoxon_group_means(a, b, groups, alternative=alt)
        assert (stat, p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
        r = paired_group_comparison(a, b, groups, n_boot=100, alternative=alt)
        assert r.wilcoxon_p == pytest.approx(ref.pvalue)
    r = paired_group_comparison(a, b, groups, n_boot=100)
    assert r.mean_diff == pytest.approx((ma - mb).mean())
    assert r.mean_a == pytest.approx(ma.mean()) and r.median_b == pytest.approx(np.median(mb))
    # Unequal sizes: each group weighs equally, so this is not the frame mean.
    assert abs(r.mean_diff - r.frame_level.mean_diff) > 1e-4


def test_cluster_bootstrap_of_constant_groups_is_the_bootstrap_of_their_means():
    """Equal sizes, no within-group variation: each group is one value repeated k times."""
    means = np.array([0.1, 0.5, 0.2, 0.9, 0.4, 0.3])
    k = 25
    values = np.repeat(means, k)
    groups = np.repeat([f"s{i}" for i in range(6)], k)
    lo, hi = cluster_bootstrap_ci(values, groups, n_boot=5000, seed=3)
    assert (lo, hi) == bootstrap_mean_ci(means, n_boot=5000, seed=3)
    # Closed form: the bootstrap SD of a mean of G values is their SD (ddof 0) / sqrt(G).
    reps = cluster_bootstrap_means(values, groups, n_boot=20000, seed=4)
    assert reps.std() == pytest.approx(means.std() / np.sqrt(6), rel=0.03)
    assert reps.mean() == pytest.approx(means.mean(), abs=0.01)
    # Resampling the 150 frames as if independent pretends to know the mean sqrt(k) = 5 times better.
    frame_lo, frame_hi = bootstrap_mean_ci(values, n_boot=5000, seed=3)
    assert (hi - lo) / (frame_hi - frame_lo) == pytest.approx(np.sqrt(k), rel=0.15)
    # The paired version is the same interval on the differences.
    assert paired_cluster_bootstrap_ci(values + 1.0, np.ones_like(values), groups, n_boot=5000, seed=3) == pytest.approx((lo, hi))


def test_group_summary():
    values = np.array([1.0, 1.0, 1.0, 5.0, np.nan, 2.0])
    groups = ["a", "a", "a", "b", "b", "c"]
    s = group_summary(values, groups, n_boot=2000, seed=0)
    assert s.mean == pytest.approx((1 + 5 + 2) / 3) and s.frame_mean == pytest.approx(2.0)
    assert (s.n_groups, s.n_frames, s.n_dropped) == (3, 5, 1)
    assert (s.min_group_size, s.max_group_size) == (1, 3)
    assert 1.0 <= s.ci_low < s.mean < s.ci_high <= 5.0
    assert "1 non-finite" in s.note and "each group weighs equally" in s.estimand
    assert s.text() == f"{s.mean:.3g} [{s.ci_low:.3g}, {s.ci_high:.3g}], 3 / 5"
    shuffled = group_summary(values[::-1], groups[::-1], n_boot=2000, seed=0)
    assert (shuffled.ci_low, shuffled.ci_high) == (s.ci_low, s.ci_high)  # row order does not matter
    one = group_summary(np.array([0.2, 0.4]), ["x", "x"], n_boot=100)
    assert one.ci_low == one.ci_high == pytest.approx(0.3) and "only 1 group" in one.note
    with pytest.raises(SimrealError, match="no group .first: index 1"):
        group_summary(np.ones(3), ["a", "", "b"])
    with pytest.raises(SimrealError, match="one group per value"):
        group_summary(np.ones(3), ["a", "b"])
    with pytest.raises(SimrealError, match="no finite value"):
        group_summary(np.array([np.nan]), ["a"])


def test_few_groups_are_flagged():
    groups = np.repeat(["g1", "g2", "g3", "g4", "g5"], 4)
    a = np.repeat([1.0, 2, 3, 4, 5], 4) + np.tile([0.0, 0.01, 0.02, 0.03], 5)
    b = np.zeros(20)
    r = paired_group_comparison(a, b, groups, n_boot=200)
    assert r.wilcoxon_p == pytest.approx(0.0625)  # 2 / 2^5: the smallest possible with 5 groups
    assert "only 5 groups: the exact Wilcoxon test cannot reach p < 0.05 two-sided" in r.note
    assert r.frame_level.wilcoxon_p < 1e-4
    greater = paired_group_comparison(a, b, groups, n_boot=200, alternative="greater")
    assert greater.wilcoxon_p == pytest.approx(1 / 32) and greater.note == ""
    same = paired_group_comparison(a, a.copy(), groups, n_boot=50)
    assert same.wilcoxon_p == 1.0 and "all group differences are zero" in same.note
    a[0] = np.nan
    dropped = paired_group_comparison(a, b, groups, n_boot=50)
    assert dropped.n_frames == 19 and dropped.n_dropped == 1 and "1 frame pairs with NaN" in dropped.note


def _grouped_csv(path, rows):
    path.write_text("id,group,abs_rel\n" + "".join(f"{i},{g},{v!r}\n" for i, g, v in rows))
    return path


def test_compare_rows_uses_groups(tmp_path):
    a, b, groups, _ = clustered()
    ids = [f"f{i:03d}" for i in range(200)]
    fa = _grouped_csv(tmp_path / "a.csv", [(i, g, float(v)) for i, g, v in zip(ids, groups, a)])
    fb = _grouped_csv(tmp_path / "b.csv", [(i, g, float(v)) for i, g, v in zip(ids, groups, b)])
    r = compare_rows(fa, fb, "abs_rel", n_boot=500)
    assert isinstance(r, GroupComparison) and r.n_groups == 10 and r.wilcoxon_p > 0.05
    assert r.frame_level.wilcoxon_p < 1e-3
    d = r.to_dict()
    assert d["level"] == "group" and d["frame_level"]["assumption"] == "assumes independent frames"
    assert d["frame_level"]["n"] == 200 and d["n_groups"] == 10
    # A sample filed under another sequence in B: not the same ground truth.
    moved = list(groups)
    moved[5] = "seq09"
    fc = _grouped_csv(tmp_path / "c.csv", [(i, g, float(v)) for i, g, v in zip(ids, moved, b)])
    with pytest.raises(SimrealError, match="sample f005 is in group 'seq00' in .*a.csv but 'seq09' in .*c.csv"):
        compare_rows(fa, fc, "abs_rel")
    partial = [(i, "" if n == 3 else g, float(v)) for n, (i, g, v) in enumerate(zip(ids, groups, a))]
    fd, fe = _grouped_csv(tmp_path / "d.csv", partial), _grouped_csv(tmp_path / "e.csv", partial)
    with pytest.raises(SimrealError, match="1 of 200 compared rows have no group .first: f003"):
        compare_rows(fd, fe, "abs_rel")
    # No groups at all: frame level, said out loud.
    fa0 = _grouped_csv(tmp_path / "a0.csv", [(i, "", float(v)) for i, v in zip(ids, a)])
    fb0 = _grouped_csv(tmp_path / "b0.csv", [(i, "", float(v)) for i, v in zip(ids, b)])
    flat = compare_rows(fa0, fb0, "abs_rel", n_boot=100)
    assert isinstance(flat, PairedComparison) and flat.n == 200
    assert "frames are treated as independent" in flat.note
    with pytest.raises(SimrealError, match="sample f000 is in group 'seq00' in .*a.csv but '.none.' in .*b0.csv"):
        compare_rows(fa, fb0, "abs_rel")


def test_cli_compare_group_and_frame_level(tmp_path, monkeypatch, capsys):
    from simreal_testing import run_cli

    monkeypatch.setenv("COLUMNS", "200")  # keep rich from wrapping the column titles
    a, b, groups, _ = clustered()
    ids = [f"f{i:03d}" for i in range(200)]
    fa = _grouped_csv(tmp_path / "a.csv", [(i, g, float(v)) for i, g, v in zip(ids, groups, a)])
    fb = _grouped_csv(tmp_path / "b.csv", [(i, g, float(v)) for i, g, v in zip(ids, groups, b)])
    out = tmp_path / "res" / "r.json"
    code, stdout, _ = run_cli(monkeypatch, capsys, "compare", str(fa), str(fb), "--metric", "abs_rel", "--n-boot", "300", "--frame-level", "--out", str(out))
    assert code == 0, stdout
    assert "group level (n_groups = 10)" in stdout
    assert "frame level, assumes independent frames (n_frames = 200)" in stdout
    res = json.loads(out.read_text())
    assert res["level"] == "group" and res["group_level"]["n_groups"] == 10 and res["frame_level"]["n"] == 200
    assert res["group_level"]["wilcoxon_p"] > 0.05 and res["frame_level"]["wilcoxon_p"] < 1e-3
    assert res["frame_level"]["assumption"] == "assumes independent frames"
    code, stdout, _ = run_cli(monkeypatch, capsys, "compare", str(fa), str(fb), "--metric", "abs_rel", "--n-boot", "300")
    assert code == 0 and "group level (n_groups = 10)" in stdout
    assert "frame level, assumes" not in stdout and "--frame-level" in stdout
    fa0 = _grouped_csv(tmp_path / "a0.csv", [(i, "", float(v)) for i, v in zip(ids, a)])
    fb0 = _grouped_csv(tmp_path / "b0.csv", [(i, "", float(v)) for i, v in zip(ids, b)])
    code, stdout, _ = run_cli(monkeypatch, capsys, "compare", str(fa0), str(fb0), "--metric", "abs_rel", "--n-boot", "100", "--out", str(out))
    assert code == 0 and "frame level, assumes independent frames (n_frames = 200)" in stdout
    assert "group level" not in stdout and "frames are treated as independent" in stdout
    res = json.loads(out.read_text())
    assert res["level"] == "frame" and res["group_level"] is None and res["frame_level"]["n"] == 200
    fc = _grouped_csv(tmp_path / "c.csv", [(i, "other", float(v)) for i, v in zip(ids, b)])
    code, _, err = run_cli(monkeypatch, capsys, "compare", str(fa), str(fc), "--metric", "abs_rel")
    assert code == 2 and err.startswith("error:") and "both tables must be evaluated against the same ground truth" in err
