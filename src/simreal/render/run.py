"""Render a colonoscopy dataset folder: sample, render and write frames, in parallel, resumably.

Frame ``i`` draws its parameters from ``np.random.SeedSequence([seed, i])`` and renders anatomy ``i % K``
of the K anatomies, so a dataset's bytes do not depend on the number of workers, their order, or on being
interrupted and resumed. Workers are separate processes; each receives the K meshes once and builds their
Embree scenes in its initializer.

Example:
    >>> render_colon_dataset("renders/colon", n=1000, size=256, seed=0, workers=2)   # doctest: +SKIP
    >>> render_colon_dataset("renders/four", n=1000, size=256, seed=0, colons=[1, 2, 3, 4])  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh, load_mesh
from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.data.writer import DatasetWriter, write_sample_record
from simreal.errors import SimrealError
from simreal.render.colonoscopy import (
    MASK_CLASSES,
    ColonoscopyConfig,
    camera_from_params,
    polyp_targets,
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
    from simreal.anatomy.colon import make_colon

    mesh = make_colon(seed)
    return mesh, {"generator": "simreal.anatomy.colon.make_colon", "seed": seed, "metadata": mesh.metadata}


def colon_seeds(seed: int, k: int) -> list[int]:
    """K distinct procedural-colon seeds derived from a dataset seed (what ``--colons K`` renders).

    Drawn from ``SeedSequence([seed, 0xC01])`` so datasets with different seeds get different colons
    (``seed + j`` would share colons between neighbouring seeds); in [0, 2**31).
    """
    if k < 1:
        raise SimrealError(f"--colons must be at least 1, got {k}")
    state = np.random.SeedSequence([seed, 0xC01]).generate_state(4 * k, dtype=np.uint32)
    out: list[int] = []
    for v in (int(x) >> 1 for x in state):
        if v not in out:
            out.append(v)
        if len(out) == k:
            return out
    raise SimrealError(f"could not derive {k} distinct colon seeds")  # pragma: no cover - 2**31 values


@dataclass(frozen=True)
class Anatomy:
    """One anatomy a dataset renders.

    Attributes:
        mesh: the surface.
        info: JSON-able description for dataset.json (path + sha256, or generator + seed).
        group: the sample records' ``group`` (``colon-<seed>`` or the PLY's stem), so splits keep anatomies apart.
    """

    mesh: AnatomyMesh
    info: dict[str, Any]
    group: str


def load_anatomies(
    anatomy: str | Path | Sequence[str | Path] | None, colons: Sequence[int] | None, seed: int
) -> list[Anatomy]:
    """The K anatomies of a dataset, in the order frames cycle through them (frame i uses ``i % K``).

    Args:
        anatomy: one anatomy PLY or several.
        colons: seeds of procedural colons ``make_colon(s)``.
        seed: the dataset seed: ``make_colon(seed)`` when both ``anatomy`` and ``colons`` are None.

    Returns:
        PLY anatomies first (in the given order), then the procedural colons.

    Raises:
        SimrealError: missing / corrupt PLY, negative or repeated colon seed, empty lists, two PLYs with
            the same stem (their groups would merge).
    """
    paths = [] if anatomy is None else [anatomy] if isinstance(anatomy, (str, Path)) else list(anatomy)
    seeds = None if colons is None else [int(c) for c in colons]
    if anatomy is not None and not paths:
        raise SimrealError("--anatomy: empty list of anatomy files")
    if seeds is not None:
        if not seeds:
            raise SimrealError("--colons: empty list of colon seeds")
        if min(seeds) < 0 or len(set(seeds)) != len(seeds):
            raise SimrealError(f"colon seeds must be distinct and >= 0, got {seeds}")
    if not paths and seeds is None:
        seeds = [seed]
    out = []
    for path in paths:
        mesh, info = load_anatomy(path, seed)
        out.append(Anatomy(mesh=mesh, info=info, group=Path(path).stem))
    for s in seeds or []:
        mesh, info = load_anatomy(None, s)
        out.append(Anatomy(mesh=mesh, info=info, group=f"colon-{s}"))
    groups = [a.group for a in out]
    if len(set(groups)) != len(groups):
        raise SimrealError(f"anatomies must have distinct names (file stems), got {groups}")
    return out


def dataset_info(
    size: int, seed: int, config: ColonoscopyConfig, anatomy_info: dict[str, Any] | list[dict[str, Any]]
) -> DatasetInfo:
    """What ``dataset.json`` says about a rendered colonoscopy set.

    ``generator.anatomies`` lists every anatomy (frame i renders ``anatomies[i % K]``, also recorded as the
    frame's ``params["anatomy_index"]``); ``generator.anatomy`` is the first, kept for single-anatomy readers.
    """
    infos = anatomy_info if isinstance(anatomy_info, list) else [anatomy_info]
    files = ("image", "depth") + (("normals",) if config.normals else ()) + ("mask", "instance")
    labels = {
        "depth": LabelKind(unit="mm", description="z-depth along the optical axis, 0 = no surface"),
        "mask": LabelKind(classes=dict(MASK_CLASSES), description="1 = polyp, 0 = mucosa or no surface"),
        "instance": LabelKind(description="polyp instance id, 0 = none"),
    }
    if config.normals:
        labels["normals"] = LabelKind(description="unit shading normals, camera frame (x right, y down, z forward)")
    generator = json.loads(json.dumps({
        "name": GENERATOR_NAME, "config": config.to_dict(), "anatomy": infos[0], "anatomies": infos,
    }))
    return DatasetInfo(
        modality="colonoscopy", domain="synthetic", image_size=(size, size), files=files, labels=labels,
        generator=generator, seed=seed,
    )


# --- per-process state: one mesh scene per worker -------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(
    anatomies: list[Anatomy], root: str, seed: int, size: int, config: ColonoscopyConfig, ignore_sigint: bool
) -> None:
    from scipy.spatial import cKDTree

    from simreal.render.raycast import MeshScene

    if ignore_sigint:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    # Every scene is built once per worker and kept: frames cycle through the anatomies.
    scenes = [
        dict(scene=MeshScene(a.mesh), kdtree=cKDTree(a.mesh.vertices), normals=a.mesh.vertex_normals(),
             mesh=a.mesh, group=a.group, targets=polyp_targets(a.mesh))
        for a in anatomies
    ]
    _WORKER.update(scenes=scenes, root=Path(root), seed=seed, size=size, config=config)


def _render_one(index: int) -> tuple[int, dict[str, float]]:
    w = _WORKER
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    k = index % len(w["scenes"])
    a = w["scenes"][k]
    rng = np.random.default_rng(np.random.SeedSequence([w["seed"], index]))
    params = sample_frame_params(
        rng, a["mesh"], w["config"], kdtree=a["kdtree"], vertex_normals=a["normals"], targets=a["targets"]
    )
    params["anatomy_index"] = k
    t1 = time.perf_counter()
    arrays = render_frame(a["scene"], params, w["size"], normals=w["config"].normals, timings=timings)
    t2 = time.perf_counter()
    record = SampleRecord(
        id=sample_id(index), files={}, camera=camera_from_params(params, w["size"]), params=params, group=a["group"]
    )
    write_sample_record(w["root"], record, arrays)
    timings["sample_ms"] = (t1 - t0) * 1e3
    timings["write_ms"] = (time.perf_counter() - t2) * 1e3
    return index, timings


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _render_one_chunk(indices: list[int]) -> list[tuple[int, dict[str, float]]]:
    return [_render_one(i) for i in indices]


def render_colon_dataset(
    out_dir: str | Path,
    *,
    n: int,
    size: int,
    seed: int,
    anatomy: str | Path | Sequence[str | Path] | None = None,
    colons: Sequence[int] | None = None,
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
        anatomy: a simreal anatomy PLY, or several.
        colons: seeds of procedural colons ``make_colon(s)``. With both ``anatomy`` and ``colons`` None the
            set renders ``make_colon(seed)``. Frame i renders anatomy ``i % K`` (PLYs first, then colons),
            records it in ``params["anatomy_index"]`` and in its record's ``group`` (``colon-<seed>`` or the
            PLY stem); dataset.json's ``generator.anatomies`` lists them all.
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
    anatomies = load_anatomies(anatomy, colons, seed)
    writer = DatasetWriter(out_dir, dataset_info(size, seed, config, [a.info for a in anatomies]))
    ids = [sample_id(i) for i in range(n)]
    todo = [i for i in range(n) if not writer.has(sample_id(i))]
    _run_frames(todo, n, anatomies, writer, seed, size, config, workers, progress, on_frame)
    return writer.finish(expected_ids=ids)


def _run_frames(
    todo: list[int], n: int, anatomies: list[Anatomy], writer: DatasetWriter, seed: int, size: int,
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

        args = (anatomies, str(writer.root), seed, size, config)
        if workers == 1 or len(todo) <= 1:
            _init_worker(*args, ignore_sigint=False)
            try:
                for i in todo:
                    finished(*_render_one(i))
            finally:
                _WORKER.clear()
            return
        ctx = multiprocessing.get_context("spawn")  # no fork after Embree / TBB threads exist
        # An executor, not multiprocessing.Pool: if a worker dies (killed, out of memory) the pool breaks
        # with an error instead of waiting forever for the frames it held.
        pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                   initargs=(*args, True))
        try:
            chunk = max(1, min(8, len(todo) // (workers * 8)))
            for result in pool.map(_render_one_chunk, _chunks(todo, chunk)):
                for item in result:
                    finished(*item)
        except BrokenProcessPool:
            raise SimrealError(
                "a render worker process died; finished frames are kept, rerun the same command to resume",
                writer.root,
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
