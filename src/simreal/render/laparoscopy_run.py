"""Render a laparoscopy dataset folder: sample, render and write frames, in parallel, resumably.

Frame ``i`` belongs to scene ``s = i // frames_per_scene``, which shows liver ``s % K`` of the K livers
and is drawn from ``np.random.SeedSequence([seed, 0x5CE7E, s])``; the frame itself (camera, tools,
appearance) is drawn from ``SeedSequence([seed, i])``. So a dataset's bytes do not depend on the number of
workers, their order, or on being interrupted and resumed. Workers are separate processes (spawned: no
fork after Embree's threads exist); each gets the prepared livers once and renders whole scenes, so frames
of one scene share its built geometry. ``dataset.json`` records the resolved
:class:`~simreal.render.laparoscopy_config.LaparoscopyJob` (``generator.job``) and every liver
(``generator.livers``: path, sha256, the transform into the liver frame).

Example:
    >>> job = LaparoscopyJob(n=100, size=256, livers=("meshGT.obj",))             # doctest: +SKIP
    >>> render_laparoscopy_job("renders/lap", job, workers=2)                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from simreal.anatomy.abdomen_classes import LAPAROSCOPY_CLASSES
from simreal.anatomy.liver import LiverModel, read_liver
from simreal.data.format import DatasetInfo, LabelKind
from simreal.data.writer import DatasetWriter, write_sample_record
from simreal.errors import SimrealError
from simreal.render.laparoscopy import LaparoscopyRenderer
from simreal.render.laparoscopy_config import LAPAROSCOPY_GENERATOR, LaparoscopyConfig, LaparoscopyJob
from simreal.render.laparoscopy_scene import PreparedLiver
from simreal.render.parallel import FrameHook, run_frames, sample_id


#: The liver meshes rendered when a job names none: P2ILF's, in the real-data folder.
DEFAULT_LIVERS = ("p2ilf_laparoscopic_liver/meshGT.obj", "p2ilf_laparoscopic_liver/patient2_3d-liver-model.obj")

#: Scene seeds: ``SeedSequence([seed, SCENE_STREAM, scene])``.
SCENE_STREAM = 0x5CE7E


def default_livers() -> tuple[str, ...]:
    """The P2ILF liver meshes in the real-data folder (absolute paths).

    Raises:
        SimrealError: no real-data folder, or it lacks the meshes (then give livers explicitly).
    """
    from simreal.data.real_data import real_data_root

    try:
        root = real_data_root()
    except SimrealError as exc:
        raise SimrealError(f"no liver mesh given and the default P2ILF meshes cannot be found ({exc}); "
                           "pass --liver MESH") from None
    paths = [root / p for p in DEFAULT_LIVERS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise SimrealError("no liver mesh given and the default P2ILF mesh is missing; pass --liver MESH", missing[0])
    return tuple(str(p.resolve()) for p in paths)


def resolve_job(job: LaparoscopyJob) -> LaparoscopyJob:
    """The job said explicitly: liver paths absolute, the default livers named when none are given."""
    livers = tuple(str(Path(p).resolve()) for p in job.livers) if job.livers else default_livers()
    return dataclasses.replace(job, livers=livers)


def load_livers(paths: Sequence[str | Path], orientation: str = "auto") -> list[LiverModel]:
    """Read every liver (:func:`~simreal.anatomy.liver.read_liver`); names (file stems) must be distinct.

    Raises:
        SimrealError: a missing or bad mesh (naming it), or two livers with one name.
    """
    if not paths:
        raise SimrealError("no liver meshes given")
    livers = [read_liver(p, orientation=orientation) for p in paths]  # type: ignore[arg-type]
    names = [liv.name for liv in livers]
    if len(set(names)) != len(names):
        raise SimrealError(f"livers must have distinct names (file stems), got {names}")
    return livers


def laparoscopy_dataset_info(
    size: int | tuple[int, int], *, normals: bool = True, generator: dict[str, Any] | None = None,
    seed: int | None = None, domain: str = "synthetic",
) -> DatasetInfo:
    """What ``dataset.json`` says about a set of laparoscopy frames (for writing your own, too).

    Returns:
        DatasetInfo (modality "laparoscopy") with depth (mm), the 8-class mask, tool instances and normals.

    Example:
        >>> laparoscopy_dataset_info(64).labels["mask"].classes[7]
        'gallbladder'
    """
    h, w = (size, size) if isinstance(size, int) else size
    files = ("image", "depth") + (("normals",) if normals else ()) + ("mask", "instance")
    labels = {
        "depth": LabelKind(unit="mm", description="z-depth along the optical axis, 0 = nothing seen"),
        "mask": LabelKind(classes=dict(LAPAROSCOPY_CLASSES),
                          description="Pfeiffer et al.'s 8 classes as ids (3 = diaphragm / abdominal wall); "
                                      "0 = background (outside the field stop)"),
        "instance": LabelKind(description="tool id (1, 2, ...) on tool shaft and tip pixels, 0 = none"),
    }
    if normals:
        labels["normals"] = LabelKind(description="unit shading normals, camera frame (x right, y down, z forward)")
    return DatasetInfo(modality="laparoscopy", domain=domain, image_size=(h, w), files=files, labels=labels,
                       generator=json.loads(json.dumps(generator or {})), seed=seed)


# --- per-process state ------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _init_worker(livers: list[PreparedLiver], root: str, job: LaparoscopyJob) -> None:
    renderer = LaparoscopyRenderer(livers, job.config, cache=1)
    _WORKER.update(renderer=renderer, root=Path(root), job=job, scenes={})


def _render_one(index: int) -> tuple[int, dict[str, float]]:
    w = _WORKER
    job: LaparoscopyJob = w["job"]
    renderer: LaparoscopyRenderer = w["renderer"]
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    s = index // job.frames_per_scene
    scenes: dict[int, Any] = w["scenes"]
    if s not in scenes:
        scenes.clear()
        rng = np.random.default_rng(np.random.SeedSequence([job.seed, SCENE_STREAM, s]))
        scenes[s] = renderer.sample_scene(rng, s % len(renderer.livers))
    params = renderer.sample(np.random.default_rng(np.random.SeedSequence([job.seed, index])), scene=scenes[s],
                             scene_index=s)
    t1 = time.perf_counter()
    frame = renderer.render(params, job.size, timings=timings)
    t2 = time.perf_counter()
    group = renderer.livers[params.scene.liver_index].name
    write_sample_record(w["root"], frame.record(sample_id(index), group=group), frame.arrays())
    timings["sample_ms"] = (t1 - t0) * 1e3
    timings["write_ms"] = (time.perf_counter() - t2) * 1e3
    return index, timings


def render_laparoscopy_job(
    out_dir: str | Path,
    job: LaparoscopyJob,
    *,
    workers: int = 1,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    ray: Any = None,
) -> Path:
    """Render a :class:`LaparoscopyJob` into the dataset folder ``out_dir``.

    Files per frame: ``image`` (RGB PNG), ``depth`` (float32 TIFF, mm), ``normals`` (float32 TIFF, camera
    frame; unless ``job.config.normals`` is False), ``mask`` (PNG, class ids 0..7), ``instance`` (PNG, tool
    ids). Each record holds the Camera (intrinsics + camera-to-world pose), every drawn parameter
    (``LaparoscopyFrameParams.to_dict()``: the scene, the tools with their tool-to-world poses, the shading)
    and the liver's name as its group.

    Args:
        out_dir: the dataset folder to create; must not exist. Work happens in ``out_dir.partial``; an
            interrupted run leaves it there and the same call resumes it.
        job: what to render.
        workers: processes rendering in parallel (>= 1; 1 renders in this process). The bytes do not depend on it.
        progress: show a progress bar on stderr.
        on_frame: called in this process after each frame with (index, timings in ms).
        ray: render in Ray actors on this cluster instead of local processes (a
            :class:`~simreal.render.ray_executor.RayCluster` or an address, as :func:`simreal.render.run.render_job`);
            ``workers`` then counts Ray workers. The same bytes, resume and atomicity.

    Returns:
        ``out_dir``, complete.

    Raises:
        SimrealError: bad arguments, a missing or bad liver mesh, existing or unwritable output, no Ray cluster
            at the address; nothing is created in those cases.
    """
    out_dir = Path(out_dir)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SimrealError(f"workers must be at least 1, got {workers}")
    if ray is not None:
        from simreal.render.ray_executor import as_cluster, check_reachable

        ray = as_cluster(ray)
        check_reachable(ray)  # before anything is created
    if not isinstance(job, LaparoscopyJob):
        raise SimrealError(f"job must be a LaparoscopyJob, got {type(job).__name__}")
    if out_dir.exists():
        raise SimrealError("output folder already exists; choose a new one or remove it", out_dir)
    job = resolve_job(job)
    livers = load_livers(job.livers, job.orientation)
    generator = {"name": LAPAROSCOPY_GENERATOR, "job": job.to_dict(), "livers": [liv.info() for liv in livers]}
    writer = DatasetWriter(out_dir, laparoscopy_dataset_info(job.size, normals=job.config.normals,
                                                             generator=generator, seed=job.seed))
    try:
        prepared = [PreparedLiver(liv) for liv in livers]
        todo = [i for i in range(job.n) if not writer.has(sample_id(i))]
        # Whole scenes per task, so a worker builds each scene's geometry once.
        by_scene: dict[int, list[int]] = {}
        for i in todo:
            by_scene.setdefault(i // job.frames_per_scene, []).append(i)
        scenes = list(by_scene.values())
        per_task = max(1, min(8, len(todo) // (workers * 8 * job.frames_per_scene) or 1))
        tasks = [sum(scenes[k : k + per_task], []) for k in range(0, len(scenes), per_task)]
        run_frames(tasks, total=job.n, writer=writer, init_worker=_init_worker,
                   init_args=(prepared, str(writer.root), job), render_one=_render_one, teardown=_WORKER.clear,
                   workers=workers, progress=progress, on_frame=on_frame, ray=ray)
    except BaseException:
        writer.close()  # finished frames stay in .partial for a resume
        raise
    return writer.finish(expected_ids=[sample_id(i) for i in range(job.n)])


def render_laparoscopy_dataset(
    out_dir: str | Path,
    *,
    n: int,
    size: int,
    seed: int,
    livers: Sequence[str | Path] = (),
    frames_per_scene: int = 1,
    workers: int = 1,
    config: LaparoscopyConfig | None = None,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    ray: Any = None,
) -> Path:
    """Render ``n`` labelled laparoscopy frames into ``out_dir`` (keyword form of :func:`render_laparoscopy_job`).

    Example:
        >>> render_laparoscopy_dataset("out", n=100, size=256, seed=0, livers=["meshGT.obj"])  # doctest: +SKIP
    """
    job = LaparoscopyJob(n=n, size=size, seed=seed, livers=tuple(str(p) for p in livers),
                         frames_per_scene=frames_per_scene, config=config if config is not None else LaparoscopyConfig())
    return render_laparoscopy_job(out_dir, job, workers=workers, progress=progress, on_frame=on_frame, ray=ray)
