"""Unpaired image sets for adversarial training, sampled deterministically by (seed, step).

An :class:`ImageSource` is the images of one domain: a simreal dataset folder (its ``image`` files) or a
plain folder of PNG / JPEG / BMP / TIFF files (any size, grey or RGB, not mixed, no alpha channel).
:class:`UnpairedBatches` draws, for every training step, ``draws[name]`` mini-batches of ``batch_size``
images from each named source, cropped or resized to the training size, as float tensors in [0, 1]::

    batches = UnpairedBatches({"real": ImageSource("frames"), "synthetic": ImageSource("renders")},
                              batch_size=8, size=(64, 64), draws={"real": 3, "synthetic": 1}, seed=0)
    batch = batches[1200]            # {"real": (3, 8, C, 64, 64), "synthetic": (1, 8, C, 64, 64)}

What step ``k`` returns depends only on (seed, k, rank): image indices and crop offsets come from a
``numpy`` generator seeded with exactly these, so a resumed run sees the same images as an uninterrupted
one, whatever ran before, and DataLoader workers need no shared state.

Crops: ``mode="crop"`` (default) takes a random window at the image's own resolution (an image smaller
than the window is first scaled up, keeping its aspect ratio). The refiner is applied to whole frames at
their own resolution afterwards, so training on native-resolution crops shows it textures at the scale
it will meet. ``mode="resize"`` scales every whole image to the training size instead.

Decoded images are cached in memory (up to :data:`CACHE_MB` per source and process), so small real
sets are read from disk once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image

from simreal.adapt.config import CropMode, UnpairedDataConfig
from simreal.data.images import read_rgb
from simreal.errors import SimrealError

#: Most decoded pixels kept in memory per source and process, in MiB.
CACHE_MB = 1024

# PIL modes by channel count; everything with alpha is refused.
_GREY_MODES = {"1", "L", "I", "F", "I;16", "I;16B", "I;16L", "I;16N"}
_RGB_MODES = {"RGB", "P", "YCbCr", "LAB", "HSV", "CMYK"}
_ALPHA_MODES = {"RGBA", "RGBa", "LA", "La", "PA"}
_CHANNEL_NAMES = {1: "grey (1 channel)", 3: "RGB (3 channels)"}


def image_channels(path: str | Path) -> int:
    """1 (grey) or 3 (colour) from the file header, without decoding the pixels.

    Raises:
        SimrealError: unreadable file, an alpha channel, or a TIFF that is not 8-bit grey / RGB.
    """
    path = Path(path)
    if not path.is_file():
        raise SimrealError("file not found", path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            with tifffile.TiffFile(path) as tif:
                shape, dtype = tif.series[0].shape, tif.series[0].dtype
            if dtype != np.uint8:
                raise SimrealError(f"TIFF image must be 8-bit, got {dtype}", path)
            if len(shape) == 2:
                return 1
            if len(shape) == 3 and shape[2] == 3:
                return 3
            if len(shape) == 3 and shape[2] in (2, 4):
                raise SimrealError("image has an alpha channel; save it without alpha (grey or RGB)", path)
            raise SimrealError(f"expected a grey or RGB image, got shape {shape}", path)
        with Image.open(path) as img:
            mode = img.mode
    except SimrealError:
        raise
    except Exception as exc:  # PIL / tifffile raise many types for corrupt input
        raise SimrealError(f"cannot read image ({exc.__class__.__name__}: {exc})", path) from None
    if mode in _ALPHA_MODES:
        raise SimrealError(f"image has an alpha channel ({mode}); save it without alpha (grey or RGB)", path)
    if mode in _GREY_MODES:
        return 1
    if mode in _RGB_MODES:
        return 3
    raise SimrealError(f"unsupported image mode {mode!r}", path)


def decode_image(path: str | Path, channels: int) -> np.ndarray:
    """(H, W, channels) uint8 pixels of an image that must have ``channels`` channels."""
    found = image_channels(path)
    if found != channels:
        raise SimrealError(
            f"image is {_CHANNEL_NAMES[found]} but the other images are {_CHANNEL_NAMES[channels]}", path
        )
    rgb = read_rgb(path)  # grey is replicated to 3 channels, 16-bit scaled to 8
    return rgb if channels == 3 else np.ascontiguousarray(rgb[..., :1])


class ImageSource:
    """The images of one domain, decoded on demand as (H, W, C) uint8.

    Args:
        path: a simreal dataset folder (``dataset.json``; its ``image`` files, RGB by the dataset
            contract) or a plain folder of images (every file's channels are checked up front).
        what: what the images are, for error messages ("real images").
        cache: keep decoded images in memory (up to :data:`CACHE_MB`) for the next read.

    Raises:
        SimrealError: missing folder, no images, grey and RGB mixed, an alpha channel.
    """

    def __init__(self, path: str | Path, what: str = "images", *, cache: bool = True):
        from simreal.data.external.common import list_images
        from simreal.data.reader import DatasetReader

        self.path = Path(path)
        self.what = what
        if not self.path.is_dir():
            raise SimrealError(f"{what} folder not found", self.path)
        if (self.path / "dataset.json").is_file():
            reader = DatasetReader(self.path)
            if len(reader) == 0:
                raise SimrealError("dataset has no samples", self.path)
            if "image" not in reader.info.files:
                raise SimrealError("dataset has no 'image' files", self.path)
            self.kind = "dataset"
            self.files = [reader.path(i, "image") for i in range(len(reader))]
            self.ids = reader.ids
            # The contract makes every dataset image RGB; the first is checked here, each on decoding.
            self.channels = image_channels(self.files[0])
        else:
            self.kind = "folder"
            self.files = list_images(self.path, what=what)
            self.ids = [p.stem for p in self.files]
            self.channels = self._common_channels()
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}
        self._cached_bytes = 0

    def _common_channels(self) -> int:
        first: dict[int, Path] = {}
        for f in self.files:
            first.setdefault(image_channels(f), f)
        if len(first) > 1:
            grey, rgb = first[1], first[3]
            raise SimrealError(
                f"{self.what} mix grey and RGB files ({grey.name} is {_CHANNEL_NAMES[1]}, {rgb.name} is "
                f"{_CHANNEL_NAMES[3]}); convert them to one",
                self.path,
            )
        return next(iter(first))

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, channels) uint8."""
        cached = self._cache.get(index)
        if cached is not None:
            return cached
        arr = decode_image(self.files[index], self.channels)
        if self.cache and self._cached_bytes + arr.nbytes <= CACHE_MB * 2**20:
            self._cache[index] = arr
            self._cached_bytes += arr.nbytes
        return arr

    def __getstate__(self) -> dict:
        # DataLoader workers get the file list, not the parent's cache.
        state = dict(self.__dict__)
        state["_cache"], state["_cached_bytes"] = {}, 0
        return state


class ArraySource:
    """In-memory images with the :class:`ImageSource` interface (tests, benchmarks).

    Args:
        images: (N, H, W, C) uint8 with C = 1 or 3, or a list of (H, W, C) arrays of varying sizes.
    """

    def __init__(self, images: np.ndarray | list[np.ndarray], what: str = "images"):
        arrays = [np.asarray(a) for a in images]
        if not arrays:
            raise SimrealError(f"no {what} given")
        chans = {a.shape[2] if a.ndim == 3 else -1 for a in arrays}
        if len(chans) != 1 or next(iter(chans)) not in (1, 3) or any(a.dtype != np.uint8 for a in arrays):
            raise SimrealError(f"{what} must be (H, W, 1) or (H, W, 3) uint8 arrays of one channel count")
        self.what, self.kind, self.path = what, "array", None
        self._arrays = arrays
        self.channels = next(iter(chans))
        self.ids = [f"{i:06d}" for i in range(len(arrays))]

    def __len__(self) -> int:
        return len(self._arrays)

    def read(self, index: int) -> np.ndarray:
        return self._arrays[index]


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float().div_(255.0)


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]


