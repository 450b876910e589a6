"""Render a colonoscopy dataset folder: sample, render and write frames, in parallel, resumably.

Frame ``i`` draws its parameters from ``np.random.SeedSequence([seed, i])``, so a dataset's bytes do not
depend on the number of workers, their order, or on being interrupted and resumed. Workers are separate
processes; each receives the mesh once and builds its own Embree scene in its initializer.

Example:
    >>> render_colon_dataset("renders/colon", n=1000, size=256, seed=0, workers=2)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh, load_mesh
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter, write_sample_record
from simreal.errors import SimrealError
from simreal.render.colonoscopy import (
    MASK_CLASSES,
    ColonoscopyConfig,
    camera_from_params,
    render_frame,
    sample_frame_params,
)

GENERATOR_NAME = "colonoscopy-forward-model"

#: Called in the main process after each finished frame with (frame index, timings in ms).
FrameHook = Callable[[int, dict[str, float]], None]


def sample_id(index: int) -> str:
    """Zero-padded id (and file stem) of frame ``index``."""
    return f"{index:06d}"


def load_anatomy(anatomy: str | Path | None, seed: int) -> tuple[AnatomyMesh, dict[str, Any]]:
    """The mesh to render and how dataset.json describes it.

    Args:
        anatomy: a simreal anatomy PLY, or None for the procedural colon ``make_colon(seed)``.
        seed: the dataset seed (also the procedural colon's seed).

    Returns:
        (mesh, JSON-able description: path + sha256 of the file, or the generator + seed).
    """
    if anatomy is not None:
        path = Path(anatomy)
        mesh = load_mesh(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return mesh, {"path": str(path.resolve()), "sha256": digest, "metadata": mesh.metadata}
    try:
        from simreal.anatomy.colon import make_colon
    except ImportError:
        raise SimrealError("the procedural colon (simreal.anatomy.colon) is not available; pass --anatomy") from None
    mesh = make_colon(seed)
    return mesh, {"generator": "simreal.anatomy.colon.make_colon", "seed": seed, "metadata": mesh.metadata}


def dataset_info(size: int, seed: int, config: ColonoscopyConfig, anatomy_info: dict[str, Any]) -> DatasetInfo:
    """What ``dataset.json`` says about a rendered colonoscopy set."""
    files = ("image", "depth") + (("normals",) if config.normals else ()) + ("mask", "instance")
    labels = {
        "depth": LabelKind(unit="mm", description="z-depth along the optical axis, 0 = no surface"),
        "mask": LabelKind(classes=dict(MASK_CLASSES), description="1 = polyp, 0 = mucosa or no surface"),
        "instance": LabelKind(description="polyp instance id, 0 = none"),
    }
    if config.normals:
        labels["normals"] = LabelKind(description="unit shading normals, camera frame (x right, y down, z forward)")
    generator = json.loads(json.dumps({"name": GENERATOR_NAME, "config": config.to_dict(), "anatomy": anatomy_info}))
    return DatasetInfo(
        modality="colonoscopy", domain="synthetic", image_size=(size, size), files=files, labels=labels,
        generator=generator, seed=seed,
    )


# --- per-process state: one mesh scene per worker -------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(
    mesh: AnatomyMesh, root: str, seed: int, size: int, config: ColonoscopyConfig, ignore_sigint: bool
) -> None:
    from scipy.spatial import cKDTree

    from simreal.render.raycast import MeshScene

    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    _WORKER.update(
        scene=MeshScene(mesh), kdtree=cKDTree(mesh.vertices), normals=mesh.vertex_normals(), mesh=mesh,
        root=Path(root), seed=seed, size=size, config=config,
    )


def _render_one(index: int) -> tuple[int, dict[str, float]]:
    w = _WORKER
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    rng = np.random.default_rng(np.random.SeedSequence([w["seed"], index]))
    params = sample_frame_params(rng, w["mesh"], w["config"], kdtree=w["kdtree"], vertex_normals=w["normals"])
    t1 = time.perf_counter()
    arrays = render_frame(w["scene"], params, w["size"], normals=w["config"].normals, timings=timings)
    t2 = time.perf_counter()
    record = SampleRecord(id=sample_id(index), files={}, camera=camera_from_params(params, w["size"]), params=params)
    write_sample_record(w["root"], record, arrays)
    timings["sample_ms"] = (t1 - t0) * 1e3
    timings["write_ms"] = (time.perf_counter() - t2) * 1e3
    return index, timings


def render_colon_dataset(
    out_dir: str | Path,
    *,
    n: int,
    size: int,
    seed: int,
    anatomy: str | Path | None = None,
    workers: int = 1,
    config: ColonoscopyConfig | None = None,
    progress: bool = True,
    on_frame: FrameHook | None = None,
) -> Path:
    """Render ``n`` labelled colonoscopy frames into the dataset folder ``out_dir``.

    Files per frame: ``image`` (RGB PNG), ``depth`` (float32 TIFF, mm), ``normals`` (float32 TIFF, camera
    frame; unless ``config.normals`` is False), ``mask`` (PNG, 1 = polyp), ``instance`` (PNG). Each record
    holds the Camera (intrinsics + pose) and every drawn parameter.

    Args:
        out_dir: the dataset folder to create; must not exist. Work happens in ``out_dir.partial``; an
            interrupted run leaves it there and the same call resumes it.
        n: number of frames (>= 1).
        size: square image size in pixels (8..4096).
        seed: dataset seed (>= 0).
        anatomy: a simreal anatomy PLY; None renders ``make_colon(seed)``.
        workers: processes rendering in parallel (>= 1; 1 renders in this process).
        config: the randomisation ranges (default :class:`ColonoscopyConfig`).
        progress: show a rich progress bar (frames/s, ETA) on stderr.
        on_frame: called in this process after each frame with (index, timings in ms).

    Returns:
        ``out_dir``, complete.

    Raises:
        SimrealError: bad arguments, missing or corrupt anatomy, existing or unwritable output; nothing
            is created in those cases.
    """
    out_dir = Path(out_dir)
    if n < 1:
        raise SimrealError(f"--n must be at least 1, got {n}")
    if not 8 <= size <= 4096:
        raise SimrealError(f"--size must be in 8..4096 pixels, got {size}")
    if workers < 1:
        raise SimrealError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise SimrealError(f"--seed must be >= 0, got {seed}")
    if out_dir.exists():
        raise SimrealError("output folder already exists; choose a new one or remove it", out_dir)
    config = config or ColonoscopyConfig()
    mesh, anatomy_info = load_anatomy(anatomy, seed)
    writer = DatasetWriter(out_dir, dataset_info(size, seed, config, anatomy_info))
    ids = [sample_id(i) for i in range(n)]
    todo = [i for i in range(n) if not writer.has(sample_id(i))]
    _run_frames(todo, n, mesh, writer, seed, size, config, workers, progress, on_frame)
    return writer.finish(expected_ids=ids)


def _run_frames(
    todo: list[int], n: int, mesh: AnatomyMesh, writer: DatasetWriter, seed: int, size: int,
    config: ColonoscopyConfig, workers: int, progress: bool, on_frame: FrameHook | None,
) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[fps]:.1f} frames/s"), TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("render", total=n, completed=n - len(todo), fps=0.0)
        start, done = time.perf_counter(), 0

        def finished(index: int, timings: dict[str, float]) -> None:
            nonlocal done
            writer.mark_done(sample_id(index))
            done += 1
            bar.update(task, advance=1, fps=done / max(time.perf_counter() - start, 1e-9))
            if on_frame is not None:
                on_frame(index, timings)

        args = (mesh, str(writer.root), seed, size, config)
        if workers == 1 or len(todo) <= 1:
            _init_worker(*args, ignore_sigint=False)
            try:
                for i in todo:
                    finished(*_render_one(i))
            finally:
                _WORKER.clear()
            return
        ctx = multiprocessing.get_context("spawn")  # no fork after Embree / TBB threads exist
        pool = ctx.Pool(min(workers, len(todo)), initializer=_init_worker, initargs=(*args, True))
        try:
            chunk = max(1, min(8, len(todo) // (workers * 8)))
            for result in pool.imap_unordered(_render_one, todo, chunksize=chunk):
                finished(*result)
            pool.close()
            pool.join()
        finally:
            pool.terminate()
