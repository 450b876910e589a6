"""Unsupervised structural masks (UM-synthesis, methods.md 3.2): SLIC superpixels, mean fill, quantisation, edges.

For each windowed CT slice or montage (the dataset's 8-bit "image"):

1. **SLIC** (``skimage.segmentation.slic``, ``n_segments=512``, ``compactness=10``) on the grey image
   replicated to 3 channels, as the released SemiCS2 code does. skimage then converts the image to CIELAB
   and clusters on L in [0, 100]; ``compactness=10`` is calibrated for that range. With
   ``channel_axis=None`` skimage would cluster the grey values in [0, 1], where the same compactness
   weighs distance ~100x more and the superpixels become a near-regular grid that ignores the anatomy
   (on a liver CT slice the within-superpixel variance is 4x larger), so the 3-channel form is used.
2. **Mean fill**: each superpixel takes the mean grey value of its pixels.
3. **Quantisation**: ``int(v / step) * step`` (step 10: values 0, 10, ..., 250), computed exactly in
   integers (``sum // (count * step) * step``).
4. **Edges**: pix2pixHD ``get_edges``: a pixel is an edge when its right/left or lower/upper neighbour has
   another value; both sides of a boundary are marked (2 px wide). As in SemiCS2 (where the edge map is
   taken of the quantised mask fed as the "instance" map), edges are computed on the *guidance* by default,
   so two neighbouring superpixels quantised to one value share no edge; ``edges_from="superpixels"``
   marks every superpixel boundary instead.

Everything is deterministic: the same image gives the same bytes.

The dataset written by :func:`make_mask_dataset` holds the input's files (image, ct, mask) unchanged plus
"guidance" (uint8 PNG of the quantised mean intensity) and "edges" (uint8 PNG, 0 or 255).

Example:
    >>> um = unsupervised_mask(np.tile(np.arange(64, dtype=np.uint8) * 4, (64, 1)), n_segments=16)
    >>> um.guidance.dtype, sorted(np.unique(um.edges).tolist())
    (dtype('uint8'), [0, 255])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from simreal.data.format import DatasetInfo, LabelKind, SampleRecord
from simreal.errors import SimrealError

__all__ = [
    "MaskConfig",
    "UnsupervisedMask",
    "get_edges",
    "make_mask_dataset",
    "mean_fill",
    "quantised_mean",
    "slic_superpixels",
    "unsupervised_mask",
]

EdgesFrom = Literal["guidance", "superpixels"]


def _check_grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint8 or min(image.shape) < 2:
        raise SimrealError(f"expected an (H, W) uint8 grey image of at least 2x2 pixels, got {image.dtype} {image.shape}")
    return image


def slic_superpixels(image: np.ndarray, n_segments: int = 512, compactness: float = 10.0) -> np.ndarray:
    """SLIC superpixels of an 8-bit grey image, replicated to RGB (CIELAB clustering) as SemiCS2.

    Args:
        image: (H, W) uint8.
        n_segments: approximate number of superpixels.
        compactness: SLIC's balance of colour (CIELAB L in [0, 100]) against space.

    Returns:
        (H, W) int32 superpixel ids 0..n-1 (every id occurs).
    """
    from skimage.segmentation import slic

    image = _check_grey(image)
    if not isinstance(n_segments, int) or n_segments < 1:
        raise SimrealError(f"n_segments must be a positive integer, got {n_segments!r}")
    if not (compactness > 0 and np.isfinite(compactness)):
        raise SimrealError(f"compactness must be positive, got {compactness!r}")
    rgb = np.repeat(image[..., None], 3, axis=2)
    segments = slic(rgb, n_segments=n_segments, compactness=float(compactness), start_label=0, channel_axis=-1)
    _, dense = np.unique(segments, return_inverse=True)  # ids 0..n-1 without holes
    return dense.reshape(image.shape).astype(np.int32)


def mean_fill(image: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Each pixel replaced by the mean of its superpixel: (H, W) uint8 + (H, W) ids -> (H, W) float64."""
    image = _check_grey(image)
    sums, counts = _segment_sums(image, segments)
    return (sums / counts)[segments]


