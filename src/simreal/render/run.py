"""Render a colonoscopy dataset folder: sample, render and write frames, in parallel, resumably.

Frame ``i`` draws its parameters from ``np.random.SeedSequence([seed, i])`` and renders anatomy ``i % K``
of the K anatomies, so a dataset's bytes do not depend on the number of workers, their order, or on being
interrupted and resumed. Workers are separate processes; each receives the K meshes once and builds their
Embree scenes in its initializer. ``dataset.json`` records the whole :class:`~simreal.render.job.RenderJob`
(``generator.job``) and every anatomy (``generator.anatomies``: path + sha256, or generator + seed).

Example:
    >>> render_colon_dataset("renders/colon", n=1000, size=256, seed=0, workers=2)   # doctest: +SKIP
    >>> render_colon_dataset("renders/four", n=1000, size=256, seed=0, colons=[1, 2, 3, 4])  # doctest: +SKIP
    >>> render_job("renders/again", read_render_job("renders/four/dataset.json"))  # doctest: +SKIP
    >>> render_colon_dataset("renders/ray", n=1000, size=256, seed=0, ray="local")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from simreal.anatomy.mesh import AnatomyMesh, load_mesh
from simreal.data.format import DatasetInfo, LabelKind
from simreal.data.writer import DatasetWriter, partial_dir, write_sample_record
from simreal.errors import SimrealError
from simreal.render.colonoscopy import MASK_CLASSES, ColonoscopyRenderer, Frame
from simreal.render.config import ColonoscopyConfig
from simreal.render.job import GENERATOR_NAME, RenderJob
from simreal.render.parallel import FrameHook, chunks, run_frames, sample_id
from simreal.render.raycast import Visibility

if TYPE_CHECKING:  # pragma: no cover
    from simreal.render.ray_executor import RayCluster


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


def colonoscopy_dataset_info(
    size: int | tuple[int, int], *, normals: bool = True, generator: dict[str, Any] | None = None,
    seed: int | None = None, domain: str = "synthetic",
) -> DatasetInfo:
    """What ``dataset.json`` says about a set of colonoscopy frames (for writing your own, too).

    Args:
        size: S or (H, W) pixels of every frame.
        normals: whether the samples carry normals files.
        generator: what made the frames and how (JSON-able), e.g. ``{"name": "my-script", ...}``.
        seed: the seed the frames were drawn with, if any.
        domain: the image domain.

    Returns:
        DatasetInfo with the colonoscopy label kinds (depth mm, polyp mask, instances, normals).

    Example:
        >>> info = colonoscopy_dataset_info(128, generator={"name": "my-script"})
        >>> info.files
        ('image', 'depth', 'normals', 'mask', 'instance')
    """
    h, w = (size, size) if isinstance(size, int) else size
    files = ("image", "depth") + (("normals",) if normals else ()) + ("mask", "instance")
    labels = {
        "depth": LabelKind(unit="mm", description="z-depth along the optical axis, 0 = no surface"),
        "mask": LabelKind(classes=dict(MASK_CLASSES), description="1 = polyp, 0 = mucosa or no surface"),
        "instance": LabelKind(description="polyp instance id, 0 = none"),
    }
    if normals:
        labels["normals"] = LabelKind(description="unit shading normals, camera frame (x right, y down, z forward)")
    return DatasetInfo(
        modality="colonoscopy", domain=domain, image_size=(h, w), files=files, labels=labels,
        generator=json.loads(json.dumps(generator or {})), seed=seed,
    )


def dataset_info(job: RenderJob, anatomy_info: list[dict[str, Any]]) -> DatasetInfo:
    """What ``dataset.json`` says about a rendered job: ``generator.job`` is the resolved job (read back by
    :func:`~simreal.render.job.read_render_job`), ``generator.anatomies`` describes each anatomy (frame i
    renders ``anatomies[i % K]``, also recorded as the frame's ``params["anatomy_index"]``)."""
    generator = {"name": GENERATOR_NAME, "job": job.to_dict(), "anatomies": anatomy_info}
    # The realistic look is a different image domain (the target of domain adaptation), same labels.
    domain = "synthetic-realistic" if job.config.look == "realistic" else "synthetic"
    return colonoscopy_dataset_info(job.size, normals=job.config.normals, generator=generator, seed=job.seed,
                                    domain=domain)


# --- per-process state: one mesh scene per worker -------------------------------------------------------

_WORKER: dict[str, Any] = {}


def build_renderers(anatomies: Sequence[Anatomy], job: RenderJob) -> list[tuple[ColonoscopyRenderer, str]]:
    """(renderer, group) of each anatomy with its Embree scene built: what :func:`render_indexed_frame` takes."""
    renderers = []
    for a in anatomies:
        renderer = ColonoscopyRenderer(a.mesh, job.config, visibility=job.visibility)
        renderer.scene  # noqa: B018 - build the Embree scene now, not inside the first frame's timing
        renderers.append((renderer, a.group))
    return renderers


def _init_worker(anatomies: list[Anatomy], root: str, job: RenderJob) -> None:
    # Every scene is built once per worker and kept: frames cycle through the anatomies.
    _WORKER.update(renderers=build_renderers(anatomies, job), root=Path(root), job=job)


def render_indexed_frame(
    renderers: Sequence[tuple[ColonoscopyRenderer, str]], job: RenderJob, index: int,
    timings: dict[str, float] | None = None,
) -> tuple[Frame, str]:
    """Frame ``index`` of a job, exactly as the dataset holds it: parameters drawn from
    ``SeedSequence([job.seed, index])`` on anatomy ``index % K``, then rendered.

    Args:
        renderers: (renderer, group) of the job's K anatomies, in order (:func:`load_anatomies`).
        job: the resolved job.
        index: frame index (>= 0; frames past ``job.n`` continue the same sequence).
        timings: filled with the stages' milliseconds, when given.

    Returns:
        (the frame, its anatomy's group).
    """
    t0 = time.perf_counter()
    k = index % len(renderers)
    renderer, group = renderers[k]
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, index]))
    params = dataclasses.replace(renderer.sample(rng), anatomy_index=k)
    t1 = time.perf_counter()
    frame = renderer.render(params, job.size, timings=timings)
    if timings is not None:
        timings["sample_ms"] = (t1 - t0) * 1e3
    return frame, group


