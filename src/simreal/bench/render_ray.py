"""Ray beside local processes: the same colonoscopy job rendered by W local worker processes and by W
Ray workers of a local Ray instance, in one run, with the byte comparison of the two datasets.

Both go through :func:`~simreal.render.run.render_colon_dataset` (the one frame runner), so the figures
are what ``simreal render colon --workers W`` and ``simreal render colon --ray --workers W`` give. The
Ray instance is started before its timing (its start-up is reported on its own): on a cluster it is
started once, not once per dataset.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ExecutorRun:
    """One timed render.

    Attributes:
        executor: "processes" or "ray".
        workers: local processes or Ray workers.
        n: frames.
        wall_s: the whole call (workers' start-up and scene building included).
        frames_per_s: n / wall_s.
        steady_frames_per_s: frames/s after the first 10% of the frames (start-up excluded).
    """

    executor: str
    workers: int
    n: int
    wall_s: float
    frames_per_s: float
    steady_frames_per_s: float


@dataclass(frozen=True)
class RayBench:
    """Ray beside processes.

    Attributes:
        runs: the processes run, then the Ray run.
        ray_start_s: seconds to start the local Ray instance (not in the Ray run's time).
        identical: whether the two datasets are the same bytes, file for file.
    """

    runs: tuple[ExecutorRun, ...]
    ray_start_s: float
    identical: bool


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def bench_render_ray(*, n: int = 100, size: int = 256, workers: int = 2, seed: int = 0) -> RayBench:
    """Render ``n`` frames of ``size`` x ``size`` with ``workers`` local processes, then with ``workers``
    Ray workers on a local Ray instance of ``workers`` CPUs, and compare the bytes.

    Args:
        n: frames per run (>= 10 for a steady figure).
        size: image size in pixels.
        workers: processes, and Ray workers.
        seed: dataset seed (and procedural colon seed).
    """
    from simreal.anatomy.mesh import save_mesh
    from simreal.render.ray_executor import RayCluster, connect
    from simreal.render.run import load_anatomy, render_colon_dataset

    with tempfile.TemporaryDirectory(prefix="simreal-bench-ray-") as tmp:
        tmp_path = Path(tmp)
        mesh, _ = load_anatomy(None, seed)
        anatomy = save_mesh(mesh, tmp_path / "anatomy.ply")  # built once, not inside the timings

        def timed(executor: str, **kw) -> ExecutorRun:
            stamps: list[float] = []
            t0 = time.perf_counter()
            render_colon_dataset(tmp_path / executor, n=n, size=size, seed=seed, anatomy=anatomy, workers=workers,
                                 progress=False, on_frame=lambda i, t: stamps.append(time.perf_counter()), **kw)
            wall = time.perf_counter() - t0
            k = max(1, n // 10)
            steady = (n - k) / max(stamps[-1] - stamps[k - 1], 1e-9) if n > k else n / wall
            return ExecutorRun(executor=executor, workers=workers, n=n, wall_s=wall, frames_per_s=n / wall,
                               steady_frames_per_s=steady)

        local = timed("processes")
        t0 = time.perf_counter()
        with connect(RayCluster(num_cpus=workers)):
            started = time.perf_counter() - t0
            on_ray = timed("ray", ray="local")
        identical = _tree(tmp_path / "processes") == _tree(tmp_path / "ray")
    return RayBench(runs=(local, on_ray), ray_start_s=started, identical=identical)
