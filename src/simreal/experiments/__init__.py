"""Named experiments: protocols run end to end, each writing ``results.json`` and ``report.html``.

An experiment is a function ``run(*, out, scale, seed, workers, real_data) -> results dict``. The table
below is the whole list (explicit, no discovery by file name).
"""

from __future__ import annotations

from simreal.experiments.baseline import run_baseline
from simreal.experiments.depth_recipes import run_depth_recipes

SCALES = ("smoke", "small", "full")

EXPERIMENTS = {
    "baseline": run_baseline,
    "depth-recipes": run_depth_recipes,
}

__all__ = ["EXPERIMENTS", "SCALES"]