def _render_one(index: int) -> tuple[int, dict[str, float]]:
    w = _WORKER
    timings: dict[str, float] = {}
    frame, group = render_indexed_frame(w["renderers"], w["job"], index, timings)
    t2 = time.perf_counter()
    write_sample_record(w["root"], frame.record(sample_id(index), group=group), frame.arrays())
    timings["write_ms"] = (time.perf_counter() - t2) * 1e3
    return index, timings


def render_job(
    out_dir: str | Path,
    job: RenderJob,
    *,
    workers: int | None = None,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    ray: "RayCluster | str | None" = None,
) -> Path:
    """Render a :class:`~simreal.render.job.RenderJob` into the dataset folder ``out_dir``.

    Files per frame: ``image`` (RGB PNG), ``depth`` (float32 TIFF, mm), ``normals`` (float32 TIFF, camera
    frame; unless ``job.config.normals`` is False), ``mask`` (PNG, 1 = polyp), ``instance`` (PNG). Each
    record holds the Camera (intrinsics + pose), every drawn parameter (``FrameParams.to_dict()``) and the
    anatomy's group (``colon-<seed>`` or the PLY stem). ``dataset.json`` records the resolved job.

    Args:
        out_dir: the dataset folder to create; must not exist. Work happens in ``out_dir.partial``; an
            interrupted run leaves it there and the same call resumes it.
        job: what to render.
        workers: processes rendering in parallel (>= 1; None or 1 renders in this process); with ``ray``,
            Ray workers (None: one per CPU of the cluster). The bytes do not depend on it.
        progress: show a rich progress bar (frames/s, ETA) on stderr.
        on_frame: called in this process after each frame with (index, timings in ms).
        ray: render on this Ray cluster instead of local processes
            (:class:`~simreal.render.ray_executor.RayCluster`, or an address: ``"local"`` starts one on
            this machine, ``"auto"``, ``"HOST:PORT"``); the same bytes, resume and atomicity. Every node
            must see ``out_dir``'s parent at the same path.

    Returns:
        ``out_dir``, complete.

    Raises:
        SimrealError: bad arguments, missing or corrupt anatomy, existing or unwritable output, no Ray
            cluster at the address; nothing is created in those cases.
    """
    out_dir = Path(out_dir)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SimrealError(f"workers must be at least 1, got {workers}")
    if ray is not None:
        from simreal.render.ray_executor import as_cluster, check_reachable

        ray = as_cluster(ray)
        check_reachable(ray)
    if not isinstance(job, RenderJob):
        raise SimrealError(f"job must be a RenderJob, got {type(job).__name__}")
    if out_dir.exists():
        raise SimrealError("output folder already exists; choose a new one or remove it", out_dir)
    job = job.resolved()
    anatomies = load_anatomies(job.anatomy or None, job.colons or None, job.seed)
    resuming = partial_dir(out_dir).exists()
    writer = DatasetWriter(out_dir, dataset_info(job, [a.info for a in anatomies]))
    ids = [sample_id(i) for i in range(job.n)]
    todo = [i for i in range(job.n) if not writer.has(sample_id(i))]
    try:
        # With Ray and no worker count the cluster's size is known only once connected: 8-frame tasks then.
        run_frames(chunks(todo, workers or 1), total=job.n, writer=writer, init_worker=_init_worker,
                   init_args=(anatomies, str(writer.root), job), render_one=_render_one, teardown=_WORKER.clear,
                   workers=workers if workers is not None or ray is not None else 1, progress=progress,
                   on_frame=on_frame, ray=ray)
    except BaseException as exc:
        if isinstance(exc, SimrealError) and not resuming and not writer.done_ids:
            writer.abort()  # failed before its first frame (e.g. a Ray cluster too small): leave nothing
        else:
            writer.close()  # keep the finished frames and release the lock: the same call resumes, even here
        raise
    return writer.finish(expected_ids=ids)


