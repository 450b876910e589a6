"""PyTorch view of a dataset folder: typed samples (image, depth map, label map, camera).

Spatial resizing treats each kind by what it is: images are resampled bilinearly (antialiased), depth
maps and label maps by nearest neighbour (a depth of 0 means "no surface" and must not be blended with
its neighbours; class ids must stay class ids).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from simreal.data.format import Camera
from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError


@dataclass
class Sample:
    """One sample as tensors.

    Attributes:
        image: (3, H, W) float32 in [0, 1].
        depth: (1, H, W) float32 millimetres, 0 = no surface; None if not requested.
        mask: (H, W) int64 class ids; None if not requested.
        camera: intrinsics and pose (scaled to the returned size), or None.
        id: sample id in its dataset.
    """

    image: torch.Tensor
    depth: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    camera: Camera | None = None
    id: str = ""
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class Batch:
    """A collated list of :class:`Sample` (None fields stay None)."""

    image: torch.Tensor
    depth: torch.Tensor | None
    mask: torch.Tensor | None
    cameras: list[Camera | None]
    ids: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            image=self.image.to(device),
            depth=None if self.depth is None else self.depth.to(device),
            mask=None if self.mask is None else self.mask.to(device),
            cameras=self.cameras,
            ids=self.ids,
        )


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack samples into a :class:`Batch` (all must have the same size and the same fields)."""

    def stack(name: str) -> torch.Tensor | None:
        values = [getattr(s, name) for s in samples]
        if all(v is None for v in values):
            return None
        if any(v is None for v in values):
            raise SimrealError(f"some samples in the batch have no {name}")
        return torch.stack(values)

    return Batch(
        image=stack("image"),
        depth=stack("depth"),
        mask=stack("mask"),
        cameras=[s.camera for s in samples],
        ids=[s.id for s in samples],
    )


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (C, H, W) float image bilinearly with antialiasing."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def resize_label(label: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize a depth or label map ((H, W) or (C, H, W)) by nearest neighbour: values are never blended."""
    if tuple(label.shape[-2:]) == tuple(size):
        return label
    x = label[None, None] if label.ndim == 2 else label[None]
    out = F.interpolate(x.float(), size=size, mode="nearest-exact")[0]
    out = out[0] if label.ndim == 2 else out
    return out.to(label.dtype)


def scale_camera(camera: Camera | None, size: tuple[int, int]) -> Camera | None:
    """Intrinsics for the same camera imaging at another resolution (H, W).

    Resizing scales the image plane about its outer edge (pixel edges at -0.5 and W - 0.5 in the OpenCV
    convention of :class:`~simreal.data.format.Camera`, as ``F.interpolate(align_corners=False)`` does),
    so the principal point maps as ``cx' = (cx + 0.5) * sx - 0.5``: a centred ``(W - 1) / 2`` stays
    centred, ``(W' - 1) / 2``.
    """
    if camera is None or (camera.height, camera.width) == tuple(size):
        return camera
    sy, sx = size[0] / camera.height, size[1] / camera.width
    return Camera(
        width=size[1], height=size[0], fx=camera.fx * sx, fy=camera.fy * sy, cx=(camera.cx + 0.5) * sx - 0.5,
        cy=(camera.cy + 0.5) * sy - 0.5, model=camera.model, distortion=camera.distortion, pose=camera.pose,
    )


class SimrealDataset(Dataset):
    """A dataset folder as a ``torch.utils.data.Dataset`` of :class:`Sample`.

    Args:
        root: dataset folder.
        kinds: which labels to load besides the image ("depth", "mask"); each must exist in the dataset.
        size: (H, W) to resize to, or None to keep the stored size.
        indices: a subset of sample indices (e.g. a split), or None for all.
        mask_map: optional mapping of stored class ids to training ids (e.g. {2: 1} to merge classes).

    Example:
        >>> ds = SimrealDataset("renders/colon", kinds=("depth",), size=(128, 128))   # doctest: +SKIP
        >>> loader = DataLoader(ds, batch_size=8, collate_fn=collate_samples)
    """

    def __init__(
        self,
        root: str | Path,
        kinds: Sequence[str] = (),
        size: tuple[int, int] | None = None,
        indices: Sequence[int] | None = None,
        mask_map: dict[int, int] | None = None,
    ):
        self.reader = DatasetReader(root)
        if len(self.reader) == 0:
            raise SimrealError("dataset has no samples", self.reader.root)
        for kind in kinds:
            if kind not in self.reader.info.files:
                raise SimrealError(
                    f"dataset has no {kind!r} labels (it has: {', '.join(self.reader.info.files)})", self.reader.root
                )
        self.kinds = tuple(kinds)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.indices = list(range(len(self.reader))) if indices is None else list(indices)
        self.mask_map = mask_map

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Sample:
        index = self.indices[i]
        rec = self.reader.records[index]
        return make_sample(
            self.reader.read(index, "image"), camera=rec.camera, id=rec.id,
            depth=self.reader.read(index, "depth") if "depth" in self.kinds else None,
            mask=self.reader.read(index, "mask") if "mask" in self.kinds else None,
            size=self.size, mask_map=self.mask_map,
        )


def make_sample(
    rgb: np.ndarray, *, camera: Camera | None = None, id: str = "", depth: np.ndarray | None = None,
    mask: np.ndarray | None = None, size: tuple[int, int] | None = None, mask_map: dict[int, int] | None = None,
) -> Sample:
    """A :class:`Sample` from a sample's arrays as a dataset folder holds them (what every dataset here
    returns, read from disk or rendered on the fly).

    Args:
        rgb: (H, W, 3) uint8.
        camera: its camera at (H, W), scaled to ``size``.
        id: the sample id.
        depth: (H, W) float32 mm, or None.
        mask: (H, W) integer class ids, or None.
        size: (H, W) to resize to (image bilinear, labels nearest), or None to keep (H, W).
        mask_map: stored class id -> training id, for ids it names.
    """
    image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() / 255.0
    size = size or tuple(image.shape[-2:])
    sample = Sample(image=resize_image(image, size), camera=scale_camera(camera, size), id=id)
    if depth is not None:
        sample.depth = resize_label(torch.from_numpy(np.ascontiguousarray(depth))[None], size)
    if mask is not None:
        mask = mask.astype(np.int64)
        if mask_map:
            lut = np.arange(256, dtype=np.int64)
            for k, v in mask_map.items():
                lut[k] = v
            mask = lut[mask]
        sample.mask = resize_label(torch.from_numpy(mask), size)
    return sample
