"""Paired statistics for comparing two methods, at the level of groups (sequences) and of frames.

Frames of one video sequence, one rendered colon or one CT volume are not independent: they share the
anatomy, the lighting and the camera path, so a method that does well on one frame tends to do well on
its neighbours. Treating 296 frames from 14 sequences as 296 independent pairs makes every p-value and
every confidence interval far too optimistic. The functions here therefore work on two levels:

* **Group level** (the default wherever samples carry a group): :func:`group_means` reduces every group
  to the mean of its frames; :func:`cluster_bootstrap_ci` resamples whole groups with replacement;
  :func:`wilcoxon_group_means` runs the signed-rank test with one pair per group;
  :func:`paired_group_comparison` combines them into a :class:`GroupComparison`, and
  :func:`group_summary` summarises one method (a :class:`GroupSummary`, "value [CI], n_groups /
  n_frames" in a report table).
* **Frame level** (:func:`paired_comparison`, a :class:`PairedComparison`): every frame is one pair.
  This **assumes independent frames**; it is kept for data without groups and for side-by-side display.

Estimand at the group level: the mean over groups of the per-group mean, ``(1/G) sum_g mean(x in g)``
(for a paired comparison, of the per-group mean difference ``A - B``, which equals the difference of the
two means of group means). **Each group weighs equally**, whatever its number of frames: a sequence of 5
frames counts as much as one of 60. With equal group sizes this equals the plain frame mean. The
cluster bootstrap draws G groups with replacement and recomputes that mean, so its interval reflects
the spread between groups, which is what varies when one records new sequences.

Pairing two per-sample tables (``rows.csv``) and choosing the level is :mod:`simreal.metrics.compare`.

Sign convention: every difference is ``a - b`` (as in ``scipy.stats.wilcoxon(a, b)``); ``alternative=
"greater"`` tests whether ``a`` tends to be larger than ``b``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Hashable, Literal, Sequence

import numpy as np
from scipy import stats as sps

from simreal.errors import SimrealError

Alternative = Literal["two-sided", "greater", "less"]

# Bootstrap resamples are drawn in chunks to bound memory (n_boot x n int64 indices otherwise).
_BOOT_CHUNK = 1000

#: How the frame-level result is labelled wherever it is shown or written.
FRAME_LEVEL_ASSUMPTION = "assumes independent frames"
#: The group-level estimand, written into results so a reader of the JSON knows what was estimated.
GROUP_ESTIMAND = "mean over groups of the per-group mean (each group weighs equally, whatever its number of frames)"


@dataclass(frozen=True)
class PairedComparison:
    """Result of :func:`paired_comparison` (differences are ``a - b``): the frame level.

    Every pair counts as an independent observation, which **assumes independent frames**; for
    frames grouped in sequences, read :class:`GroupComparison` first.

    Attributes:
        n: number of pairs used (pairs with a NaN on either side are dropped: see ``n_dropped``).
        mean_a, mean_b, median_a, median_b: per-method summaries.
        mean_diff: mean of ``a - b``; ``ci_low`` / ``ci_high``: percentile bootstrap CI of it.
        confidence: level of that interval (0.95).
        wilcoxon_statistic, wilcoxon_p: scipy's signed-rank statistic and p-value (zero differences
            dropped, "wilcox" method); p is 1.0 when every difference is zero.
        cohens_dz: mean difference / standard deviation of differences (NaN if that is 0 or n < 2).
        rank_biserial: matched-pairs rank-biserial correlation ``(W+ - W-) / (W+ + W-)`` in [-1, 1].
        n_dropped: pairs left out because a value was NaN (e.g. an undefined HD95).
        note: plain-language caveat (small n, all differences zero), or "".
    """

    n: int
    mean_a: float
    mean_b: float
    median_a: float
    median_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    confidence: float
    wilcoxon_statistic: float
    wilcoxon_p: float
    alternative: str
    cohens_dz: float
    rank_biserial: float
    n_boot: int
    seed: int
    n_dropped: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _bootstrap_means(x: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot,) means of ``x`` resampled with replacement, drawn in chunks of ``_BOOT_CHUNK``."""
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(start + _BOOT_CHUNK, n_boot)
        idx = rng.integers(0, x.size, size=(stop - start, x.size))
        means[start:stop] = x[idx].mean(axis=1)
    return means


