"""Cinematic rendering speed: seconds per frame, and simreal's overhead over a bare Mitsuba render.

For each device and spp the benchmark renders the same frame (one view of the CT phantom under one
condition) two ways, alternating so both see the same machine load:

* **bare**: ``mi.render(scene, spp=spp, seed=s)`` of the identical scene dict
  (:meth:`~simreal.render.cinematic.CinematicRenderer.scene_dict`) loaded once, plus reading the image
  back into numpy (without it drjit may not have run the kernel);
* **simreal**: :meth:`~simreal.render.cinematic.CinematicRenderer.render`, the whole frame: a sensor for
  the camera, the camera-relative lights moved, the same Mitsuba render, the Embree ray cast for depth
  and mask, auto-exposure and 8-bit encoding (writing the files is timed separately).

Scene building (medium grids, boundary mesh, Mitsuba ``load_dict``) happens once per condition in both
and is excluded from the per-frame figures (it is amortised over a condition's views); the first frame
of each (kernel compilation) is reported on its own and not timed in the medians.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class CinematicBench:
    """Timings of one device and spp (medians over the timed frames, seconds).

    Attributes:
        device: ``"cpu"`` or ``"cuda"``.
        variant: the Mitsuba variant.
        threads: render threads (drjit's LLVM pool; 0 on CUDA).
        size: image side, pixels.
        spp: samples per pixel.
        frames: frames timed per way.
        scene_s: building and loading the condition's scene (once per condition, not per frame).
        first_s: the first simreal frame (kernel compilation included).
        bare_s: a bare ``mi.render`` + readback.
        simreal_s: simreal's full frame (no file writing).
        write_s: encoding and writing the frame's files (PNG, TIFF).
    """

    device: str
    variant: str
    threads: int
    size: int
    spp: int
    frames: int
    scene_s: float
    first_s: float
    bare_s: float
    simreal_s: float
    write_s: float

    @property
    def overhead(self) -> float:
        """simreal's frame time over the bare render's (the goal is <= 1.10)."""
        return self.simreal_s / self.bare_s if self.bare_s > 0 else float("nan")


def devices_present() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when drjit finds a GPU."""
    from simreal.render.cinematic_scene import _cuda_available

    return ["cpu"] + (["cuda"] if _cuda_available() else [])


def bench_cinematic(
    *,
    size: int = 256,
    spp: tuple[int, ...] = (4, 16),
    frames: int = 3,
    devices: tuple[str, ...] | None = None,
    phantom_seed: int = 3,
    phantom_length_mm: float = 150.0,
    seed: int = 0,
) -> tuple[str, list[CinematicBench]]:
    """Time cinematic frames of the CT phantom (endoluminal view, condition 0 of ``seed``).

    Args:
        size: image side, pixels.
        spp: the samples-per-pixel counts to measure.
        frames: timed frames per way (after one untimed warm-up each).
        devices: ``"cpu"`` / ``"cuda"``; default every device present.
        phantom_seed, phantom_length_mm: the phantom colon rendered.
        seed: the dataset seed the view and condition are drawn with.

    Returns:
        (a description of the scene, one :class:`CinematicBench` per device and spp).
    """
    import mitsuba as mi

    from simreal.data.writer import write_sample_files
    from simreal.render.cinematic import CinematicConfig, CinematicRenderer
    from simreal.render.cinematic_run import condition_rng, view_rng
    from simreal.render.cinematic_scene import select_variant, thread_count
    from simreal.render.cinematic_source import phantom_source

    t0 = time.perf_counter()
    source = phantom_source(phantom_seed, length_mm=phantom_length_mm)
    build_s = time.perf_counter() - t0
    out = []
    for device in devices or tuple(devices_present()):
        variant = select_variant(device)
        renderer = CinematicRenderer(source, CinematicConfig(), device=device)
        view = renderer.sample_view(view_rng(seed, 0))
        cond = renderer.sample_condition(condition_rng(seed, 0), 0)
        for s in spp:
            t0 = time.perf_counter()
            scene = mi.load_dict(renderer.scene_dict(view, cond, size, s))
            scene_s = time.perf_counter() - t0
            np.array(mi.render(scene, spp=s, seed=0))  # warm-up: kernels compiled
            t0 = time.perf_counter()
            renderer._scene_key = None  # noqa: SLF001 - time the first frame from scratch
            renderer.render(view, cond, size=size, spp=s, seed=0)
            first_s = time.perf_counter() - t0
            bare, full, write = [], [], []
            with tempfile.TemporaryDirectory(prefix="simreal-bench-cine-") as tmp:
                for i in range(1, frames + 1):
                    t0 = time.perf_counter()
                    np.array(mi.render(scene, spp=s, seed=i))
                    bare.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    frame = renderer.render(view, cond, size=size, spp=s, seed=i)
                    full.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    write_sample_files(Path(tmp), f"{i:06d}", frame.arrays())
                    write.append(time.perf_counter() - t0)
            out.append(CinematicBench(
                device=device, variant=variant, threads=thread_count() if device == "cpu" else 0, size=size, spp=s,
                frames=frames, scene_s=scene_s, first_s=first_s, bare_s=float(np.median(bare)),
                simreal_s=float(np.median(full)), write_s=float(np.median(write)),
            ))
            del scene
    g = source.hu.shape
    scene_text = (f"CT phantom of procedural colon {phantom_seed} ({phantom_length_mm:g} mm, built in {build_s:.1f} s): "
                  f"{g[0]}x{g[1]}x{g[2]} medium grid, lumen mesh {len(source.lumen.faces)} triangles, endoluminal "
                  f"view, {cond.transfer.name} + {cond.lighting.kind}, volpath max_depth {renderer.config.max_depth}")
    return scene_text, out
