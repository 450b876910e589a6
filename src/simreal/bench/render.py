"""Rendering throughput: colonoscopy frames/s with 1..W workers, memory over the run, time per stage.

Each measurement renders a real dataset folder (sample, cast, shade, encode + write every file) into a
temporary directory with :func:`~simreal.render.run.render_colon_dataset`, so the figure is what a user
gets from ``simreal render colon``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _rss_mb(pid: int | str = "self") -> float:
    """Current resident set size of a process (default this one) in MiB (Linux /proc; 0 elsewhere or
    when the process has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _cpu_s(pid: int | str = "self") -> float:
    """User + system CPU seconds a process has used so far (Linux /proc; 0 elsewhere or when gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _all_cpu_s() -> float:
    """CPU seconds of this process and its live multiprocessing children (the render workers)."""
    return _cpu_s() + sum(_cpu_s(p.pid) for p in multiprocessing.active_children() if p.pid is not None)


def _workers_rss_mb() -> float:
    """Summed RSS (MiB) of this process's live multiprocessing children (the render workers)."""
    return float(sum(_rss_mb(p.pid) for p in multiprocessing.active_children() if p.pid is not None))


@dataclass(frozen=True)
class RenderRun:
    """One timed render.

    Attributes:
        workers: processes used.
        visibility: how first hits were found (``"embree"`` or ``"raster"``).
        n: frames rendered.
        wall_s: wall time of the whole call (process start-up and mesh preparation included).
        frames_per_s: n / wall_s.
        steady_frames_per_s: frames/s between the first 10% and the last frame (start-up excluded).
        stage_ms: mean per-frame milliseconds (wall) of each stage inside a worker: sample, cast (of it:
            rays, hit, surface), shade, write.
        cpu_ms_per_frame: CPU time (user + system) of this process and its worker processes per frame,
            between the first 10% and the last frame (start-up excluded): what a frame costs a core
            whatever else shares the machine; ``1000 * cores / cpu_ms_per_frame`` is about the frames/s
            that many quiet cores reach.
        rss_mb: this (parent) process's RSS (MiB) after 10%, 50% and 100% of the frames; with 1 worker the
            rendering happens in this process.
        workers_rss_mb: with > 1 worker, the summed RSS (MiB) of the worker processes at the same
            moments (empty for 1 worker).
        peak_rss_mb: peak RSS (MiB) of this process, and of the largest worker process for > 1 worker.
    """

    workers: int
    n: int
    wall_s: float
    frames_per_s: float
    steady_frames_per_s: float
    stage_ms: dict[str, float] = field(default_factory=dict)
    cpu_ms_per_frame: float = 0.0
    rss_mb: tuple[float, ...] = ()
    workers_rss_mb: tuple[float, ...] = ()
    peak_rss_mb: float = 0.0
    visibility: str = "raster"


def bench_render(
    *,
    n: int = 200,
    size: int = 256,
    workers: tuple[int, ...] = (1, 2),
    seed: int = 0,
    anatomy: Path | None = None,
    normals: bool = True,
    visibility: tuple[str, ...] = ("raster",),
) -> tuple[str, list[RenderRun]]:
    """Render ``n`` frames of ``size`` x ``size`` once per visibility backend and worker count, and time it.

    Args:
        n: frames per measurement (>= 10 for a steady-state figure).
        size: image size in pixels.
        workers: worker counts to measure.
        seed: dataset seed.
        anatomy: a mesh PLY; default the procedural colon ``make_colon(seed)``, built once before timing
            and passed to every render as a temporary PLY (so building it is not timed).
        normals: also write the normals files (the costliest file to encode).
        visibility: first-hit backends to measure (:data:`~simreal.render.raycast.VISIBILITIES`), each
            with every worker count, in one process one after the other (side by side on the same machine).

    Returns:
        (description of the scene, one RenderRun per backend and worker count, backends outer).
    """
    from simreal.render.colonoscopy import ColonoscopyConfig
    from simreal.render.run import load_anatomy, render_colon_dataset

    with tempfile.TemporaryDirectory(prefix="simreal-bench-render-") as tmp:
        tmp_path = Path(tmp)
        if anatomy is None:
            from simreal.anatomy.mesh import save_mesh

            mesh, _ = load_anatomy(None, seed)
            name = "procedural colon"
            # Built once here; otherwise every timed render_colon_dataset call would rebuild it.
            anatomy = save_mesh(mesh, tmp_path / "anatomy.ply")
        else:
            mesh, _ = load_anatomy(anatomy, seed)
            name = Path(anatomy).name
        scene = f"{name}, {len(mesh.faces)} triangles"
        runs = []
        for vis, w in ((vis, w) for vis in visibility for w in workers):
            stamps: list[float] = []
            stages: dict[str, list[float]] = {}
            rss: list[float] = []
            workers_rss: list[float] = []
            cpu: list[float] = []
            marks = {max(1, n // 10), max(1, n // 2), n}

            def on_frame(index: int, timings: dict[str, float]) -> None:
                stamps.append(time.perf_counter())
                for k, v in timings.items():
                    stages.setdefault(k, []).append(v)
                if len(stamps) in (max(1, n // 10), n):
                    cpu.append(_all_cpu_s())
                if len(stamps) in marks:
                    rss.append(_rss_mb())
                    if w > 1:
                        workers_rss.append(_workers_rss_mb())

            t0 = time.perf_counter()
            render_colon_dataset(
                tmp_path / f"{vis}-w{w}", n=n, size=size, seed=seed, anatomy=anatomy, workers=w, progress=False,
                on_frame=on_frame, config=ColonoscopyConfig(normals=normals), visibility=vis,
            )
            wall = time.perf_counter() - t0
            k = max(1, n // 10)
            steady = (n - k) / max(stamps[-1] - stamps[k - 1], 1e-9) if n > k else n / wall
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
            if w > 1:
                peak = max(peak, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0)
            runs.append(
                RenderRun(
                    workers=w, n=n, wall_s=wall, frames_per_s=n / wall, steady_frames_per_s=steady,
                    stage_ms={k: float(np.mean(v)) for k, v in sorted(stages.items())},
                    cpu_ms_per_frame=(cpu[-1] - cpu[0]) / (n - k) * 1e3 if n > k and len(cpu) == 2 else 0.0,
                    rss_mb=tuple(rss), workers_rss_mb=tuple(workers_rss), peak_rss_mb=peak, visibility=vis,
                )
            )
    return scene, runs