def _percentile_ci(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_mean_ci(
    diff: np.ndarray, *, n_boot: int = 10000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``diff`` (resampling single values).

    This treats every value as independent; for frames grouped in sequences use
    :func:`cluster_bootstrap_ci`.
    """
    diff = np.asarray(diff, dtype=np.float64).ravel()
    return _percentile_ci(_bootstrap_means(diff, n_boot, seed), confidence)


def min_wilcoxon_p(n: int, alternative: Alternative = "two-sided") -> float:
    """Smallest p-value the exact signed-rank test can give with ``n`` non-zero differences.

    All ``n`` differences on one side is the most extreme of the ``2^n`` sign patterns, so the exact
    p-value is at least ``1 / 2^n`` one-sided and ``2 / 2^n`` two-sided (0.0625 for n = 5 two-sided).
    """
    return min(1.0, (2.0 if alternative == "two-sided" else 1.0) / 2.0**n)


def _wilcoxon(a: np.ndarray, b: np.ndarray, alternative: Alternative) -> tuple[float, float, float, int]:
    """(statistic, p, rank-biserial r, number of non-zero differences) of ``a - b``; p = 1 if all are 0."""
    diff = a - b
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 0.0, 1.0, 0.0, 0
    res = sps.wilcoxon(a, b, zero_method="wilcox", alternative=alternative)
    ranks = sps.rankdata(np.abs(nonzero))
    w_plus, w_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
    return float(res.statistic), float(res.pvalue), (w_plus - w_minus) / (w_plus + w_minus), int(nonzero.size)


def _cohens_dz(diff: np.ndarray) -> float:
    sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
    return float(diff.mean() / sd) if sd > 0 else float("nan")


def _check_options(alternative: str, n_boot: int, confidence: float) -> None:
    if alternative not in ("two-sided", "greater", "less"):
        raise SimrealError(f"unknown alternative {alternative!r}; choose two-sided, greater or less")
    if n_boot < 1:
        raise SimrealError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise SimrealError(f"confidence must be in (0, 1), got {confidence}")


def _sidedness(alternative: str) -> str:
    return "two-sided" if alternative == "two-sided" else "one-sided"


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int = 10000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedComparison:
    """Compare two methods measured on the same samples, every pair independent (the frame level).

    Use :func:`paired_group_comparison` when the samples are frames of sequences.

    Args:
        a, b: (n,) metric values; ``a[i]`` and ``b[i]`` belong to the same sample.
        n_boot: bootstrap resamples for the confidence interval.
        seed: seed of the bootstrap generator (same seed, same interval).
        alternative: Wilcoxon alternative for ``a - b``: "two-sided", "greater" or "less".
        confidence: confidence level of the interval.

    Returns:
        A :class:`PairedComparison`.

    Raises:
        SimrealError: different lengths, no pair left, or bad options.

    Example:
        >>> r = paired_comparison(np.arange(10.0) + 1, np.arange(10.0)); r.mean_diff
        1.0
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise SimrealError(f"paired values need equal lengths, got {a.size} and {b.size}")
    _check_options(alternative, n_boot, confidence)
    keep = np.isfinite(a) & np.isfinite(b)
    n_dropped = int((~keep).sum())
    a, b = a[keep], b[keep]
    if a.size == 0:
        raise SimrealError("no pair with finite values on both sides to compare")
    diff = a - b
    notes = []
    stat, p, rb, n_nonzero = _wilcoxon(a, b, alternative)
    if n_nonzero == 0:
        notes.append("all differences are zero: no evidence of a difference (p = 1)")
    elif min_wilcoxon_p(n_nonzero, alternative) >= 0.05:
        notes.append(
            f"only {n_nonzero} non-zero differences: the exact Wilcoxon test cannot reach p < 0.05 "
            f"{_sidedness(alternative)}"
        )
    if n_dropped:
        notes.append(f"{n_dropped} pairs with NaN values left out")
    dz = _cohens_dz(diff)
    lo, hi = bootstrap_mean_ci(diff, n_boot=n_boot, seed=seed, confidence=confidence)
    return PairedComparison(
        n=int(a.size),
        mean_a=float(a.mean()),
        mean_b=float(b.mean()),
        median_a=float(np.median(a)),
        median_b=float(np.median(b)),
        mean_diff=float(diff.mean()),
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        wilcoxon_statistic=stat,
        wilcoxon_p=p,
        alternative=alternative,
        cohens_dz=dz,
        rank_biserial=float(rb),
        n_boot=n_boot,
        seed=seed,
        n_dropped=n_dropped,
        note="; ".join(notes),
    )


# --------------------------------------------------------------------------------------------------
# Group level: frames of one sequence / anatomy / volume are one unit.


def _group_labels(groups: Sequence[Hashable], n: int) -> np.ndarray:
    """Groups as an (n,) array of strings; every frame must name a group."""
    if len(groups) != n:
        raise SimrealError(f"need one group per value, got {len(groups)} groups for {n} values")
    labels = np.array(["" if g is None else str(g) for g in groups], dtype=object)
    missing = np.flatnonzero(labels == "")
    if missing.size:
        raise SimrealError(f"{missing.size} values have no group (first: index {int(missing[0])})")
    return labels.astype(str) if n else np.array([], dtype=str)


def group_means(values: np.ndarray, groups: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the values in every group.

    Args:
        values: (n,) one metric per frame. Non-finite values propagate into their group's mean: drop
            them first (the comparison and summary functions here do, and count them).
        groups: (n,) group of every frame (a sequence name, a colon id); compared as strings.

    Returns:
        ``(labels, means, sizes)``: (G,) group names sorted as strings (so the result, and every
        bootstrap built on it, does not depend on the row order), (G,) float64 means and (G,) frame
        counts.

    Raises:
        SimrealError: lengths differ or a frame has no group (None or "").

    Example:
        >>> group_means(np.array([1.0, 3.0, 10.0]), ["s1", "s1", "s2"])[1]
        array([ 2., 10.])
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    labels = _group_labels(groups, values.size)
    names, inverse = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inverse, minlength=names.size)
    sums = np.bincount(inverse, weights=values, minlength=names.size)
    return names, sums / np.maximum(sizes, 1), sizes


def cluster_bootstrap_means(
    values: np.ndarray, groups: Sequence[Hashable], *, n_boot: int = 10000, seed: int = 0
) -> np.ndarray:
    """Bootstrap replicates of the mean of group means, resampling whole groups with replacement.

    Each replicate draws G of the G groups with replacement and averages their group means (every
    drawn group weighs equally, see the module docstring). Frames are never resampled on their own,
    so the replicates vary only as much as the groups differ.

    Args:
        values: (n,) finite metric values, one per frame.
        groups: (n,) group of every frame.
        n_boot: number of replicates (drawn in chunks to bound memory).
        seed: seed of the generator (same seed, same replicates).

    Returns:
        (n_boot,) replicate means.
    """
    if n_boot < 1:
        raise SimrealError(f"n_boot must be at least 1, got {n_boot}")
    _, means, _ = group_means(values, groups)
    if means.size == 0:
        raise SimrealError("no value to bootstrap")
    return _bootstrap_means(means, n_boot, seed)


def cluster_bootstrap_ci(
    values: np.ndarray,
    groups: Sequence[Hashable],
    *,
    n_boot: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile cluster-bootstrap confidence interval of the mean of group means.

    Args:
        values: (n,) finite metric values, one per frame.
        groups: (n,) group of every frame.
        n_boot, seed: see :func:`cluster_bootstrap_means`.
        confidence: level of the interval.

    Returns:
        ``(low, high)``; a single point when there is one group.
    """
    if not 0.0 < confidence < 1.0:
        raise SimrealError(f"confidence must be in (0, 1), got {confidence}")
    return _percentile_ci(cluster_bootstrap_means(values, groups, n_boot=n_boot, seed=seed), confidence)


def paired_cluster_bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    groups: Sequence[Hashable],
    *,
    n_boot: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Cluster-bootstrap CI of the paired mean difference ``a - b`` (groups resampled whole).

    The mean over groups of the per-group mean difference equals the difference of the two means of
    group means, because both sides hold the same frames; so this is :func:`cluster_bootstrap_ci` of
    ``a - b``. Arguments as there; ``a``, ``b``: (n,) finite paired values.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise SimrealError(f"paired values need equal lengths, got {a.size} and {b.size}")
    return cluster_bootstrap_ci(a - b, groups, n_boot=n_boot, seed=seed, confidence=confidence)


def wilcoxon_group_means(
    a: np.ndarray, b: np.ndarray, groups: Sequence[Hashable], *, alternative: Alternative = "two-sided"
) -> tuple[float, float]:
    """Wilcoxon signed-rank test with one pair per group: the group means of ``a`` against those of ``b``.

    Args:
        a, b: (n,) finite paired values, one per frame.
        groups: (n,) group of every frame.
        alternative: "two-sided", "greater" or "less" (for ``a - b``).

    Returns:
        ``(statistic, p)`` as ``scipy.stats.wilcoxon`` on the G pairs of means (zero differences
        dropped); ``(0, 1)`` when every group difference is zero.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise SimrealError(f"paired values need equal lengths, got {a.size} and {b.size}")
    _, ma, _ = group_means(a, groups)
    _, mb, _ = group_means(b, groups)
    stat, p, _, _ = _wilcoxon(ma, mb, alternative)
    return stat, p


@dataclass(frozen=True)
class GroupSummary:
    """Result of :func:`group_summary`: one method's metric over groups of frames.

    Attributes:
        mean: mean of the group means (each group weighs equally); ``ci_low`` / ``ci_high``: its
            percentile cluster-bootstrap interval at level ``confidence``.
        frame_mean: plain mean over all frames, for reference (equals ``mean`` when groups are equal
            in size).
        n_groups, n_frames: groups and finite frames used; ``n_dropped``: non-finite values left out.
        min_group_size, max_group_size: frames in the smallest and largest group.
        note: plain-language caveat, or "".
    """

    mean: float
    ci_low: float
    ci_high: float
    confidence: float
    n_groups: int
    n_frames: int
    frame_mean: float
    min_group_size: int
    max_group_size: int
    n_boot: int
    seed: int
    n_dropped: int = 0
    note: str = ""
    estimand: str = GROUP_ESTIMAND

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def text(self, digits: int = 3) -> str:
        """``"0.123 [0.101, 0.149], 14 / 296"``: value [CI], n_groups / n_frames, for report tables."""
        f = f"{{:.{digits}g}}"
        return f"{f.format(self.mean)} [{f.format(self.ci_low)}, {f.format(self.ci_high)}], {self.n_groups} / {self.n_frames}"


def group_summary(
    values: np.ndarray,
    groups: Sequence[Hashable],
    *,
    n_boot: int = 10000,
    seed: int = 0,
    confidence: float = 0.95,
) -> GroupSummary:
    """Mean of group means of one metric with its cluster-bootstrap CI, n_groups and n_frames.

    Args:
        values: (n,) metric per frame; NaN / inf values (e.g. an undefined HD95) are left out and
            counted in ``n_dropped``; a group left without a value drops out.
        groups: (n,) group of every frame.
        n_boot, seed, confidence: of the cluster bootstrap (same seed, same interval).

    Returns:
        A :class:`GroupSummary`.

    Raises:
        SimrealError: lengths differ, a frame without a group, no finite value, or bad options.

    Example:
        >>> s = group_summary(np.array([1.0, 1.0, 1.0, 5.0]), ["a", "a", "a", "b"], n_boot=100)
        >>> s.mean, s.frame_mean, s.n_groups, s.n_frames
        (3.0, 2.0, 2, 4)
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    labels = _group_labels(groups, values.size)
    _check_options("two-sided", n_boot, confidence)
    keep = np.isfinite(values)
    n_dropped = int((~keep).sum())
    values, labels = values[keep], labels[keep]
    if values.size == 0:
        raise SimrealError("no finite value to summarise")
    _, means, sizes = group_means(values, labels)
    lo, hi = _percentile_ci(_bootstrap_means(means, n_boot, seed), confidence)
    notes = []
    if means.size == 1:
        notes.append("only 1 group: the spread between groups is unknown, so the interval is a point")
    if n_dropped:
        notes.append(f"{n_dropped} non-finite values left out")
    return GroupSummary(
        mean=float(means.mean()),
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        n_groups=int(means.size),
        n_frames=int(values.size),
        frame_mean=float(values.mean()),
        min_group_size=int(sizes.min()),
        max_group_size=int(sizes.max()),
        n_boot=n_boot,
        seed=seed,
        n_dropped=n_dropped,
        note="; ".join(notes),
    )


@dataclass(frozen=True)
class GroupComparison:
    """Result of :func:`paired_group_comparison`: group level first, frame level kept apart.

    Every group-level number is computed on the G per-group means (see the module docstring for
    the estimand: each group weighs equally). Differences are ``a - b``.

    Attributes:
        n_groups: groups (pairs of group means) used; ``n_frames``: frame pairs in them.
        mean_a, mean_b: means of the group means of each method; ``median_a`` / ``median_b``: medians of
            the group means.
        mean_diff: mean over groups of the per-group mean difference (= ``mean_a - mean_b``);
            ``ci_low`` / ``ci_high``: percentile cluster-bootstrap CI of it (groups resampled whole).
        wilcoxon_statistic, wilcoxon_p: signed-rank test on the G pairs of group means (zero
            differences dropped); p is 1.0 when every group difference is zero.
        cohens_dz: mean / standard deviation of the G group differences (NaN if that is 0 or G < 2).
        rank_biserial: matched-pairs rank-biserial correlation of the G group differences.
        n_dropped: frame pairs left out because a value was NaN.
        note: plain-language caveats (few groups, all zero), or "".
        estimand: the quantity estimated, in words.
        frame_level: the frame-level :class:`PairedComparison` on the same frames, which **assumes
            independent frames**: shown beside the group level, never instead of it.
    """

    n_groups: int
    n_frames: int
    mean_a: float
    mean_b: float
    median_a: float
    median_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    confidence: float
    wilcoxon_statistic: float
    wilcoxon_p: float
    alternative: str
    cohens_dz: float
    rank_biserial: float
    n_boot: int
    seed: int
    frame_level: PairedComparison
    n_dropped: int = 0
    note: str = ""
    estimand: str = GROUP_ESTIMAND

    def to_dict(self) -> dict[str, Any]:
        """Both levels: group-level fields at the top, ``frame_level`` (labelled with its assumption)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "frame_level"}
        out["level"] = "group"
        out["frame_level"] = {"level": "frame", "assumption": FRAME_LEVEL_ASSUMPTION, **self.frame_level.to_dict()}
        return out


def paired_group_comparison(
    a: np.ndarray,
    b: np.ndarray,
    groups: Sequence[Hashable],
    *,
    n_boot: int = 10000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> GroupComparison:
    """Compare two methods on the same frames, with frames grouped into sequences (pairs = groups).

    Frame pairs with a NaN on either side are dropped first (on both sides alike), then each group is
    reduced to its mean of ``a``, of ``b`` and of ``a - b``. The Wilcoxon test and the effect sizes use
    the G group differences; the CI resamples whole groups. The frame-level comparison of the same
    pairs is computed too (same ``n_boot`` and ``seed``) and kept in ``frame_level``.

    Args:
        a, b: (n,) metric values; ``a[i]`` and ``b[i]`` belong to the same frame.
        groups: (n,) group (sequence, anatomy, volume) of every frame.
        n_boot: bootstrap resamples for both intervals.
        seed: seed of both bootstrap generators.
        alternative: Wilcoxon alternative for ``a - b``: "two-sided", "greater" or "less".
        confidence: confidence level of the intervals.

    Returns:
        A :class:`GroupComparison`.

    Raises:
        SimrealError: different lengths, a frame without a group, no pair left, or bad options.

    Example:
        >>> r = paired_group_comparison(np.array([2.0, 2, 5]), np.array([1.0, 1, 1]), ["s1", "s1", "s2"])
        >>> r.n_groups, r.mean_diff, r.frame_level.mean_diff
        (2, 2.5, 2.0)
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise SimrealError(f"paired values need equal lengths, got {a.size} and {b.size}")
    labels = _group_labels(groups, a.size)
    _check_options(alternative, n_boot, confidence)
    frame = paired_comparison(a, b, n_boot=n_boot, seed=seed, alternative=alternative, confidence=confidence)
    keep = np.isfinite(a) & np.isfinite(b)
    n_dropped = int((~keep).sum())
    a, b, labels = a[keep], b[keep], labels[keep]
    _, ma, _ = group_means(a, labels)
    _, mb, _ = group_means(b, labels)
    diff = ma - mb
    stat, p, rb, n_nonzero = _wilcoxon(ma, mb, alternative)
    notes = []
    if ma.size == 1:
        notes.append("only 1 group: no test between groups is possible and the interval is a point")
    elif n_nonzero == 0:
        notes.append("all group differences are zero: no evidence of a difference (p = 1)")
    elif min_wilcoxon_p(n_nonzero, alternative) >= 0.05:
        what = f"{n_nonzero} groups" if n_nonzero == ma.size else f"{n_nonzero} groups with a non-zero difference"
        notes.append(f"only {what}: the exact Wilcoxon test cannot reach p < 0.05 {_sidedness(alternative)}")
    if n_dropped:
        notes.append(f"{n_dropped} frame pairs with NaN values left out")
    lo, hi = _percentile_ci(_bootstrap_means(diff, n_boot, seed), confidence)
    return GroupComparison(
        n_groups=int(ma.size),
        n_frames=int(a.size),
        mean_a=float(ma.mean()),
        mean_b=float(mb.mean()),
        median_a=float(np.median(ma)),
        median_b=float(np.median(mb)),
        mean_diff=float(diff.mean()),
        ci_low=lo,
        ci_high=hi,
        confidence=confidence,
        wilcoxon_statistic=stat,
        wilcoxon_p=p,
        alternative=alternative,
        cohens_dz=_cohens_dz(diff),
        rank_biserial=float(rb),
        n_boot=n_boot,
        seed=seed,
        frame_level=frame,
        n_dropped=n_dropped,
        note="; ".join(notes),
    )
