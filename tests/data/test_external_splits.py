"""Splits by sequence: no group in two splits, fractions by group, determinism, errors."""

from __future__ import annotations

import pytest

from simreal.data.splits import sequence_split
from simreal.errors import SimrealError

GROUPS = [f"seq{g:02d}" for g in range(1, 11) for _ in range(g)]  # 10 groups of 1..10 frames


def test_groups_never_cross_splits():
    s = sequence_split(GROUPS, fractions={"train": 0.6, "val": 0.2, "test": 0.2}, seed=1)
    assert sorted(i for v in s.values() for i in v) == list(range(len(GROUPS)))
    seen = [{GROUPS[i] for i in v} for v in s.values()]
    assert sum(len(g) for g in seen) == 10 and len(set().union(*seen)) == 10
    assert [len(g) for g in seen] == [6, 2, 2]


def test_deterministic_and_seed_dependent():
    a = sequence_split(GROUPS, n_test_groups=3, seed=4)
    assert a == sequence_split(GROUPS, n_test_groups=3, seed=4)
    assert a != sequence_split(GROUPS, n_test_groups=3, seed=5)
    assert len({GROUPS[i] for i in a["test"]}) == 3


def test_small_fraction_still_gets_a_group():
    s = sequence_split(GROUPS, fractions={"train": 0.95, "test": 0.05})
    assert len({GROUPS[i] for i in s["test"]}) == 1


def test_errors():
    with pytest.raises(SimrealError, match="exactly one"):
        sequence_split(GROUPS)
    with pytest.raises(SimrealError, match="no group"):
        sequence_split(["a", None], n_test_groups=1)
    with pytest.raises(SimrealError, match="sum to 1"):
        sequence_split(GROUPS, fractions={"train": 0.5, "test": 0.2})
    with pytest.raises(SimrealError, match="between 1 and 9"):
        sequence_split(GROUPS, n_test_groups=10)
    with pytest.raises(SimrealError, match="cannot fill"):
        sequence_split(["a", "b"], fractions={"train": 0.5, "val": 0.25, "test": 0.25})
