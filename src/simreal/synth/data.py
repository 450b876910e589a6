"""Training slices of mask-guided CT synthesis: guidance (+ edges), CT and mask, labelled and unlabelled.

A CT slice dataset (``simreal synth prepare``, plus ``simreal synth masks`` for the superpixel guidance) is
read once into memory at the training size and served by step:

* the **generator input** (C_in, H, W): the guidance map scaled to [-1, 1] (``g / 255 * 2 - 1``), and with
  ``edges`` its edge map as a second channel in {0, 1} (pix2pixHD's instance-edge channel). The guidance
  is the superpixel mask (method "um") or the manual mask drawn as grey levels
  ``round(id * 255 / (C - 1))`` (method "mask", :func:`mask_guidance`);
* the **CT target** (1, H, W) in [-1, 1]: HU clipped to the dataset's window ``[lo, hi]`` (dataset.json
  ``ct.window_hu``, paper: [-1500, 100]) and mapped linearly (:func:`hu_to_unit`, inverse
  :func:`unit_to_hu`). Without a "ct" file the 8-bit image is used (``image / 255 * 2 - 1``);
* the **mask** (H, W) int64 class ids, for labelled slices only.

:class:`SynthBatches` is the engine's step-indexed data: step k draws ``batch_size`` labelled slices and,
when there are unlabelled ones, ``batch_size`` unlabelled slices, with a numpy generator seeded by
(seed, k, rank) (so a resumed run sees the same slices). Batches::

    {"input": (B, C_in, H, W), "ct": (B, 1, H, W), "mask": (B, H, W) int64,      # labelled
     "u_input": (B, C_in, H, W), "u_ct": (B, 1, H, W)}                            # unlabelled (if any)

Which slices train and which are labelled: :func:`training_indices` (a split file's ids and / or patient
groups) and :func:`split_labelled` (``--labelled``, :func:`simreal.synth.um_config.parse_labelled`).

Example:
    >>> data = open_synth_data(SynthDataConfig("ct_um", labelled="20%"), method="um", seed=0)   # doctest: +SKIP
    >>> batch = data[0]; batch["input"].shape                                                     # doctest: +SKIP
    torch.Size([2, 2, 256, 256])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from simreal.errors import SimrealError
from simreal.synth.masks import get_edges
from simreal.synth.prepare import DEFAULT_WINDOW_HU
from simreal.synth.um_config import Guidance, LabelledSpec, SynthDataConfig, parse_labelled

__all__ = [
    "SliceTensors",
    "SynthBatches",
    "edge_map",
    "hu_to_unit",
    "mask_guidance",
    "open_synth_data",
    "read_slices",
    "split_labelled",
    "to_generator_input",
    "training_indices",
    "unit_to_hu",
]


# -- pure conversions ----------------------------------------------------------------------------------------


def hu_to_unit(hu: np.ndarray | torch.Tensor, window: tuple[float, float]) -> np.ndarray | torch.Tensor:
    """HU -> [-1, 1]: clip to ``window`` = (lo, hi), then ``2 (hu - lo) / (hi - lo) - 1``."""
    lo, hi = window
    if isinstance(hu, torch.Tensor):
        return (hu.clamp(lo, hi) - lo) / (hi - lo) * 2 - 1
    return ((np.clip(hu, lo, hi) - lo) / (hi - lo) * 2 - 1).astype(np.float32)


def unit_to_hu(y: np.ndarray | torch.Tensor, window: tuple[float, float]) -> np.ndarray | torch.Tensor:
    """[-1, 1] -> HU: ``lo + (y + 1) / 2 (hi - lo)`` (the CT head's tanh range spans the window)."""
    lo, hi = window
    return lo + (y + 1) / 2 * (hi - lo)


def mask_guidance(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """A manual mask drawn as a guidance map (method "mask", V2M2I): class id -> ``round(id * 255 / (C - 1))``.

    Args:
        mask: (H, W) class ids in 0..num_classes-1.
        num_classes: C, background included.

    Returns:
        (H, W) uint8.

    Example:
        >>> mask_guidance(np.array([[0, 1, 2]]), 3).tolist()
        [[0, 128, 255]]
    """
    mask = np.asarray(mask)
    if num_classes < 2:
        raise SimrealError(f"num_classes must be >= 2, got {num_classes}")
    if mask.size and (mask.min() < 0 or mask.max() >= num_classes):
        raise SimrealError(f"mask values must be class ids 0..{num_classes - 1}, got {int(mask.min())}..{int(mask.max())}")
    return np.floor(mask.astype(np.float64) * 255.0 / (num_classes - 1) + 0.5).astype(np.uint8)


def edge_map(guidance: np.ndarray) -> np.ndarray:
    """pix2pixHD edges of a guidance map: (H, W) uint8, 255 on region boundaries (2 px wide), else 0."""
    return get_edges(guidance).astype(np.uint8) * 255


def to_generator_input(guidance: np.ndarray | torch.Tensor, edges: np.ndarray | torch.Tensor | None) -> torch.Tensor:
    """(H, W) uint8 guidance (+ edges) -> (1 or 2, H, W) float32: ``g / 255 * 2 - 1`` and ``edges > 0``.

    Batched (B, H, W) input gives (B, 1 or 2, H, W).
    """
    g = guidance if isinstance(guidance, torch.Tensor) else torch.from_numpy(np.array(guidance))
    channels = [g.float() / 255.0 * 2 - 1]
    if edges is not None:
        e = edges if isinstance(edges, torch.Tensor) else torch.from_numpy(np.array(edges))
        if e.shape != g.shape:
            raise SimrealError(f"edges {tuple(e.shape)} and guidance {tuple(g.shape)} differ in shape")
        channels.append((e > 0).float())
    return torch.stack(channels, dim=-3)


def _resize_nearest(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape == (size, size):
        return a
    t = torch.from_numpy(np.array(a))[None, None].float()
    return F.interpolate(t, size=(size, size), mode="nearest-exact")[0, 0].numpy().astype(a.dtype)


def _resize_linear(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape == (size, size):
        return a.astype(np.float32)
    t = torch.from_numpy(np.array(a, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0, 0].numpy()


# -- which slices ------------------------------------------------------------------------------------------


def training_indices(reader: Any, split: str | None = None, split_name: str = "train", groups: Sequence[str] = ()) -> list[int]:
    """Indices (dataset order) of the training slices: a split file's ``split_name`` ids, then only ``groups``.

    Raises:
        SimrealError: an unreadable split file, a missing split name or unknown ids, groups no slice has,
            nothing left.
    """
    idx = list(range(len(reader)))
    if split is not None:
        path = Path(split)
        try:
            splits = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SimrealError(f"unreadable split file ({exc.__class__.__name__}: {exc})", path) from None
        if not isinstance(splits, dict) or split_name not in splits or not isinstance(splits[split_name], list):
            have = ", ".join(map(str, splits)) if isinstance(splits, dict) else "not a mapping"
            raise SimrealError(f"split file has no list {split_name!r} (it has: {have})", path)
        wanted = set(map(str, splits[split_name]))
        known = set(reader.ids)
        unknown = sorted(wanted - known)
        if unknown:
            raise SimrealError(f"split {split_name!r} names {len(unknown)} ids not in {reader.root} (e.g. {unknown[0]!r})", path)
        idx = [i for i in idx if reader.records[i].id in wanted]
    if groups:
        have = {str(reader.records[i].group) for i in idx}
        missing = sorted(set(groups) - have)
        if missing:
            raise SimrealError(f"no training slice has group {missing[0]!r} (groups: {', '.join(sorted(have))})", reader.root)
        idx = [i for i in idx if str(reader.records[i].group) in set(groups)]
    if not idx:
        raise SimrealError("no training slices selected", reader.root)
    return idx


def split_labelled(indices: Sequence[int], groups: Sequence[str | None], spec: LabelledSpec | str) -> tuple[list[int], list[int]]:
    """Split training slice indices into (labelled, unlabelled), deterministically (no seed involved).

    Args:
        indices: training slice indices, in dataset order.
        groups: the patient of each of ``indices``.
        spec: :class:`LabelledSpec` or its text (``"all"``, ``"40"``, ``"10%"``, ``"2p"``).

    ``N`` slices or a fraction (``round(f * n)``, at least 1) are spread evenly: slice positions
    ``floor((j + 0.5) n / N)`` of the n training slices. ``Np``: every slice of the first N patients in sorted
    order.

    Example:
        >>> split_labelled(range(10), ["a"] * 5 + ["b"] * 5, "2")
        ([2, 7], [0, 1, 3, 4, 5, 6, 8, 9])
    """
    spec = parse_labelled(spec) if isinstance(spec, str) else spec
    indices = list(indices)
    n = len(indices)
    if len(groups) != n:
        raise SimrealError(f"{len(groups)} groups for {n} slices")
    if spec.kind == "all":
        return indices, []
    if spec.kind == "patients":
        names = sorted({str(g) for g in groups})
        if spec.count > len(names):
            raise SimrealError(f"--labelled {spec.count}p asks for more patients than the {len(names)} training patients ({', '.join(names)})")
        keep = set(names[: spec.count])
        lab = [i for i, g in zip(indices, groups) if str(g) in keep]
    else:
        k = spec.count if spec.kind == "slices" else max(1, round(spec.fraction * n))
        if k > n:
            raise SimrealError(f"--labelled {k} asks for more slices than the {n} training slices")
        picks = {int((j + 0.5) * n / k) for j in range(k)}
        lab = [indices[p] for p in sorted(picks)]
    chosen = set(lab)
    return lab, [i for i in indices if i not in chosen]


# -- reading -----------------------------------------------------------------------------------------------


@dataclass
class SliceTensors:
    """Slices held in memory at the training size.

    Attributes:
        inputs: (N, C_in, S, S) float32 generator inputs.
        ct: (N, 1, S, S) float32 CT in [-1, 1].
        masks: (N, S, S) int64 class ids (-1 where a slice has no mask file: never for prepared CT).
        guidance: (N, S, S) uint8 guidance maps; edges: (N, S, S) uint8 (0 / 255).
        ids, groups: per slice; params: each record's params (for spacing_mm).
    """

    inputs: torch.Tensor
    ct: torch.Tensor
    masks: torch.Tensor
    guidance: np.ndarray
    edges: np.ndarray
    ids: list[str]
    groups: list[str | None]
    params: list[dict[str, Any]] = field(default_factory=list)


def dataset_window(reader: Any) -> tuple[float, float]:
    """The dataset's HU window (dataset.json ``ct.window_hu``), else the paper's [-1500, 100]."""
    ct = reader.info.ct
    return (float(ct.window_hu[0]), float(ct.window_hu[1])) if ct is not None else DEFAULT_WINDOW_HU


def dataset_classes(reader: Any) -> dict[int, str]:
    """Class id -> name of the dataset's masks (raises when it has none)."""
    kind = reader.info.labels.get("mask")
    if "mask" not in reader.info.files or kind is None or not kind.classes:
        raise SimrealError("the dataset has no 'mask' files with declared classes (synth prepare --labels ... --label NAME)", reader.root)
    return dict(sorted(kind.classes.items()))


def read_slices(
    reader: Any,
    indices: Sequence[int],
    *,
    method: Guidance,
    size: int | None,
    edges: bool,
    num_classes: int,
    window: tuple[float, float],
    guidance_reader: Any = None,
) -> SliceTensors:
    """Decode slices ``indices`` of a dataset into :class:`SliceTensors` at ``size`` (None: as stored).

    Args:
        reader: the CT slice dataset (:class:`~simreal.data.reader.DatasetReader`).
        method: "um" (guidance and edges from the dataset, or from ``guidance_reader``) or "mask" (guidance
            drawn from the manual mask, :func:`mask_guidance`).
        size: square side; CT resized bilinearly (anti-aliased), guidance and mask nearest, edges then
            recomputed from the resized guidance.
        edges: include the edge channel.
        num_classes: classes of the masks (for "mask" guidance and checks).
        window: HU window of the CT target.
        guidance_reader: another dataset with "guidance" / "edges" under the same sample ids.

    Raises:
        SimrealError: missing kinds (named with the dataset), ids missing from the guidance dataset, mask
            values outside the classes, non-square slices without ``size``.
    """
    files = reader.info.files
    src = guidance_reader if guidance_reader is not None else reader
    if method == "um" and not {"guidance", "edges"} <= set(src.info.files):
        raise SimrealError("method 'um' needs 'guidance' and 'edges' files (run `simreal synth masks` on the dataset, or give --guidance)", src.root)
    if method == "mask" and "mask" not in files:
        raise SimrealError("method 'mask' needs 'mask' files", reader.root)
    g_index = {rid: i for i, rid in enumerate(src.ids)} if guidance_reader is not None else None
    inputs, cts, masks, guides, edgemaps, ids, groups, params = [], [], [], [], [], [], [], []
    for i in indices:
        rec = reader.records[i]
        if "ct" in files:
            hu = reader.read(i, "ct")
            target = hu_to_unit(hu, window)
        else:
            target = reader.read(i, "image")[..., 0].astype(np.float32) / 255.0 * 2 - 1
        mask = reader.read(i, "mask") if "mask" in files else None
        if mask is not None and mask.max() >= num_classes:
            raise SimrealError(f"mask value {int(mask.max())} outside the {num_classes} classes", reader.path(i, "mask"))
        if method == "um":
            j = i if g_index is None else g_index.get(rec.id)
            if j is None:
                raise SimrealError(f"guidance dataset has no sample {rec.id!r}", src.root)
            guide, edge = src.read(j, "guidance"), src.read(j, "edges")
        else:
            guide = mask_guidance(mask, num_classes)
            edge = None
        h, w = target.shape
        s = size if size is not None else h
        if size is None and h != w:
            raise SimrealError(f"slice {rec.id} is {h}x{w}; give --size to train on square slices", reader.root)
        if guide.shape != (h, w):
            raise SimrealError(f"guidance of {rec.id} is {guide.shape}, its CT {(h, w)}", src.root)
        resized = s != h or s != w
        target = _resize_linear(target, s)
        guide = _resize_nearest(guide, s)
        if mask is not None:
            mask = _resize_nearest(mask, s)
        if edge is None or resized:
            edge = edge_map(guide)
        inputs.append(to_generator_input(guide, edge if edges else None))
        cts.append(torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32))[None])
        masks.append(torch.from_numpy(mask.astype(np.int64)) if mask is not None else torch.full((s, s), -1, dtype=torch.int64))
        guides.append(guide)
        edgemaps.append(edge)
        ids.append(rec.id)
        groups.append(rec.group)
        params.append(dict(rec.params))
    return SliceTensors(
        inputs=torch.stack(inputs), ct=torch.stack(cts), masks=torch.stack(masks), guidance=np.stack(guides),
        edges=np.stack(edgemaps), ids=ids, groups=groups, params=params,
    )


# -- the engine's data -------------------------------------------------------------------------------------


class SynthBatches:
    """Step-indexed batches of labelled and unlabelled slices (see the module docstring).

    Args:
        labelled: slices with masks (at least one).
        unlabelled: slices whose masks are not used (None or empty: none).
        batch_size: slices per mini-batch.
        seed: with the step and ``rank``, fixes every draw.
        rank: the process's rank in a multi-device run.
    """

    def __init__(self, labelled: SliceTensors, unlabelled: SliceTensors | None, *, batch_size: int, seed: int, rank: int = 0):
        if len(labelled.ids) == 0:
            raise SimrealError("no labelled slices")
        if bool((labelled.masks < 0).any()):
            raise SimrealError("labelled slices must all have masks")
        self.labelled = labelled
        self.unlabelled = unlabelled if unlabelled is not None and len(unlabelled.ids) else None
        self.batch_size, self.seed, self.rank = int(batch_size), int(seed), int(rank)

    @property
    def in_channels(self) -> int:
        return int(self.labelled.inputs.shape[1])

    @property
    def size(self) -> int:
        return int(self.labelled.inputs.shape[-1])

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(step), self.rank])
        li = torch.from_numpy(rng.integers(0, len(self.labelled.ids), size=self.batch_size))
        out = {"input": self.labelled.inputs[li], "ct": self.labelled.ct[li], "mask": self.labelled.masks[li]}
        if self.unlabelled is not None:
            ui = torch.from_numpy(rng.integers(0, len(self.unlabelled.ids), size=self.batch_size))
            out["u_input"], out["u_ct"] = self.unlabelled.inputs[ui], self.unlabelled.ct[ui]
        return out

    def sample_batch(self, n: int) -> dict[str, torch.Tensor]:
        """``n`` evenly spaced labelled slices (repeating when fewer), for sample grids."""
        m = len(self.labelled.ids)
        idx = torch.tensor([round(i * (m - 1) / max(n - 1, 1)) if m >= n else i % m for i in range(n)])
        return {"input": self.labelled.inputs[idx], "ct": self.labelled.ct[idx], "mask": self.labelled.masks[idx]}


@dataclass
class SynthData:
    """What :func:`open_synth_data` found: the batches plus what the run folder records (``RUN/data.json``)."""

    batches: SynthBatches
    num_classes: int
    classes: dict[int, str]
    window: tuple[float, float]
    labelled_ids: list[str]
    unlabelled_ids: list[str]
    description: dict[str, Any]


def open_synth_data(config: SynthDataConfig, *, method: Guidance, seed: int, num_classes: int | None = None) -> SynthData:
    """Read a run's training slices (all into memory) and split them into labelled / unlabelled.

    For method "mask" the unlabelled slices are left out (its guidance is the manual mask itself), so it
    trains on the labelled slices only.

    Raises:
        SimrealError: an unreadable dataset, missing kinds, a bad split or group, ``--labelled`` beyond the
            training slices, a size that does not divide.
    """
    from simreal.data.reader import DatasetReader

    reader = DatasetReader(config.data)
    greader = DatasetReader(config.guidance) if config.guidance is not None else None
    classes = dataset_classes(reader)
    c = max(classes) + 1 if num_classes is None else int(num_classes)
    if c < max(classes) + 1:
        raise SimrealError(f"num_classes {c} is below the dataset's classes {classes}", reader.root)
    c = max(c, 2)
    window = dataset_window(reader)
    idx = training_indices(reader, config.split, config.split_name, config.groups)
    lab, unlab = split_labelled(idx, [reader.records[i].group for i in idx], config.labelled)
    if method == "mask":
        unlab = []
    common = dict(method=method, size=config.size, edges=config.edges, num_classes=c, window=window, guidance_reader=greader)
    ls = read_slices(reader, lab, **common)
    us = read_slices(reader, unlab, **common) if unlab else None
    batches = SynthBatches(ls, us, batch_size=config.batch_size, seed=seed)
    spacing = [p.get("spacing_mm") for p in ls.params]
    description = {
        "data": str(reader.root),
        "guidance": None if greader is None else str(greader.root),
        "method": method,
        "size": batches.size,
        "window_hu": list(window),
        "classes": {str(k): v for k, v in classes.items()},
        "num_classes": c,
        "in_channels": batches.in_channels,
        "edges": config.edges,
        "n_train": len(idx),
        "labelled": ls.ids,
        "unlabelled": [] if us is None else us.ids,
        "groups": sorted({str(g) for g in ls.groups + ([] if us is None else us.groups)}),
        "source_size": list(reader.info.image_size) if reader.info.image_size else None,
        "spacing_mm_first": spacing[0] if spacing else None,
    }
    return SynthData(batches=batches, num_classes=c, classes=classes, window=window, labelled_ids=ls.ids,
                     unlabelled_ids=[] if us is None else us.ids, description=description)
