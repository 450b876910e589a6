"""Data for training: where the images come from (a dataset folder, or a render job rendered on the fly),
the validation split by group, the per-epoch data order, depth scale and class count."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from simreal.data.reader import DatasetReader
from simreal.data.render_dataset import RenderedColonDataset
from simreal.data.splits import sequence_split
from simreal.data.torch_dataset import SimrealDataset, collate_samples
from simreal.errors import SimrealError

# Depth scale: median over at most this many training samples (evenly spaced, so deterministic).
_SCALE_SAMPLES = 32


def split_by_group(groups: Sequence[str | None], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split sample indices into (train, val) without leaking a group (patient / sequence) across them.

    Whole groups go to validation, ``ceil(val_fraction * n_groups)`` of them (at least 1, never all),
    chosen by :func:`simreal.data.splits.sequence_split` (its "test" part) with ``seed``. When any sample
    lacks a group (None), every sample is its own group. ``val_fraction = 0`` gives no validation set.

    Args:
        groups: each sample's group, in sample order (``[r.group for r in reader.records]``).

    Raises:
        SimrealError: when a split is asked for but there are fewer than 2 groups / samples.
    """
    n = len(groups)
    if val_fraction <= 0:
        return list(range(n)), []
    by_group = all(g is not None for g in groups)
    # Without (complete) groups every sample is its own group.
    units: list[str | None] = list(groups) if by_group else [str(i) for i in range(n)]
    n_units = len(set(units))
    if n_units < 2:
        what = "group" if by_group else "sample"
        raise SimrealError(
            f"cannot split a validation set off {n_units} {what}(s); give --val DIR or --val-fraction 0"
        )
    n_val = min(n_units - 1, max(1, int(np.ceil(val_fraction * n_units))))
    split = sequence_split(units, n_test_groups=n_val, seed=seed)
    return split["train"], split["test"]