def _segment_sums(image: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    segments = np.asarray(segments)
    if segments.shape != image.shape or segments.min() < 0:
        raise SimrealError(f"segments must be (H, W) ids >= 0 matching the image {image.shape}, got {segments.shape}")
    flat = segments.ravel()
    sums = np.bincount(flat, weights=image.ravel().astype(np.int64), minlength=int(flat.max()) + 1).astype(np.int64)
    counts = np.bincount(flat, minlength=int(flat.max()) + 1).astype(np.int64)
    counts[counts == 0] = 1  # ids that do not occur are never looked up
    return sums, counts


def quantised_mean(image: np.ndarray, segments: np.ndarray, step: int = 10) -> np.ndarray:
    """Superpixel means quantised to multiples of ``step``: ``int(mean / step) * step``, exactly.

    Args:
        image: (H, W) uint8 grey.
        segments: (H, W) superpixel ids.
        step: quantisation step (SemiCS2: 10).

    Returns:
        (H, W) uint8 guidance mask (values 0, step, 2 step, ... <= 255).
    """
    image = _check_grey(image)
    if not isinstance(step, int) or not 1 <= step <= 255:
        raise SimrealError(f"step must be an integer in 1..255, got {step!r}")
    sums, counts = _segment_sums(image, segments)
    levels = (sums // (counts * step)) * step  # floor(sum / count / step) * step without round-off
    return levels.astype(np.uint8)[segments]


def get_edges(label_map: np.ndarray) -> np.ndarray:
    """pix2pixHD ``get_edges``: True where a horizontal or vertical neighbour has another value.

    Both pixels of a differing pair are marked, so boundaries are 2 px wide.

    Args:
        label_map: (H, W) array of any dtype.

    Returns:
        (H, W) bool.

    Example:
        >>> get_edges(np.array([[0, 0, 1, 1]])).astype(int).tolist()
        [[0, 1, 1, 0]]
    """
    t = np.asarray(label_map)
    if t.ndim != 2:
        raise SimrealError(f"label_map must be (H, W), got shape {t.shape}")
    edge = np.zeros(t.shape, bool)
    dx = t[:, 1:] != t[:, :-1]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    dy = t[1:, :] != t[:-1, :]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    return edge


@dataclass(frozen=True)
class UnsupervisedMask:
    """The guidance of one image.

    Attributes:
        guidance: (H, W) uint8 quantised superpixel mean intensity.
        edges: (H, W) uint8, 255 on boundaries, 0 elsewhere.
        n_superpixels: how many superpixels SLIC made.
    """

    guidance: np.ndarray
    edges: np.ndarray
    n_superpixels: int


def unsupervised_mask(
    image: np.ndarray,
    *,
    n_segments: int = 512,
    compactness: float = 10.0,
    step: int = 10,
    edges_from: EdgesFrom = "guidance",
) -> UnsupervisedMask:
    """SLIC -> mean fill -> quantisation -> edges for one (H, W) uint8 windowed slice or montage."""
    if edges_from not in ("guidance", "superpixels"):
        raise SimrealError(f"edges_from must be 'guidance' or 'superpixels', got {edges_from!r}")
    segments = slic_superpixels(image, n_segments, compactness)
    guidance = quantised_mean(image, segments, step)
    edges = get_edges(guidance if edges_from == "guidance" else segments)
    return UnsupervisedMask(guidance=guidance, edges=edges.astype(np.uint8) * 255, n_superpixels=int(segments.max()) + 1)


@dataclass(frozen=True)
class MaskConfig:
    """Settings of the unsupervised masks (defaults: the paper's).

    Args:
        n_segments: SLIC superpixels per image (SemiCS2: 512 on a 1024^2 montage, ~128 per 512^2 slice).
        compactness: SLIC compactness.
        step: quantisation step of the mean intensity.
        edges_from: "guidance" (SemiCS2) or "superpixels" (every superpixel boundary).
    """

    n_segments: int = 512
    compactness: float = 10.0
    step: int = 10
    edges_from: EdgesFrom = "guidance"

    def __post_init__(self) -> None:
        if not isinstance(self.n_segments, int) or self.n_segments < 1:
            raise SimrealError(f"segments must be a positive integer, got {self.n_segments!r}")
        if not (self.compactness > 0 and np.isfinite(self.compactness)):
            raise SimrealError(f"compactness must be positive, got {self.compactness!r}")
        if not isinstance(self.step, int) or not 1 <= self.step <= 255:
            raise SimrealError(f"step must be an integer in 1..255, got {self.step!r}")
        if self.edges_from not in ("guidance", "superpixels"):
            raise SimrealError(f"edges_from must be 'guidance' or 'superpixels', got {self.edges_from!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _grey(rgb: np.ndarray) -> np.ndarray:
    """The grey value of a windowed CT image (its channels are equal); a colour image's channel mean."""
    if rgb.ndim == 2:
        return rgb
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0])
    return np.floor(rgb.astype(np.float64).mean(axis=2) + 0.5).astype(np.uint8)


def make_mask_dataset(
    data: str | Path,
    out: str | Path,
    config: MaskConfig = MaskConfig(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Add unsupervised guidance masks and edge maps to every sample of a dataset (written as a new one).

    Args:
        data: a dataset with "image" files (e.g. from :func:`simreal.synth.prepare.prepare_ct_dataset`).
        out: the new dataset folder: the input's files (ids, records, groups, params unchanged) plus
            "guidance" and "edges"; an input's own guidance / edges are replaced.
        config: SLIC and quantisation settings.
        progress: called with (samples written, total).

    Raises:
        SimrealError: an unreadable input dataset (named), one without "image" files, an existing ``out``.
    """
    from simreal.data.reader import DatasetReader
    from simreal.data.writer import write_dataset

    reader = DatasetReader(data)
    if "image" not in reader.info.files:
        raise SimrealError(f"the dataset has no 'image' files (it has {', '.join(reader.info.files)})", reader.root)
    if len(reader) == 0:
        raise SimrealError("the dataset has no samples", reader.root)
    keep = tuple(k for k in reader.info.files if k not in ("guidance", "edges"))
    labels = {k: v for k, v in reader.info.labels.items() if k not in ("guidance", "edges")}
    labels["guidance"] = LabelKind(
        description=f"SLIC ({config.n_segments} segments, compactness {config.compactness:g}) on the image, each "
        f"superpixel filled with its mean grey value, quantised to multiples of {config.step}"
    )
    labels["edges"] = LabelKind(description=f"pix2pixHD get_edges of the {config.edges_from}: 255 = boundary, 0 = inside")
    info = DatasetInfo(
        **{
            **reader.info.__dict__,
            "files": keep + ("guidance", "edges"),
            "labels": labels,
            "generator": {
                "name": "simreal.synth.masks",
                "config": config.to_dict(),
                "input": {"path": str(reader.root), "generator": reader.info.generator},
            },
            "n_samples": 0,
        }
    )

    def items() -> Iterator[tuple[SampleRecord, Callable[[], dict[str, np.ndarray]]]]:
        for i, rec in enumerate(reader.records):
            def load(i: int = i, rec: SampleRecord = rec) -> dict[str, np.ndarray]:
                arrays = {kind: reader.read(i, kind) for kind in keep}
                um = unsupervised_mask(
                    _grey(arrays["image"]),
                    n_segments=config.n_segments,
                    compactness=config.compactness,
                    step=config.step,
                    edges_from=config.edges_from,
                )
                return {**arrays, "guidance": um.guidance, "edges": um.edges}

            record = SampleRecord(
                id=rec.id,
                files={},
                camera=rec.camera,
                params=rec.params,
                source=rec.source,
                group=rec.group,
            )
            yield record, load

    return write_dataset(out, info, items(), total=len(reader), progress=progress)
