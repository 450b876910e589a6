"""Adversarial run folders: reading their config, refusing the wrong folder, loading their checkpoint.

No Lightning import: ``adapt apply`` uses this without the training engine. The folder layout is
described in :mod:`simreal.adapt.engine`.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Mapping, Protocol

import torch

from simreal.adapt.config import RESUMABLE_FIELDS, EngineConfig
from simreal.configs import to_plain
from simreal.errors import SimrealError

#: The checkpoint of a run, relative to its folder.
CHECKPOINT = Path("checkpoints") / "last.ckpt"
CONFIG = "config.json"
METRICS = "metrics.csv"


class RunConfig(Protocol):
    """What the engine reads from a method's run config (a frozen dataclass tree)."""

    out: str
    method: str
    engine: EngineConfig


def identity(plain: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a plain run config that must match to resume: all but ``out`` and :data:`RESUMABLE_FIELDS`."""
    d = {k: v for k, v in plain.items() if k != "out"}
    d["engine"] = {k: v for k, v in dict(plain.get("engine", {})).items() if k not in RESUMABLE_FIELDS}
    return d


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def read_run_config(run: str | Path) -> dict[str, Any]:
    """``RUN/config.json`` of an adversarial run, as a plain mapping.

    Raises:
        SimrealError: no config.json, unreadable JSON, a task training run (``simreal train``) or any
            other config without a ``method``.
    """
    run = Path(run)
    path = run / CONFIG
    if not path.is_file():
        raise SimrealError("no config.json: not a simreal run folder", run)
    try:
        plain = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimrealError(f"unreadable run config ({exc})", path) from None
    if not isinstance(plain, dict):
        raise SimrealError("run config is not a mapping", path)
    if "method" not in plain:
        what = f"a {plain['task']!r} task training run (simreal train)" if "task" in plain else "no adapt run"
        raise SimrealError(f"this folder holds {what}, not an adversarial (adapt) run", run)
    return plain


def check_run_folder(run: str | Path, config: RunConfig) -> Path | None:
    """The checkpoint to resume ``config`` from, or None to start afresh; refuse a folder of another run.

    Raises:
        SimrealError: the path is a file; a non-empty folder without config.json; a run of another method,
            a task training run, or a run whose config differs outside :data:`RESUMABLE_FIELDS` and ``out``
            (naming the fields that differ).
    """
    run = Path(run)
    if not run.exists():
        return None
    if not run.is_dir():
        raise SimrealError("run folder path is a file", run)
    if not (run / CONFIG).is_file():
        if any(run.iterdir()):
            raise SimrealError("folder exists and is not a simreal run folder (no config.json); choose a new --out", run)
        return None
    old = read_run_config(run)
    if old["method"] != config.method:
        raise SimrealError(f"run folder holds a {old['method']!r} run, not a {config.method!r} run; choose a new --out", run)
    last = run / CHECKPOINT
    if not last.is_file():
        return None  # stopped before its first checkpoint: nothing to keep
    a, b = _flatten(identity(old)), _flatten(identity(to_plain(config)))
    diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    if diff:
        raise SimrealError(f"run folder holds a run with a different config ({', '.join(diff)} differ); choose a new --out", run)
    return last


def load_adapt_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """A checkpoint written by :func:`simreal.adapt.engine.fit` (CPU tensors), checked by its tag.

    Its ``checkpoint["simreal"]`` holds ``kind`` ("adapt"), ``method``, ``config`` (the plain run config),
    ``iteration`` (steps done) and ``optimizers`` (their names, in the order of ``optimizer_states``).

    Args:
        mmap: map the tensors from the file instead of reading them (cheap when only the tag is needed).

    Raises:
        SimrealError: missing or unreadable file, a task training checkpoint, not a simreal checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("checkpoint not found", path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False, mmap=mmap)
    except Exception as exc:  # torch raises many types for damaged files
        raise SimrealError(f"cannot read checkpoint ({exc.__class__.__name__}: {exc})", path) from None
    tag = ckpt.get("simreal") if isinstance(ckpt, dict) else None
    if not isinstance(tag, dict) or "state_dict" not in ckpt:
        raise SimrealError("not a simreal checkpoint (no 'simreal' tag)", path)
    if "method" not in tag:
        what = f"a {tag['task']!r} task training checkpoint (simreal train)" if "task" in tag else "no adapt checkpoint"
        raise SimrealError(f"this is {what}, not an adversarial (adapt) checkpoint", path)
    return ckpt


def trim_samples(run: Path, last_step: int) -> None:
    """Remove sample grids of steps after ``last_step`` (left by an interrupted attempt; a resume redraws them)."""
    for png in (Path(run) / "samples").glob("step_*.png"):
        try:
            step = int(png.stem.removeprefix("step_"))
        except ValueError:
            continue
        if step > last_step:
            png.unlink()


def trim_metrics(run: Path, last_step: int) -> None:
    """Drop the rows logged after ``last_step`` from ``RUN/metrics.csv`` (a resume logs them again)."""
    path = Path(run) / METRICS
    if not path.is_file():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = [r for r in reader if r.get("step") and int(float(r["step"])) <= last_step]
    if not rows:
        path.unlink()
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# -- which config tree a method's run folder holds --------------------------------------------------------

#: method name -> (run config class name in :mod:`simreal.adapt.config`, the field holding the method's own config).
RUN_CONFIGS = {
    "reverse": ("ReverseRunConfig", "reverse"),
    "munit": ("MunitRunConfig", "munit"),
    "cyclegan": ("CycleGANRunConfig", "cyclegan"),
}


def run_config_class(method: str) -> type:
    """The frozen run-config class of a method (``"munit"`` -> :class:`~simreal.adapt.config.MunitRunConfig`).

    Raises:
        SimrealError: an unknown method (naming the known ones).
    """
    from simreal.adapt import config as configs

    if method not in RUN_CONFIGS:
        raise SimrealError(f"unknown adapt method {method!r}; known: {', '.join(RUN_CONFIGS)}")
    return getattr(configs, RUN_CONFIGS[method][0])


def method_field(method: str) -> str:
    """The run-config field holding the method's own settings (``"munit"`` -> ``"munit"``)."""
    run_config_class(method)
    return RUN_CONFIGS[method][1]