def render_colon_dataset(
    out_dir: str | Path,
    *,
    n: int,
    size: int,
    seed: int,
    anatomy: str | Path | Sequence[str | Path] | None = None,
    colons: Sequence[int] | None = None,
    workers: int | None = None,
    config: ColonoscopyConfig | None = None,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    ray: "RayCluster | str | None" = None,
    visibility: Visibility = "raster",
) -> Path:
    """Render ``n`` labelled colonoscopy frames into the dataset folder ``out_dir`` (keyword form of
    :func:`render_job`).

    Args:
        out_dir: the dataset folder to create; must not exist (an interrupted run resumes).
        n: number of frames (>= 1).
        size: square image size in pixels (8..4096).
        seed: dataset seed (>= 0).
        anatomy: a simreal anatomy PLY, or several.
        colons: seeds of procedural colons ``make_colon(s)``. With both ``anatomy`` and ``colons`` None the
            set renders ``make_colon(seed)``. Frame i renders anatomy ``i % K`` (PLYs first, then colons).
        workers: processes rendering in parallel (>= 1; None: 1), or Ray workers with ``ray``.
        config: the randomisation ranges (default :class:`ColonoscopyConfig`).
        progress: show a progress bar on stderr.
        on_frame: called in this process after each frame with (index, timings in ms).
        ray: render on a Ray cluster (see :func:`render_job`).
        visibility: how each pixel's first hit is found (:attr:`RenderJob.visibility`).

    Returns:
        ``out_dir``, complete.

    Example:
        >>> render_colon_dataset("out", n=100, size=256, seed=0, colons=[1, 2, 3], workers=2)  # doctest: +SKIP
    """
    if anatomy is not None and not isinstance(anatomy, (str, Path)) and not list(anatomy):
        raise SimrealError("anatomy: empty list of anatomy files")
    if colons is not None and not list(colons):
        raise SimrealError("colons: empty list of colon seeds")
    paths = () if anatomy is None else (anatomy,) if isinstance(anatomy, (str, Path)) else tuple(anatomy)
    job = RenderJob(n=n, size=size, seed=seed, anatomy=paths, colons=tuple(colons or ()),
                    config=config if config is not None else ColonoscopyConfig(), visibility=visibility)
    return render_job(out_dir, job, workers=workers, progress=progress, on_frame=on_frame, ray=ray)
