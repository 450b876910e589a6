"""Compare two methods from their per-sample tables: pair two ``rows.csv`` files by sample id and test.

:func:`compare_rows` (``simreal compare``) reads two ``rows.csv`` files written by
:mod:`simreal.metrics.evaluate`, pairs them by sample id and uses their ``group`` column: the group-level
comparison of :func:`~simreal.metrics.stats.paired_group_comparison` (with the frame level inside,
labelled) when the rows carry groups, the frame-level one with a note otherwise. The statistics
themselves are :mod:`simreal.metrics.stats`.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from simreal.errors import SimrealError
from simreal.metrics.stats import (
    Alternative,
    GroupComparison,
    PairedComparison,
    paired_comparison,
    paired_group_comparison,
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


def paired_groups(
    rows_a: dict[str, dict[str, str]],
    rows_b: dict[str, dict[str, str]],
    ids: Sequence[str],
    *,
    name_a: str = "A",
    name_b: str = "B",
) -> list[str] | None:
    """The group of every paired id from the ``group`` columns, or None when no row has a group.

    Both tables must come from the same ground truth, so they must agree on the group of each id; a
    table either gives every row a group or none (an absent ``group`` column counts as none).

    Raises:
        SimrealError: an id whose group differs between the tables, or rows with and without groups.
    """
    out = []
    for sid in ids:
        ga, gb = rows_a[sid].get("group") or "", rows_b[sid].get("group") or ""
        if ga != gb:
            raise SimrealError(
                f"sample {sid} is in group {ga or '(none)'!r} in {name_a} but {gb or '(none)'!r} in {name_b}; "
                "both tables must be evaluated against the same ground truth"
            )
        out.append(ga)
    missing = [sid for sid, g in zip(ids, out) if not g]
    if len(missing) == len(out):
        return None
    if missing:
        raise SimrealError(
            f"{name_a}: {len(missing)} of {len(out)} compared rows have no group (first: {missing[0]}) while the "
            "others have one; give every sample a group (sequence) or none"
        )
    return out


def compare_rows(
    a_csv: str | Path,
    b_csv: str | Path,
    metric: str,
    *,
    intersect: bool = False,
    n_boot: int = 10000,
    seed: int = 0,
    alternative: Alternative = "two-sided",
    confidence: float = 0.95,
) -> GroupComparison | PairedComparison:
    """Paired comparison of one metric between two ``rows.csv`` files (difference = A - B).

    Rows are paired by sample id. When the rows carry groups (the ``group`` column that
    :mod:`simreal.metrics.evaluate` fills from the ground truth's records), the result is a
    :class:`GroupComparison` (pairs = groups; the frame level, which assumes independent frames, is
    inside it). Without groups it is a frame-level :class:`PairedComparison` whose note says that
    frames are treated as independent.

    Raises:
        SimrealError: as :func:`read_rows` and :func:`paired_values`, and ids whose group differs
            between the two tables.
    """
    rows_a, rows_b = read_rows(a_csv), read_rows(b_csv)
    name_a, name_b = str(a_csv), str(b_csv)
    ids, a, b = paired_values(rows_a, rows_b, metric, intersect=intersect, name_a=name_a, name_b=name_b)
    groups = paired_groups(rows_a, rows_b, ids, name_a=name_a, name_b=name_b)
    if groups is None:
        r = paired_comparison(a, b, n_boot=n_boot, seed=seed, alternative=alternative, confidence=confidence)
        note = "rows carry no group: frames are treated as independent, so p and CI may be too optimistic"
        return dataclasses.replace(r, note="; ".join(x for x in (note, r.note) if x))
    return paired_group_comparison(
        a, b, groups, n_boot=n_boot, seed=seed, alternative=alternative, confidence=confidence
    )