def crop_or_resize(arr: np.ndarray, size: tuple[int, int], mode: CropMode, offset: tuple[float, float] | None) -> torch.Tensor:
    """One (H, W, C) uint8 image -> (C, h, w) float in [0, 1].

    Args:
        arr: the decoded image.
        size: (h, w) wanted.
        mode: "crop": a window at native resolution (scaled up first, aspect kept, when the image is
            smaller than the window); "resize": the whole image scaled to ``size``.
        offset: crop position as fractions in [0, 1) of the free range (row, column); None = centred.
    """
    h, w = size
    if mode == "resize":
        return _resize(_to_tensor(arr), size)
    H, W = arr.shape[:2]
    if H < h or W < w:
        scale = max(h / H, w / W)
        x = _resize(_to_tensor(arr), (max(h, round(H * scale)), max(w, round(W * scale))))
        H, W = x.shape[-2:]
    else:
        x = None
    fy, fx = (0.5, 0.5) if offset is None else offset
    oy, ox = min(int(fy * (H - h + 1)), H - h), min(int(fx * (W - w + 1)), W - w)
    if x is None:  # crop the uint8 array first: converting the whole frame would cost more than the crop
        return _to_tensor(arr[oy : oy + h, ox : ox + w])
    return x[:, oy : oy + h, ox : ox + w]


