"""Train / validation / test splits by group (patient or video sequence), never by frame.

Frames of one sequence show the same polyp from nearly the same view; putting some in training and
others in testing measures memory, not generalisation. :func:`sequence_split` assigns whole groups.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from simreal.errors import SimrealError


def _allocate(fractions: Mapping[str, float], n_groups: int) -> dict[str, int]:
    """Whole groups per split by largest remainder; every split with a non-zero fraction gets one."""
    names = list(fractions)
    raw = np.array([fractions[k] * n_groups for k in names])
    counts = np.floor(raw).astype(int)
    order = np.argsort(-(raw - counts), kind="stable")
    for i in order[: n_groups - counts.sum()]:
        counts[i] += 1
    for i, k in enumerate(names):
        if fractions[k] > 0 and counts[i] == 0:
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[i] += 1
    return {k: int(c) for k, c in zip(names, counts)}


def sequence_split(
    groups: Sequence[str | None],
    *,
    fractions: Mapping[str, float] | None = None,
    n_test_groups: int | None = None,
    seed: int = 0,
) -> dict[str, list[int]]:
    """Split samples into named subsets so that no group is in two subsets.

    Args:
        groups: the group of every sample (``SampleRecord.group``), in sample order.
        fractions: split name -> fraction of the *groups* (not frames), summing to 1, e.g.
            ``{"train": 0.7, "val": 0.1, "test": 0.2}``; every non-zero fraction gets at least one group.
        n_test_groups: instead of ``fractions``: this many groups in "test", the rest in "train".
        seed: seed of the shuffle of the (sorted) group names; same seed, same split.

    Returns:
        Split name -> sorted sample indices.

    Raises:
        SimrealError: a sample without a group, neither or both of ``fractions`` / ``n_test_groups``,
            fractions that do not sum to 1, or fewer groups than non-empty splits.

    Example:
        >>> s = sequence_split(["a", "a", "b", "c"], n_test_groups=1, seed=0)
        >>> sorted(len(v) for v in s.values())
        [1, 3]
    """
    if (fractions is None) == (n_test_groups is None):
        raise SimrealError("give exactly one of fractions or n_test_groups")
    missing = [i for i, g in enumerate(groups) if g is None]
    if missing:
        raise SimrealError(f"{len(missing)} samples have no group (first: index {missing[0]}); cannot split by sequence")
    unique = sorted(set(groups))  # type: ignore[type-var]
    n = len(unique)
    if n_test_groups is not None:
        if not 1 <= n_test_groups < n:
            raise SimrealError(f"n_test_groups must be between 1 and {n - 1} (there are {n} groups), got {n_test_groups}")
        counts = {"train": n - n_test_groups, "test": n_test_groups}
    else:
        fractions = dict(fractions or {})
        if any(f < 0 for f in fractions.values()) or not np.isclose(sum(fractions.values()), 1.0):
            raise SimrealError(f"split fractions must be non-negative and sum to 1, got {dict(fractions)}")
        needed = sum(1 for f in fractions.values() if f > 0)
        if n < needed:
            raise SimrealError(f"{n} groups cannot fill {needed} non-empty splits")
        counts = _allocate(fractions, n)
    rng = np.random.default_rng(seed)
    shuffled = [unique[i] for i in rng.permutation(n)]
    which: dict[str, str] = {}
    start = 0
    for name, c in counts.items():
        for g in shuffled[start : start + c]:
            which[g] = name
        start += c
    out: dict[str, list[int]] = {name: [] for name in counts}
    for i, g in enumerate(groups):
        out[which[g]].append(i)  # type: ignore[index]
    return out
