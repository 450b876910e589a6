"""Named experiments: protocols run end to end, each writing ``results.json`` and ``report.html``.

An experiment is a function ``run(*, out, scale, seed, workers, real_data) -> results dict``. The table
below is the whole list (explicit, no discovery by file name).
"""

from __future__ import annotations

from simreal.experiments.baseline import run_baseline

SCALES = ("smoke", "small", "full")

EXPERIMENTS = {
    "baseline": run_baseline,
}

__all__ = ["EXPERIMENTS", "SCALES"]
