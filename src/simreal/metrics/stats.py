"""Paired statistics for comparing two methods on the same samples.

:func:`paired_comparison` takes two equally long vectors of one metric (sample i of ``a`` and sample i of
``b`` are the same image) and reports means, the mean difference ``a - b`` with a percentile bootstrap
confidence interval, the Wilcoxon signed-rank test and two effect sizes. :func:`compare_rows` pairs two
``rows.csv`` files (written by :mod:`simreal.metrics.evaluate`) by sample id first.

Sign convention: every difference is ``a - b`` (as in ``scipy.stats.wilcoxon(a, b)``); ``alternative=
"greater"`` tests whether ``a`` tends to be larger than ``b``.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from simreal.errors import SimrealError

Alternative = Literal["two-sided", "greater", "less"]

# Below this many non-zero differences the two-sided exact Wilcoxon p-value cannot reach 0.05
# (the smallest possible p with n = 5 is 2 / 2^5 = 0.0625).
_MIN_N_FOR_5PCT = 6
# Bootstrap resamples are drawn in chunks to bound memory (n_boot x n int64 indices otherwise).
_BOOT_CHUNK = 1000


@dataclass(frozen=True)
class PairedComparison:
    """Result of :func:`paired_comparison` (differences are ``a - b``).

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


def bootstrap_mean_ci(
    diff: np.ndarray, *, n_boot: int = 10000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``diff`` (resampling pairs)."""
    diff = np.asarray(diff, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for start in range(0, n_boot, _BOOT_CHUNK):
        stop = min(start + _BOOT_CHUNK, n_boot)
        idx = rng.integers(0, diff.size, size=(stop - start, diff.size))
        means[start:stop] = diff[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    *,
    n_boot: int = 10000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> PairedComparison:
    """Compare two methods measured on the same samples.

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
    if alternative not in ("two-sided", "greater", "less"):
        raise SimrealError(f"unknown alternative {alternative!r}; choose two-sided, greater or less")
    if n_boot < 1:
        raise SimrealError(f"n_boot must be at least 1, got {n_boot}")
    if not 0.0 < confidence < 1.0:
        raise SimrealError(f"confidence must be in (0, 1), got {confidence}")
    keep = np.isfinite(a) & np.isfinite(b)
    n_dropped = int((~keep).sum())
    a, b = a[keep], b[keep]
    if a.size == 0:
        raise SimrealError("no pair with finite values on both sides to compare")
    diff = a - b
    notes = []
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        stat, p = 0.0, 1.0
        notes.append("all differences are zero: no evidence of a difference (p = 1)")
    else:
        res = sps.wilcoxon(a, b, zero_method="wilcox", alternative=alternative)
        stat, p = float(res.statistic), float(res.pvalue)
    if 0 < nonzero.size < _MIN_N_FOR_5PCT:
        notes.append(
            f"only {nonzero.size} non-zero differences: the Wilcoxon test cannot reach p < 0.05 two-sided"
        )
    if n_dropped:
        notes.append(f"{n_dropped} pairs with NaN values left out")
    sd = float(np.std(diff, ddof=1)) if diff.size > 1 else 0.0
    dz = float(diff.mean() / sd) if sd > 0 else float("nan")
    if nonzero.size:
        ranks = sps.rankdata(np.abs(nonzero))
        w_plus, w_minus = float(ranks[nonzero > 0].sum()), float(ranks[nonzero < 0].sum())
        rb = (w_plus - w_minus) / (w_plus + w_minus)
    else:
        rb = 0.0
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


def read_rows(path: str | Path) -> dict[str, dict[str, str]]:
    """Read a ``rows.csv`` into sample id -> row (strings as stored).

    Raises:
        SimrealError: missing file, no ``id`` column, duplicate ids, or no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("rows file not found", path)
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "id" not in reader.fieldnames:
            raise SimrealError("not a rows table: no 'id' column", path)
        rows: dict[str, dict[str, str]] = {}
        for n, row in enumerate(reader, start=2):
            sid = row["id"]
            if sid in rows:
                raise SimrealError(f"line {n}: duplicate sample id {sid!r}", path)
            rows[sid] = row
    if not rows:
        raise SimrealError("rows table is empty", path)
    return rows


def paired_values(
    rows_a: dict[str, dict[str, str]],
    rows_b: dict[str, dict[str, str]],
    metric: str,
    *,
    intersect: bool = False,
    name_a: str = "A",
    name_b: str = "B",
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pair two row tables by sample id and pull out one metric; returns (ids, a, b).

    Raises:
        SimrealError: unknown metric, non-numeric values, or different id sets (unless ``intersect``).
    """
    ids_a, ids_b = set(rows_a), set(rows_b)
    if ids_a != ids_b and not intersect:
        only_a, only_b = sorted(ids_a - ids_b), sorted(ids_b - ids_a)
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} ids only in {name_a} (first: {only_a[0]})")
        if only_b:
            parts.append(f"{len(only_b)} ids only in {name_b} (first: {only_b[0]})")
        raise SimrealError("the two tables hold different samples: " + ", ".join(parts) + "; use --intersect to compare the shared ones")
    ids = sorted(ids_a & ids_b)
    if not ids:
        raise SimrealError(f"{name_a} and {name_b} share no sample id")
    for name, rows in ((name_a, rows_a), (name_b, rows_b)):
        first = next(iter(rows.values()))
        if metric not in first:
            cols = [c for c in first if c not in ("id", "group")]
            raise SimrealError(f"{name} has no metric {metric!r}; it has: {', '.join(cols)}")

    def values(rows: dict[str, dict[str, str]], name: str) -> np.ndarray:
        out = np.empty(len(ids))
        for i, sid in enumerate(ids):
            raw = rows[sid][metric]
            try:
                out[i] = float(raw) if raw != "" else float("nan")
            except ValueError:
                raise SimrealError(f"{name}: sample {sid}: {metric} value {raw!r} is not a number") from None
        return out

    return ids, values(rows_a, name_a), values(rows_b, name_b)


def compare_rows(
    a_csv: str | Path,
    b_csv: str | Path,
    metric: str,
    *,
    intersect: bool = False,
    n_boot: int = 10000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
) -> PairedComparison:
    """Paired comparison of one metric between two ``rows.csv`` files (difference = A - B)."""
    ids, a, b = paired_values(
        read_rows(a_csv), read_rows(b_csv), metric, intersect=intersect, name_a=str(a_csv), name_b=str(b_csv)
    )
    return paired_comparison(a, b, n_boot=n_boot, seed=seed, alternative=alternative)
