"""Named experiments: protocols run end to end, each writing ``results.json`` and ``report.html``.

An experiment is a function ``run(*, out, scale, seed, workers, real_data) -> results dict``. The table
below is the whole list (explicit, no discovery by file name).
"""

from __future__ import annotations

from simreal.experiments.baseline import run_baseline
from simreal.experiments.cinematic_ft import run_cinematic_ft
from simreal.experiments.depth_recipes import run_depth_recipes
from simreal.experiments.reverse_da import run_reverse_da
from simreal.experiments.sim2real_laparoscopy import run_sim2real_laparoscopy
from simreal.experiments.sim2real_seg import run_sim2real_seg
from simreal.experiments.um_synthesis import run_um_synthesis

SCALES = ("smoke", "small", "full")

EXPERIMENTS = {
    "baseline": run_baseline,
    "cinematic-ft": run_cinematic_ft,
    "depth-recipes": run_depth_recipes,
    "reverse-da": run_reverse_da,
    "sim2real-laparoscopy": run_sim2real_laparoscopy,
    "sim2real-seg": run_sim2real_seg,
    "um-synthesis": run_um_synthesis,
}

__all__ = ["EXPERIMENTS", "SCALES"]
