"""Render: turn anatomy meshes into labelled image datasets (the fast Embree forward model).

Only this package imports a renderer (``embreex``), and only when a scene is built.

Pieces, in pipeline order: ``camera`` (rays for a Camera), ``raycast`` (Embree hits -> depth, normals,
labels), ``shading`` (endoscope light on mucosa -> RGB), ``colonoscopy`` (draw a frame's parameters, then
render them), ``run`` (write a whole dataset folder in parallel, resumably), ``tube`` (a closed-form test
scene).
"""

from simreal.render.colonoscopy import ColonoscopyConfig, camera_from_params, render_frame, sample_frame_params
from simreal.render.run import render_colon_dataset

__all__ = ["ColonoscopyConfig", "camera_from_params", "render_colon_dataset", "render_frame", "sample_frame_params"]