class UnpairedBatches:
    """Step-indexed batches from several unpaired image sources (a map-style dataset indexed by step).

    Args:
        sources: name -> :class:`ImageSource` / :class:`ArraySource`.
        batch_size: images per mini-batch.
        size: (H, W) of every image returned.
        draws: name -> mini-batches per step (a method needing k_R + k_D real batches per step asks for
            that many).
        seed: with the step (and ``rank``), fixes every draw.
        mode: "crop" or "resize" (see :func:`crop_or_resize`).
        rank: the process's rank in a multi-device run (each draws its own images).

    Raises:
        SimrealError: sources with different channel counts, unknown names in ``draws``.
    """

    #: Tensors of a step are (draws, batch, C, H, W): the engine splits a batch between processes along dim 1.
    batch_dim = 1

    def __init__(
        self,
        sources: Mapping[str, ImageSource | ArraySource],
        *,
        batch_size: int,
        size: tuple[int, int],
        draws: Mapping[str, int],
        seed: int,
        mode: CropMode = "crop",
        rank: int = 0,
    ):
        if not sources:
            raise SimrealError("no image sources given")
        unknown = sorted(set(draws) - set(sources))
        if unknown:
            raise SimrealError(f"draws name unknown sources {unknown} (sources: {', '.join(sources)})")
        chans = {name: s.channels for name, s in sources.items()}
        if len(set(chans.values())) > 1:
            names = ", ".join(f"{name} in {sources[name].path or '(memory)'} are {_CHANNEL_NAMES[c]}" for name, c in chans.items())
            raise SimrealError(f"the image sets have different channel counts ({names}); the refiner maps one "
                               "to the other pixel for pixel, so both need the same channels")
        self.sources = dict(sources)
        self.batch_size, self.size, self.mode = int(batch_size), (int(size[0]), int(size[1])), mode
        self.draws = {k: int(v) for k, v in draws.items() if v > 0}
        self.seed, self.rank = int(seed), int(rank)
        self.channels = next(iter(chans.values()))

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        """Step ``step``'s images: name -> (draws[name], batch_size, C, H, W) float32 in [0, 1]."""
        out = {}
        for k, name in enumerate(sorted(self.draws)):
            source, n = self.sources[name], self.draws[name] * self.batch_size
            rng = np.random.default_rng([self.seed, int(step), self.rank, k])
            index = rng.integers(0, len(source), size=n)
            offsets = rng.random((n, 2))
            images = [crop_or_resize(source.read(int(i)), self.size, self.mode, (float(o[0]), float(o[1])))
                      for i, o in zip(index, offsets)]
            out[name] = torch.stack(images).view(self.draws[name], self.batch_size, self.channels, *self.size)
        return out

    def sample_batch(self, n: int) -> dict[str, torch.Tensor]:
        """Fixed images for sample grids: ``n`` evenly spaced images of every source (repeating when a
        source has fewer), centre-cropped: name -> (n, C, H, W)."""
        out = {}
        for name, source in self.sources.items():
            m = len(source)
            idx = [round(i * (m - 1) / max(n - 1, 1)) if m >= n else i % m for i in range(n)]
            out[name] = torch.stack([crop_or_resize(source.read(i), self.size, self.mode, None) for i in idx])
        return out


def open_unpaired(config: UnpairedDataConfig, *, draws: Mapping[str, int], seed: int) -> UnpairedBatches:
    """The :class:`UnpairedBatches` of a config's ``real`` and ``synthetic`` folders."""
    sources = {
        "real": ImageSource(config.real, what="real images"),
        "synthetic": ImageSource(config.synthetic, what="synthetic images"),
    }
    return UnpairedBatches(sources, batch_size=config.batch_size, size=config.size, draws=draws, seed=seed, mode=config.mode)