class EpochSampler(Sampler[int]):
    """A shuffled order that depends only on (seed, epoch), so a resumed run sees the same batches.

    With several processes (``world_size`` > 1) each yields its share of every global batch of
    ``batch_size`` images: rank r gets images ``r*b .. (r+1)*b - 1`` of each (``b = batch_size /
    world_size``), so the processes together see exactly the batches one process would. A last, partial
    batch of L images is padded to a multiple of ``world_size`` with the first images of the order (as
    ``torch.utils.data.DistributedSampler`` pads) and split evenly; without shuffling the order is
    0, 1, ..., n-1. With one process the order is the permutation itself, as before sharding existed.

    With ``fresh``, epoch e yields item ``i + e * n`` where it would yield item ``i``: a dataset whose items
    past ``n`` are new draws of item ``i % n`` (a render job, :class:`~simreal.data.render_dataset.RenderedColonDataset`)
    then shows new frames every epoch, still in an order that depends only on (seed, epoch).

    Lightning calls :meth:`set_epoch` at the start of every epoch.

    Example (unshuffled, so the order is 0..5; global batches (0 1 2 3) and (4 5)):
        >>> [list(EpochSampler(6, 0, False, batch_size=4, rank=r, world_size=2)) for r in (0, 1)]
        [[0, 1, 4], [2, 3, 5]]
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, *, batch_size: int = 1, rank: int = 0, world_size: int = 1,
                 fresh: bool = False):
        if world_size < 1 or not 0 <= rank < world_size or batch_size % world_size:
            raise SimrealError(f"cannot shard batches of {batch_size} over {world_size} processes (rank {rank})")
        self.n, self.seed, self.shuffle, self.epoch, self.fresh = n, seed, shuffle, 0, fresh
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _order(self) -> list[int]:
        offset = self.epoch * self.n if self.fresh else 0
        if not self.shuffle:
            return list(range(offset, offset + self.n))
        return (np.random.default_rng([self.seed, self.epoch]).permutation(self.n) + offset).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self.world_size == 1:
            return iter(order)
        return iter(shard_batches(order, self.batch_size, self.rank, self.world_size))

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.n
        return len(shard_batches(list(range(self.n)), self.batch_size, self.rank, self.world_size))


def shard_batches(order: Sequence[int], batch_size: int, rank: int, world_size: int) -> list[int]:
    """Rank ``rank``'s share of each consecutive batch of ``batch_size`` items of ``order`` (see
    :class:`EpochSampler`); the shares of all ranks, batch by batch, make up ``order`` (plus padding)."""
    b = batch_size // world_size
    out: list[int] = []
    for start in range(0, len(order), batch_size):
        batch = list(order[start : start + batch_size])
        if len(batch) < batch_size:  # the last, partial batch: pad to a multiple of world_size, split evenly
            batch += [order[i % len(order)] for i in range(-len(batch) % world_size)]
            b = len(batch) // world_size
        out += batch[rank * b : (rank + 1) * b]
    return out


def contiguous_shard(n: int, rank: int, world_size: int) -> list[int]:
    """Indices of rank ``rank``'s block of ``range(n)`` split into ``world_size`` nearly equal contiguous
    blocks (validation: every image once, no padding; rank 0 keeps the first images)."""
    return np.array_split(np.arange(n), world_size)[rank].tolist()


def make_loader(ds: Dataset, batch_size: int, seed: int, shuffle: bool, num_workers: int, *, rank: int = 0,
                world_size: int = 1, fresh: bool = False) -> DataLoader:
    """The loader of one process: training (``shuffle``) takes its share of every global batch of
    ``batch_size`` (new items every epoch with ``fresh``, see :class:`EpochSampler`); validation takes its
    contiguous block, in batches of ``batch_size / world_size``."""
    if shuffle:
        sampler: Sampler[int] | list[int] = EpochSampler(len(ds), seed, True, batch_size=batch_size, rank=rank,
                                                         world_size=world_size, fresh=fresh)
    else:
        sampler = EpochSampler(len(ds), seed, False) if world_size == 1 else contiguous_shard(len(ds), rank, world_size)
    # A dataset that renders may have built its Embree scenes in this process (the depth scale), and
    # Embree's threads do not survive a fork: its workers start afresh.
    context = "spawn" if num_workers > 0 and isinstance(ds, RenderedColonDataset) else None
    return DataLoader(
        ds, batch_size=batch_size // world_size, sampler=sampler, collate_fn=collate_samples,
        num_workers=num_workers, persistent_workers=num_workers > 0, drop_last=False, multiprocessing_context=context,
    )


class FolderSource:
    """Training images from a dataset folder on disk (``simreal render``, ``simreal dataset import``...)."""

    def __init__(self, path: str | Path):
        self.reader = DatasetReader(path)
        self.root = self.reader.root
        self.info, self.info_path = self.reader.info, self.root / "dataset.json"

    def __len__(self) -> int:
        return len(self.reader)

    def groups(self) -> list[str | None]:
        return [r.group for r in self.reader.records]

    def depth(self, index: int) -> np.ndarray:
        return self.reader.read(index, "depth")

    def dataset(self, kinds: Sequence[str], size: tuple[int, int] | None, indices: Sequence[int] | None = None,
                mask_map: dict[int, int] | None = None) -> Dataset:
        return SimrealDataset(self.reader.root, kinds=kinds, size=size, indices=indices, mask_map=mask_map)


class RenderJobSource:
    """Training images rendered on the fly from a render job (a ``simreal render colon`` job file, or a
    rendered set's ``dataset.json``): sample i is the frame ``simreal render colon`` writes as sample i, and
    its group is its anatomy's (frame i renders anatomy ``i % K``), so a validation split keeps anatomies
    apart exactly as it does on the written set. Nothing is written."""

    def __init__(self, path: str | Path):
        from simreal.data.render_dataset import ColonFrames
        from simreal.render.run import dataset_info

        self.root = self.info_path = Path(path)
        self.frames = ColonFrames(path, kinds=("depth", "mask"))
        self.info = dataset_info(self.frames.job, [a.info for a in self.frames.anatomies])

    def __len__(self) -> int:
        return self.frames.job.n

    def groups(self) -> list[str | None]:
        names = [a.group for a in self.frames.anatomies]
        return [names[i % len(names)] for i in range(len(self))]

    def depth(self, index: int) -> np.ndarray:
        return self.frames.frame(index)[0].depth

    def dataset(self, kinds: Sequence[str], size: tuple[int, int] | None, indices: Sequence[int] | None = None,
                mask_map: dict[int, int] | None = None) -> Dataset:
        return RenderedColonDataset(self.frames, kinds=kinds, size=size, indices=indices, mask_map=mask_map)


TrainingSource = FolderSource | RenderJobSource


def open_source(path: str | Path) -> TrainingSource:
    """A dataset folder, or a render job file (YAML / TOML / JSON, or a rendered set's ``dataset.json``)
    to render on the fly.

    Raises:
        SimrealError: a missing path, an unreadable dataset or job (naming the file and the problem).
    """
    path = Path(path)
    if path.is_file():
        return RenderJobSource(path)
    return FolderSource(path)


def median_depth_mm(source: TrainingSource, indices: Sequence[int]) -> float:
    """Median of the valid (> 0) depths of up to 32 evenly spaced samples, in mm."""
    if not indices:
        raise SimrealError("no training samples to measure the depth scale on", source.root)
    pick = np.unique(np.linspace(0, len(indices) - 1, min(_SCALE_SAMPLES, len(indices))).round().astype(int))
    values = [source.depth(indices[i]) for i in pick]
    valid = np.concatenate([v[v > 0].ravel() for v in values])
    if valid.size == 0:
        raise SimrealError("training depth maps hold no valid (> 0) depth", source.root)
    return float(np.median(valid))


def num_classes_of(source: TrainingSource, mask_map: dict[int, int] | None) -> int:
    """Number of training classes: largest (mapped) class id in dataset.json + 1."""
    label = source.info.labels.get("mask")
    if label is None or not label.classes:
        raise SimrealError("dataset.json names no mask classes; pass num_classes explicitly", source.info_path)
    ids = [mask_map.get(k, k) if mask_map else k for k in label.classes]
    return max(2, max(ids) + 1)


def seed_for_epoch(seed: int, epoch: int) -> None:
    """Reseed torch's global RNG per epoch (dropout, augmentation) so resumed epochs replay exactly."""
    torch.manual_seed(int(np.random.default_rng([seed, epoch, 7]).integers(2**62)))
