"""The training look's compiled last step (render/compose.py) gives the bytes of the numpy formulas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from simreal.render.colonoscopy import sample_frame_params
from simreal.render.config import ColonoscopyConfig, PolypViewConfig
from simreal.render.raycast import MeshScene, cast_camera
from simreal.render.shading import LUT_SIZE, gamma_lut, lighting, shade
from simreal.render.tube import tube_mesh


def _shade_numpy(geo, p, polyp_class=1):
    """The training look as whole-image float32 numpy (what compose_rgb replaced), for comparison."""
    f32 = np.float32
    h, w = geo.depth.shape
    light = lighting(geo, p)
    vessel = geo.vessel * f32(p.vessel_strength)
    polyp = geo.mask == polyp_class
    noise = None
    if p.noise_std > 0:
        noise = np.random.default_rng(p.noise_seed).standard_normal((3, h, w), dtype=f32)
        noise *= f32(p.noise_std)
    lut = gamma_lut(float(p.gamma))
    out = np.empty((h, w, 3), np.uint8)
    scale = f32(LUT_SIZE - 1)
    for c in range(3):
        base, dark, vcol = f32(p.base_rgb[c]), f32(p.dark_rgb[c]), f32(p.vessel_rgb[c])
        albedo = geo.mottle * (dark - base)
        albedo += base
        albedo += (vcol - albedo) * vessel
        albedo[polyp] *= f32(p.polyp_tint[c])
        albedo *= light.diffuse
        albedo += light.spec
        if noise is not None:
            albedo += noise[c]
        albedo *= scale
        np.clip(albedo, 0.0, scale, out=albedo)
        out[..., c] = lut[albedo.astype(np.uint16)]
    out[~geo.hit] = 0
    return out


@pytest.mark.parametrize("noise", [True, False])
def test_compiled_shading_equals_the_numpy_formulas(noise):
    # Open tube ends in view (misses) and polyp views (tinted pixels).
    mesh = tube_mesh(radius=12.0, length=120.0, segments=48, rings=24, polyps=((60.0, 90.0, 4.0),))
    scene = MeshScene(mesh)
    cfg = ColonoscopyConfig(polyp_view=PolypViewConfig(prob=0.5))
    seen_polyp = seen_miss = False
    for i in range(6):
        p = sample_frame_params(np.random.default_rng(np.random.SeedSequence([4, i])), mesh, cfg)
        if not noise:
            p = dataclasses.replace(p, shading=dataclasses.replace(p.shading, noise_std=0.0))
        geo = cast_camera(scene, p.camera(40))
        seen_polyp |= bool((geo.mask == 1).any())
        seen_miss |= bool((~geo.hit).any())
        assert shade(geo, p.shading).tobytes() == _shade_numpy(geo, p.shading).tobytes(), i
    assert seen_polyp and seen_miss
