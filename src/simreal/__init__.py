"""simreal: deep learning with synthetic medical images.

The package is laid out as the pipeline it implements::

    anatomy -> render -> data (the dataset folder contract) -> train (tasks, nets) -> metrics -> experiments

The names below are importable from ``simreal`` itself and load their module on first use, so
``import simreal`` stays cheap and works without a renderer installed.

Example:
    >>> import numpy as np, simreal
    >>> colon = simreal.procedural_colon(seed=3)                                   # doctest: +SKIP
    >>> renderer = simreal.ColonoscopyRenderer(colon, simreal.ColonoscopyConfig())  # doctest: +SKIP
    >>> frame = renderer.render(renderer.sample(np.random.default_rng(0)), size=256)  # doctest: +SKIP
    >>> simreal.render_colon_dataset("out", n=100, size=256, seed=0, colons=[1, 2, 3])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from simreal.errors import SimrealError

#: Public name -> (module, attribute), imported on first access.
_LAZY: dict[str, tuple[str, str]] = {
    # anatomy
    "AnatomyMesh": ("simreal.anatomy.mesh", "AnatomyMesh"),
    "procedural_colon": ("simreal.anatomy.colon", "make_colon"),
    "load_mesh": ("simreal.anatomy.mesh", "load_mesh"),
    "save_mesh": ("simreal.anatomy.mesh", "save_mesh"),
    "mesh_from_ct": ("simreal.anatomy.from_ct", "mesh_from_ct"),
    # render
    "ColonoscopyConfig": ("simreal.render.config", "ColonoscopyConfig"),
    "LensConfig": ("simreal.render.config", "LensConfig"),
    "PoseConfig": ("simreal.render.config", "PoseConfig"),
    "PolypViewConfig": ("simreal.render.config", "PolypViewConfig"),
    "AppearanceConfig": ("simreal.render.config", "AppearanceConfig"),
    "RealismConfig": ("simreal.render.config", "RealismConfig"),
    "ColonoscopyRenderer": ("simreal.render.colonoscopy", "ColonoscopyRenderer"),
    "Frame": ("simreal.render.colonoscopy", "Frame"),
    "FrameParams": ("simreal.render.colonoscopy", "FrameParams"),
    "RenderJob": ("simreal.render.job", "RenderJob"),
    "read_render_job": ("simreal.render.job", "read_render_job"),
    "render_job": ("simreal.render.run", "render_job"),
    "render_colon_dataset": ("simreal.render.run", "render_colon_dataset"),
    "colonoscopy_dataset_info": ("simreal.render.run", "colonoscopy_dataset_info"),
    "LaparoscopyRenderer": ("simreal.render.laparoscopy", "LaparoscopyRenderer"),
    "LaparoscopyConfig": ("simreal.render.laparoscopy_config", "LaparoscopyConfig"),
    "LaparoscopyJob": ("simreal.render.laparoscopy_config", "LaparoscopyJob"),
    "render_laparoscopy_job": ("simreal.render.laparoscopy_run", "render_laparoscopy_job"),
    "read_liver": ("simreal.anatomy.liver", "read_liver"),
    "CinematicRenderer": ("simreal.render.cinematic", "CinematicRenderer"),
    "CinematicConfig": ("simreal.render.cinematic", "CinematicConfig"),
    "CinematicJob": ("simreal.render.cinematic_run", "CinematicJob"),
    "render_cinematic_dataset": ("simreal.render.cinematic_run", "render_cinematic_dataset"),
    "make_ct_phantom": ("simreal.anatomy.ct_phantom", "make_ct_phantom"),
    # the dataset folder
    "Camera": ("simreal.data.format", "Camera"),
    "DatasetInfo": ("simreal.data.format", "DatasetInfo"),
    "SampleRecord": ("simreal.data.format", "SampleRecord"),
    "DatasetWriter": ("simreal.data.writer", "DatasetWriter"),
    "DatasetReader": ("simreal.data.reader", "DatasetReader"),
    "validate_dataset": ("simreal.data.reader", "validate_dataset"),
    "write_dataset": ("simreal.data.writer", "write_dataset"),
    # train, predict, evaluate
    "make_train_config": ("simreal.tasks.config", "make_config"),
    "TrainConfig": ("simreal.tasks.config", "TrainConfig"),
    "train": ("simreal.tasks.train", "train"),
    "predict": ("simreal.tasks.predict", "predict"),
    "evaluate_depth": ("simreal.metrics.evaluate", "evaluate_depth"),
    "evaluate_seg": ("simreal.metrics.evaluate", "evaluate_seg"),
    "compare_rows": ("simreal.metrics.compare", "compare_rows"),
    "group_summary": ("simreal.metrics.stats", "group_summary"),
    "paired_group_comparison": ("simreal.metrics.stats", "paired_group_comparison"),
    "compare_image_sets": ("simreal.metrics.fid", "compare_image_sets"),
}

__all__ = ["SimrealError", "__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'simreal' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
