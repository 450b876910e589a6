"""Render: turn anatomy meshes into labelled image datasets (the fast Embree forward model).

Only this package imports a renderer (``embreex``), and only when a scene is built.

Pieces, in pipeline order: ``config`` (the ranges frames are drawn from), ``camera`` (rays for a Camera,
OpenCV pixel convention), ``raycast`` (Embree hits -> depth, normals, labels), ``shading`` (endoscope
light on mucosa -> RGB), ``colonoscopy`` (draw a frame's parameters, then render them;
:class:`ColonoscopyRenderer`), ``job`` (a whole render run as one config, read from YAML / TOML / JSON or
a rendered ``dataset.json``), ``run`` (write a dataset folder in parallel, resumably; ``ray_executor``: the
same on a Ray cluster), ``look`` (the realistic look's
image effects), ``tube`` (a closed-form test scene); ``laparoscopy*`` (the laparoscopic scene: liver,
gallbladder, fat, wall, ligament, tools) and ``cinematic*`` / ``transfer`` / ``lighting`` (Mitsuba path
tracing of CT volumes, imported only by the commands that need them).
"""

from simreal.render.colonoscopy import (
    ColonoscopyRenderer,
    Frame,
    FrameParams,
    Placement,
    camera_from_params,
    render_frame,
    sample_frame_params,
)
from simreal.render.config import (
    LOOKS,
    AppearanceConfig,
    ColonoscopyConfig,
    LensConfig,
    PolypViewConfig,
    PoseConfig,
    RealismConfig,
    override,
)
from simreal.render.job import RenderJob, read_render_job
from simreal.render.laparoscopy import LaparoscopyRenderer
from simreal.render.laparoscopy_config import LaparoscopyConfig, LaparoscopyJob, read_laparoscopy_job
from simreal.render.laparoscopy_run import render_laparoscopy_job
from simreal.render.look import RealismParams
from simreal.render.ray_executor import RayCluster
from simreal.render.run import colonoscopy_dataset_info, render_colon_dataset, render_job

__all__ = [
    "LOOKS",
    "AppearanceConfig",
    "ColonoscopyConfig",
    "ColonoscopyRenderer",
    "Frame",
    "FrameParams",
    "LaparoscopyConfig",
    "LaparoscopyJob",
    "LaparoscopyRenderer",
    "LensConfig",
    "Placement",
    "PolypViewConfig",
    "PoseConfig",
    "RayCluster",
    "RealismConfig",
    "RealismParams",
    "RenderJob",
    "camera_from_params",
    "colonoscopy_dataset_info",
    "override",
    "read_laparoscopy_job",
    "read_render_job",
    "render_colon_dataset",
    "render_frame",
    "render_job",
    "render_laparoscopy_job",
    "sample_frame_params",
]
