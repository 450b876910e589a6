"""Colonoscopy frames rendered on the fly, as torch datasets: training draws fresh frames without writing
them, and frame ``i`` is the very frame ``simreal render colon`` writes as sample ``i`` for the same job.

Both datasets render through :func:`~simreal.render.run.render_indexed_frame`, the function the disk
path renders with (parameters from ``SeedSequence([seed, i])`` on anatomy ``i % K``), and return the
:class:`~simreal.data.torch_dataset.Sample` that :class:`~simreal.data.torch_dataset.SimrealDataset`
returns for the written sample: same image, depth, mask, camera and id, so
:func:`~simreal.data.torch_dataset.collate_samples` and the task trainers' batches are the same.

- :class:`RenderedColonDataset` (map-style): item ``i`` is frame ``indices[i]`` (default ``range(job.n)``);
  any sampler or split works, and ``indices`` past ``job.n`` continue the same sequence of frames.
- :class:`RenderedColonStream` (iterable): frames ``start, start + 1, ...`` (endless by default), split
  between the DataLoader's workers (and, given ``rank`` / ``world_size``, between training processes)
  so that no frame is drawn twice.

The anatomies are loaded when the dataset is made (bad input fails at once, in the main process); the
Embree scenes are built in each process on its first frame. Use ``multiprocessing_context="spawn"`` in
a DataLoader whose main process has rendered frames itself: Embree's threads do not survive a fork.

Example:
    >>> from torch.utils.data import DataLoader
    >>> from simreal.data.torch_dataset import collate_samples
    >>> ds = RenderedColonDataset(RenderJob(n=10_000, size=128, seed=0, colons=(1, 2, 3)), kinds=("depth",))
    >>> loader = DataLoader(ds, batch_size=8, shuffle=True, num_workers=2, collate_fn=collate_samples,
    ...                     multiprocessing_context="spawn")                      # doctest: +SKIP
    >>> stream = RenderedColonStream("renders/colon/dataset.json", kinds=("mask",), start=10_000)  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from simreal.data.format import SampleRecord
from simreal.data.torch_dataset import Sample, make_sample
from simreal.errors import SimrealError
from simreal.render.job import RenderJob, read_render_job

if TYPE_CHECKING:  # pragma: no cover
    from simreal.render.colonoscopy import Frame

__all__ = ["ColonFrames", "RenderedColonDataset", "RenderedColonStream", "stream_indices"]


class ColonFrames:
    """Frames of a :class:`~simreal.render.job.RenderJob` by index, rendered in this process on demand.

    Args:
        job: the job, or a job file / rendered ``dataset.json`` (:func:`~simreal.render.job.read_render_job`).
        kinds: labels a :class:`Sample` carries besides the image ("depth", "mask").
        size: (H, W) a :class:`Sample` is resized to, or None for ``job.size``.
        mask_map: stored class id -> training id (as :class:`~simreal.data.torch_dataset.SimrealDataset`).

    Raises:
        SimrealError: a bad job, missing or corrupt anatomy, or an unknown kind.
    """

    def __init__(self, job: RenderJob | str | Path, kinds: Sequence[str] = (), size: tuple[int, int] | None = None,
                 mask_map: dict[int, int] | None = None):
        from simreal.render.run import load_anatomies

        job = job if isinstance(job, RenderJob) else read_render_job(job)
        self.job = job.resolved()
        self._set_options(kinds, size, mask_map)
        self.anatomies = load_anatomies(self.job.anatomy or None, self.job.colons or None, self.job.seed)
        self._renderers: list[Any] | None = None
        self._pid = -1

    def view(self, kinds: Sequence[str] = (), size: tuple[int, int] | None = None,
             mask_map: dict[int, int] | None = None) -> "ColonFrames":
        """The same frames (and the anatomies already loaded, and scenes already built) as Samples of
        other ``kinds`` / ``size`` / ``mask_map``."""
        other = copy.copy(self)
        ColonFrames._set_options(other, kinds, size, mask_map)
        return other

    def _set_options(self, kinds: Sequence[str], size: tuple[int, int] | None, mask_map: dict[int, int] | None) -> None:
        unknown = [k for k in kinds if k not in ("depth", "mask")]
        if unknown:
            raise SimrealError(f"kinds must be 'depth' and/or 'mask', got {unknown}")
        self.kinds = tuple(kinds)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.mask_map = mask_map

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_renderers"], state["_pid"] = None, -1  # Embree scenes stay in their process
        return state

    def _scenes(self) -> list[Any]:
        if self._renderers is None or self._pid != os.getpid():
            from simreal.render.run import build_renderers

            self._renderers, self._pid = build_renderers(self.anatomies, self.job), os.getpid()
        return self._renderers

    def frame(self, index: int) -> tuple["Frame", str]:
        """Frame ``index`` (>= 0) and its anatomy's group: what the disk path writes as sample ``index``."""
        from simreal.render.run import render_indexed_frame

        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise SimrealError(f"frame index must be an integer >= 0, got {index!r}")
        return render_indexed_frame(self._scenes(), self.job, int(index))

    def arrays(self, index: int) -> dict[str, np.ndarray]:
        """The files of sample ``index`` as arrays (kind -> array), exactly as a dataset folder holds them."""
        return self.frame(index)[0].arrays()

    def record(self, index: int) -> SampleRecord:
        """Sample ``index``'s record (camera, drawn params, group) without file names."""
        from simreal.render.parallel import sample_id

        frame, group = self.frame(index)
        return frame.record(sample_id(index), group=group)

    def sample(self, index: int) -> Sample:
        """Frame ``index`` as the :class:`Sample` a :class:`~simreal.data.torch_dataset.SimrealDataset` of
        the written set returns for it."""
        from simreal.render.parallel import sample_id

        frame, _ = self.frame(index)
        return make_sample(frame.image, camera=frame.camera, id=sample_id(index),
                           depth=frame.depth if "depth" in self.kinds else None,
                           mask=frame.mask if "mask" in self.kinds else None, size=self.size, mask_map=self.mask_map)


