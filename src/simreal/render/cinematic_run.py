"""Render a cinematic dataset folder: N camera views of one patient, each under K rendering conditions.

Frame ``v * K + k`` shows view ``v`` under condition ``k``. View ``v`` is drawn from
``SeedSequence([seed, 0x71E, v])``, condition ``k`` from ``SeedSequence([seed, 0xC0D, k])``, and the
frame's Monte Carlo seed is ``SeedSequence([seed, v, k])``'s first word, so a dataset's bytes depend only
on its :class:`CinematicJob` (and the Mitsuba variant), not on being interrupted and resumed. Frames are
rendered condition by condition (one Mitsuba scene per condition, kept loaded); Mitsuba itself uses every
core, so there is one render process.

Files per frame: ``image`` (RGB PNG), ``depth`` (float32 TIFF, z in mm, 0 = no surface), and ``mask``
(PNG, 1 = the source's mask class: the phantom's polyps, or the chosen label in external views) with
``instance`` (PNG, polyp instance ids) when the source has them. Each record's ``params`` hold the view,
the whole condition (preset, jittered transfer function, lights, exposure, gamma), spp and seed; its
``group`` names the patient. ``dataset.json`` records the whole job (``generator.job``) and the source
(CT files with sha256, or the phantom's seed).

Example:
    >>> job = CinematicJob(phantom_seed=3, n=4, conditions=3, spp=16, size=128)             # doctest: +SKIP
    >>> render_cinematic_dataset("renders/cine", job)                                       # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import numpy as np

from simreal.data.format import DatasetInfo, LabelKind
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError
from simreal.render.cinematic import CinematicConfig, CinematicRenderer
from simreal.render.cinematic_source import MAX_VOXELS, CinematicSource, load_ct_source, phantom_source
from simreal.render.parallel import FrameHook, sample_id

#: ``generator.name`` of datasets written by :func:`render_cinematic_dataset`.
GENERATOR_NAME = "cinematic-renderer"



@dataclass(frozen=True)
class CinematicJob:
    """Everything a cinematic dataset depends on.

    Args:
        n: camera views (>= 1); the dataset holds ``n * conditions`` frames.
        conditions: rendering conditions per view (>= 1).
        spp: Monte Carlo samples per pixel (1..65536).
        size: square image size, pixels (8..4096).
        seed: dataset seed (>= 0).
        ct: CT volume (NIfTI file or DICOM series folder), or None for a phantom.
        labels: segmentation on the CT's grid (NIfTI or DICOM series), or None.
        label: the organ in ``labels`` (name or id): endoluminal views fly through its lumen, external
            views mask it.
        label_map: JSON ``{"id": "name"}`` for ``label`` (default: TotalSegmentator v2).
        phantom_seed: render the CT phantom of procedural colon ``phantom_seed`` instead of a CT.
        phantom_voxel_mm: the phantom's voxel size, mm.
        phantom_length_mm: the phantom colon's length, mm (None: drawn from its seed).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        margin_mm: crop margin around the lumen / body, mm.
        max_voxels: largest medium grid (bigger crops are resampled).
        config: view, presets, lights and the ranges conditions and views are drawn from.

    Raises:
        SimrealError: values out of range, or not exactly one of ``ct`` and ``phantom_seed``.
    """

    n: int = 8
    conditions: int = 4
    spp: int = 16
    size: int = 128
    seed: int = 0
    ct: str | None = None
    labels: str | None = None
    label: str | None = None
    label_map: str | None = None
    phantom_seed: int | None = None
    phantom_voxel_mm: float = 1.0
    phantom_length_mm: float | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    margin_mm: float = 10.0
    max_voxels: int = MAX_VOXELS
    config: CinematicConfig = field(default_factory=CinematicConfig)

    def __post_init__(self) -> None:
        problems = []
        for name, lo, hi in (("n", 1, 100_000), ("conditions", 1, 10_000), ("spp", 1, 65536), ("size", 8, 4096),
                             ("seed", 0, 2**63), ("max_voxels", 512, 2**31)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                problems.append(f"{name}: expected an integer, got {v!r}")
            elif not lo <= v <= hi:
                problems.append(f"{name}: must be in {lo}..{hi}, got {v}")
        if (self.ct is None) == (self.phantom_seed is None):
            problems.append("give a CT (--ct) or a phantom (--phantom-seed), not both or neither")
        if self.phantom_seed is not None and (isinstance(self.phantom_seed, bool) or not isinstance(self.phantom_seed, int)
                                              or self.phantom_seed < 0):
            problems.append(f"phantom_seed: expected an integer >= 0, got {self.phantom_seed!r}")
        if self.phantom_seed is not None and (self.labels is not None or self.label is not None):
            problems.append("a phantom brings its own labels: --labels / --label go with --ct")
        if not 0.2 <= float(self.phantom_voxel_mm) <= 10.0:
            problems.append(f"phantom_voxel_mm: must be in [0.2, 10], got {self.phantom_voxel_mm}")
        if self.phantom_length_mm is not None and not 20.0 <= float(self.phantom_length_mm) <= 2000.0:
            problems.append(f"phantom_length_mm: must be in [20, 2000], got {self.phantom_length_mm}")
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f"device: must be auto, cpu or cuda, got {self.device!r}")
        if not 0.0 <= float(self.margin_mm) <= 500.0:
            problems.append(f"margin_mm: must be in [0, 500], got {self.margin_mm}")
        if not isinstance(self.config, CinematicConfig):
            problems.append(f"config: expected a CinematicConfig, got {type(self.config).__name__}")
        if problems:
            raise SimrealError("; ".join(problems))

    def resolved(self) -> "CinematicJob":
        """File paths made absolute: what ``dataset.json`` records."""
        def absolute(p: str | None) -> str | None:
            return None if p is None else str(Path(p).resolve())

        return dataclasses.replace(self, ct=absolute(self.ct), labels=absolute(self.labels),
                                   label_map=absolute(self.label_map))

    def to_dict(self) -> dict[str, Any]:
        from simreal.configs import to_plain

        return to_plain(self)

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any], *, source: str | Path | None = None) -> "CinematicJob":
        from simreal.configs import build

        return build(cls, mapping, source=source)

    @property
    def n_frames(self) -> int:
        return self.n * self.conditions


def load_source(job: CinematicJob) -> CinematicSource:
    """The patient a job renders (reads and checks the CT, or builds the phantom)."""
    view = job.config.view
    if job.phantom_seed is not None:
        overrides = {} if job.phantom_length_mm is None else {"length_mm": float(job.phantom_length_mm)}
        return phantom_source(job.phantom_seed, view=view, voxel_mm=float(job.phantom_voxel_mm),
                              margin_mm=float(job.margin_mm), max_voxels=job.max_voxels, **overrides)
    assert job.ct is not None
    return load_ct_source(job.ct, view=view, labels=job.labels, label=job.label, label_map=job.label_map,
                          margin_mm=float(job.margin_mm), max_voxels=job.max_voxels)


def view_rng(seed: int, v: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 0x71E, v]))


def condition_rng(seed: int, k: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, 0xC0D, k]))


def render_seed(seed: int, v: int, k: int) -> int:
    """The Monte Carlo seed of view ``v`` under condition ``k`` (32 bits)."""
    return int(np.random.SeedSequence([seed, v, k]).generate_state(1, dtype=np.uint32)[0])


def cinematic_dataset_info(job: CinematicJob, source: CinematicSource) -> DatasetInfo:
    """What ``dataset.json`` says about a cinematic job: label kinds, and the job and source as generator."""
    files = ("image", "depth")
    labels = {"depth": LabelKind(unit="mm", description="z-depth along the optical axis to the first surface "
                                                       "(the lumen wall / iso-surface), 0 = no surface")}
    if source.has_mask:
        files += ("mask",)
        labels["mask"] = LabelKind(classes={0: "background", 1: source.mask_name},
                                   description=f"1 = {source.mask_name} seen as the first surface")
        if source.has_instances:
            files += ("instance",)
            labels["instance"] = LabelKind(description=f"{source.mask_name} instance id, 0 = none")
    size = job.size
    generator = {"name": GENERATOR_NAME, "job": job.to_dict(), "source": source.info, "group": source.name,
                 "frames": "frame v * conditions + k = view v under condition k"}
    import json

    return DatasetInfo(
        modality="colonoscopy" if job.config.view == "endoluminal" else "image", domain="cinematic",
        image_size=(size, size), files=files, labels=labels, generator=json.loads(json.dumps(generator)),
        seed=job.seed,
    )


def render_cinematic_dataset(
    out_dir: str | Path,
    job: CinematicJob,
    *,
    progress: bool = True,
    on_frame: FrameHook | None = None,
) -> Path:
    """Render a :class:`CinematicJob` into the dataset folder ``out_dir`` (resumable).

    Bad input (unreadable or NaN CT, a volume too small, a label missing from the segmentation, unknown
    presets, missing LLVM, no GPU for ``device="cuda"``) raises before anything is created. Work happens
    in ``out_dir.partial``; an interrupted run leaves the finished frames there and the same call resumes.

    Args:
        out_dir: the dataset folder to create (must not exist).
        job: what to render.
        progress: show a progress bar on stderr.
        on_frame: called after each frame with (index, timings in ms).

    Returns:
        ``out_dir``, complete.
    """
    from simreal.render.cinematic_scene import select_variant

    out_dir = Path(out_dir)
    if not isinstance(job, CinematicJob):
        raise SimrealError(f"job must be a CinematicJob, got {type(job).__name__}")
    if out_dir.exists():
        raise SimrealError("output folder already exists; choose a new one or remove it", out_dir)
    job = job.resolved()
    source = load_source(job)
    renderer = CinematicRenderer(source, job.config, device=job.device)
    select_variant(renderer.device)  # a missing LLVM / GPU fails here, before any folder exists
    views = [renderer.sample_view(view_rng(job.seed, v)) for v in range(job.n)]
    conditions = [renderer.sample_condition(condition_rng(job.seed, k), k) for k in range(job.conditions)]
    writer = DatasetWriter(out_dir, cinematic_dataset_info(job, source))
    ids = [sample_id(i) for i in range(job.n_frames)]
    try:
        _render_frames(renderer, views, conditions, writer, job, source.name, progress, on_frame)
    except BaseException:
        writer.close()  # finished frames stay in out_dir.partial: the same call resumes
        raise
    return writer.finish(expected_ids=ids)


def _render_frames(renderer: CinematicRenderer, views: list, conditions: list, writer: DatasetWriter,
                   job: CinematicJob, group: str, progress: bool, on_frame: FrameHook | None) -> None:
    from simreal.progress import progress_bar

    k_total = job.conditions
    todo = [(k, v) for k in range(k_total) for v in range(job.n) if not writer.has(sample_id(v * k_total + k))]
    with progress_bar("rendering", job.n_frames, enabled=progress, completed=job.n_frames - len(todo),
                      unit="frame") as bar:
        for k, v in todo:
            timings: dict[str, float] = {}
            frame = renderer.render(views[v], conditions[k], size=job.size, spp=job.spp,
                                    seed=render_seed(job.seed, v, k), timings=timings)
            params = {"view_index": v, "condition_index": k, **frame.params}
            frame = dataclasses.replace(frame, params=params)
            t0 = time.perf_counter()
            index = v * k_total + k
            writer.write(frame.record(sample_id(index), group=group), frame.arrays())
            timings["write_ms"] = (time.perf_counter() - t0) * 1e3
            bar.advance()
            if on_frame is not None:
                on_frame(index, timings)