class RenderedColonDataset(Dataset):
    """A render job as a map-style ``Dataset`` of :class:`Sample`, rendered when an item is asked for.

    Items past ``len(self)`` are fresh frames for training that draws new frames every epoch (see
    :class:`~simreal.tasks.data.EpochSampler`'s ``fresh``): item ``r * len(self) + i`` is frame
    ``indices[i] + r * stride``, where ``stride`` is the smallest multiple of the job's anatomy count K that
    is >= the largest index + 1. So round ``r`` redraws every item on the same anatomy (a group split
    stays a group split) and never draws a frame of round 0, nor of the job's own ``n`` frames.

    Args:
        job, kinds, size, mask_map: as :class:`ColonFrames`; ``job`` may also be a :class:`ColonFrames`
            (its anatomies are shared, not loaded again).
        indices: the frames, in item order (default ``range(job.n)``); any integers >= 0.

    Example:
        >>> ds = RenderedColonDataset(RenderJob(n=100, size=64, seed=0), kinds=("depth", "mask"))  # doctest: +SKIP
        >>> ds[3].id, ds[3].depth.shape                                                          # doctest: +SKIP
        ('000003', torch.Size([1, 64, 64]))
    """

    def __init__(self, job: RenderJob | str | Path | ColonFrames, kinds: Sequence[str] = (),
                 size: tuple[int, int] | None = None, indices: Sequence[int] | None = None,
                 mask_map: dict[int, int] | None = None):
        if isinstance(job, ColonFrames):
            self.frames = job.view(kinds, size, mask_map)
        else:
            self.frames = ColonFrames(job, kinds, size, mask_map)
        self.indices = list(range(self.frames.job.n)) if indices is None else [int(i) for i in indices]
        if any(i < 0 for i in self.indices):
            raise SimrealError("indices must be >= 0")
        k = len(self.frames.anatomies)
        top = max([self.frames.job.n - 1, *self.indices])
        self.stride = k * (top // k + 1)

    def __len__(self) -> int:
        return len(self.indices)

    def frame_index(self, i: int) -> int:
        """The job's frame index behind item ``i`` (``i`` >= 0; past ``len(self)``: a fresh round)."""
        if i < 0:
            raise IndexError(f"item {i} of a dataset of {len(self)}")
        rounds, item = divmod(int(i), len(self.indices))
        return self.indices[item] + rounds * self.stride

    def __getitem__(self, i: int) -> Sample:
        return self.frames.sample(self.frame_index(i))


def stream_indices(start: int, stop: int | None, worker: int, workers: int, rank: int = 0,
                   world_size: int = 1) -> Iterator[int]:
    """Frame indices of DataLoader worker ``worker`` (of ``workers``) in process ``rank`` (of
    ``world_size``): every ``workers * world_size``-th frame of ``start, start + 1, ...`` (to ``stop``,
    exclusive; None: endless), so all shares together draw each frame once."""
    shards = workers * world_size
    first = start + rank * workers + worker
    return iter(range(first, stop, shards)) if stop is not None else itertools.count(first, shards)


class RenderedColonStream(IterableDataset):
    """Fresh frames of a render job, endlessly (or to ``stop``), as an ``IterableDataset`` of :class:`Sample`.

    Frame ``i`` is the job's frame ``i`` (:class:`RenderedColonDataset`); with ``start = job.n`` the stream
    draws only frames the written dataset does not hold. The DataLoader's workers share the frames
    (:func:`stream_indices`), and so do ``world_size`` training processes given their ``rank``.

    Args:
        job, kinds, size, mask_map: as :class:`ColonFrames`.
        start: the first frame index (>= 0).
        stop: one past the last (None: endless).
        rank, world_size: this training process and how many share the stream.
    """

    def __init__(self, job: RenderJob | str | Path, kinds: Sequence[str] = (), size: tuple[int, int] | None = None,
                 mask_map: dict[int, int] | None = None, *, start: int = 0, stop: int | None = None, rank: int = 0,
                 world_size: int = 1):
        if start < 0 or (stop is not None and stop < start):
            raise SimrealError(f"need 0 <= start <= stop, got start={start}, stop={stop}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise SimrealError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.frames = ColonFrames(job, kinds, size, mask_map)
        self.start, self.stop, self.rank, self.world_size = int(start), stop, int(rank), int(world_size)

    def __iter__(self) -> Iterator[Sample]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for index in stream_indices(self.start, self.stop, worker, workers, self.rank, self.world_size):
            yield self.frames.sample(index)
