"""MM-FID and MM-STD: FID and feature spread over several image scales and feature extractors.

The UM-synthesis paper's image-set metrics (methods.md 3.5; released as ``ayanglab/MedSynAnalyzer``):

    for each extractor m and scale s (default {128, 256, 512, 1024}):
        images -> grey -> resize to s x s -> 3 channels -> features (N, D)
        FID[m, s] = Frechet distance of the features of A (reference, real) and B (synthetic)
        STD[m, s] = mean over the D feature dims of the population std (ddof 0) over B's samples
    MM-FID = aggregate(FID), MM-STD = aggregate(STD)

Aggregations (``aggregate=``):

* ``"l2-row"`` (the released one): each extractor's row of values is L2-normalised across the scales
  (``sklearn.preprocessing.normalize`` semantics: a zero row stays zero), then all entries are averaged.
  **Quirk:** this erases the absolute scale. A row ``[f, f, f, f]`` gives 0.5 whatever f is, and with
  one extractor and 4 scales the result always lies in [0.25, 0.5] for non-negative FIDs (0.5 for equal
  FIDs, 0.25 when one scale dominates), so a better generator need not score lower: a set compared with
  itself scores 0 only because its FIDs are exactly zero, and round-off-sized FIDs are blown up to
  unit norm. Kept for comparison with published numbers; prefer an absolute mode to rank models.
* ``"mean"``: the plain mean of the FIDs (absolute; MM-FID(X, X) = 0).
* ``"ref-normalised"``: each FID divided by a reference FID at the same (extractor, scale): the FID
  between two random halves of A (real vs real, seeded), i.e. "how many times the real-vs-real distance";
  STD is divided by A's own STD. Note the halves hold n_A / 2 images, and FID is biased upwards at small
  n, so the reference is an upper estimate of the real-vs-real FID at n_A.

The released code also drops the last partial batch (``drop_last=True``) and shuffles; here every image
counts, in a fixed order. The released code reports ``mean (std)`` over the normalised entries: both
are returned.

Preprocessing as the released code: RGB -> grey by ITU-R 601 luma (PIL ``convert("L")``, exact integer
formula), bilinear resize with anti-aliasing (PIL-like, ``antialias=True``) to s x s, grey repeated to 3
channels, values in [0, 1] handed to the extractor (the FID Inception maps them to its own range).
Extractors must keep sizes (``input_size=None``): the default is the FID Inception-v3 of
:mod:`simreal.metrics.features` with globally pooled features at the native size
(``InceptionV3Features(input_size=None)``), which needs s >= 75.

Example:
    >>> r = mm_fid("real_ct/", "synthetic_ct/", scales=(128, 256))          # doctest: +SKIP
    >>> r.mm_fid, r.summary("mean")                                          # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from simreal.errors import SimrealError
from simreal.metrics.features import FeatureExtractor
from simreal.metrics.fid import FidMethod, fid_from_features

__all__ = [
    "AGGREGATES",
    "DEFAULT_SCALES",
    "MultiScaleResult",
    "aggregate",
    "feature_std",
    "grey_luma",
    "l2_normalise_rows",
    "mm_fid",
    "mm_fid_from_features",
    "multiscale_features",
    "reference_halves",
]

#: The scales of the paper: 2^7 .. 2^10 pixels.
DEFAULT_SCALES = (128, 256, 512, 1024)

Aggregate = Literal["l2-row", "mean", "ref-normalised"]
AGGREGATES = ("l2-row", "mean", "ref-normalised")

#: Features of one image set: (extractor name, scale) -> (N, D).
Features = dict[tuple[str, int], np.ndarray]


# --- pure functions -------------------------------------------------------------------------------------


def feature_std(features: Any) -> float:
    """MM-STD's per-set spread: the mean over feature dims of the population std (ddof 0) over samples.

    Args:
        features: (N, D), N >= 1.

    Example:
        >>> feature_std([[0.0, 0.0], [2.0, 4.0]])
        1.5
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or not np.isfinite(x).all():
        raise SimrealError(f"features must be a finite (N, D) array with N >= 1, got shape {x.shape}")
    return float(x.std(axis=0).mean())


def l2_normalise_rows(matrix: Any) -> np.ndarray:
    """Each row divided by its L2 norm; a zero row stays zero (``sklearn.preprocessing.normalize``).

    Example:
        >>> l2_normalise_rows([[3.0, 4.0], [0.0, 0.0]]).tolist()
        [[0.6, 0.8], [0.0, 0.0]]
    """
    m = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    if m.ndim != 2:
        raise SimrealError(f"expected a (M, S) matrix, got shape {m.shape}")
    norms = np.sqrt((m * m).sum(axis=1, keepdims=True))
    norms[norms == 0] = 1.0
    return m / norms


def aggregate(values: Any, mode: Aggregate = "l2-row", reference: Any = None) -> tuple[float, float]:
    """Aggregate a (extractors, scales) matrix of FIDs (or STDs) to one number.

    Args:
        values: (M, S) matrix.
        mode: "l2-row" (released: rows L2-normalised, then the mean), "mean" (absolute), or
            "ref-normalised" (``values / reference`` element-wise, then the mean).
        reference: (M, S) positive matrix, for "ref-normalised".

    Returns:
        ``(mean, std)`` over the (transformed) entries; std is the population std, as the released
        ``np.std``.

    Example:
        >>> aggregate([[1.0, 1.0, 1.0, 1.0]], "l2-row")
        (0.5, 0.0)
        >>> aggregate([[1.0, 2.0, 3.0, 6.0]], "mean")
        (3.0, 1.8708286933869707)
    """
    m = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if m.ndim != 2 or m.size == 0 or not np.isfinite(m).all():
        raise SimrealError(f"values must be a finite, non-empty (M, S) matrix, got shape {m.shape}")
    if mode == "l2-row":
        t = l2_normalise_rows(m)
    elif mode == "mean":
        t = m
    elif mode == "ref-normalised":
        if reference is None:
            raise SimrealError("aggregate 'ref-normalised' needs a reference matrix")
        ref = np.atleast_2d(np.asarray(reference, dtype=np.float64))
        if ref.shape != m.shape:
            raise SimrealError(f"reference must be {m.shape} like the values, got shape {ref.shape}")
        if not (np.isfinite(ref).all() and (ref > 0).all()):
            raise SimrealError("reference values must be finite and positive (a zero reference FID cannot normalise)")
        t = m / ref
    else:
        raise SimrealError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {mode!r}")
    return float(t.mean()), float(t.std())


def _fid(a: np.ndarray, b: np.ndarray, method: FidMethod) -> float:
    from scipy.linalg import LinAlgWarning

    # scipy warns on the singular covariances of small sets (n <= D); fid_from_features already retries
    # with eps * I, and the warning would break the CLI's clean output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)
        value = fid_from_features(a, b, method=method)
    # Round-off can make FID(X, X) -1e-12; clipped so that l2-row of identical sets is exactly 0.
    return max(0.0, value)


def reference_halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of ``range(n)`` into two halves (sizes n // 2 and n - n // 2) for real-vs-real FIDs."""
    if n < 4:
        raise SimrealError(f"a real-vs-real reference needs at least 4 images in A, got {n}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


# --- results --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MultiScaleResult:
    """FID and STD per (extractor, scale) and their aggregates.

    Attributes:
        extractors: row names (extractor names).
        scales: column names (pixels).
        fid: (M, S) FID between A and B.
        std: (M, S) feature spread of B (:func:`feature_std`).
        aggregate: the aggregation of ``mm_fid`` / ``mm_std``.
        mm_fid, mm_fid_spread: the aggregate of ``fid`` (mean and std over entries).
        mm_std, mm_std_spread: the aggregate of ``std``.
        n_a, n_b: images in each set (all of them: nothing is dropped).
        reference_fid: (M, S) FID between two halves of A, or None.
        reference_std: (M, S) spread of A, or None.
    """

    extractors: tuple[str, ...]
    scales: tuple[int, ...]
    fid: np.ndarray
    std: np.ndarray
    aggregate: str
    mm_fid: float
    mm_fid_spread: float
    mm_std: float
    mm_std_spread: float
    n_a: int
    n_b: int
    reference_fid: np.ndarray | None = None
    reference_std: np.ndarray | None = None

    def summary(self, mode: Aggregate) -> dict[str, float]:
        """MM-FID and MM-STD (mean, spread) under another aggregation of the same matrices."""
        ref_f = self.reference_fid if mode == "ref-normalised" else None
        ref_s = self.reference_std if mode == "ref-normalised" else None
        if mode == "ref-normalised" and ref_f is None:
            raise SimrealError("this result was computed without a reference (use aggregate='ref-normalised')")
        f, fs = aggregate(self.fid, mode, ref_f)
        s, ss = aggregate(self.std, mode, ref_s)
        return {"mm_fid": f, "mm_fid_spread": fs, "mm_std": s, "mm_std_spread": ss}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "extractors": list(self.extractors),
            "scales": list(self.scales),
            "fid": self.fid.tolist(),
            "std": self.std.tolist(),
            "aggregate": self.aggregate,
            "mm_fid": self.mm_fid,
            "mm_fid_spread": self.mm_fid_spread,
            "mm_std": self.mm_std,
            "mm_std_spread": self.mm_std_spread,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "all_aggregates": {m: self.summary(m) for m in ("l2-row", "mean")},  # type: ignore[arg-type]
        }
        if self.reference_fid is not None:
            out["reference_fid"] = self.reference_fid.tolist()
            out["reference_std"] = None if self.reference_std is None else self.reference_std.tolist()
            out["all_aggregates"]["ref-normalised"] = self.summary("ref-normalised")
        return out


def mm_fid_from_features(
    features_a: Features,
    features_b: Features,
    extractors: Sequence[str],
    scales: Sequence[int],
    *,
    aggregate_mode: Aggregate = "l2-row",
    reference_seed: int = 0,
    fid_method: FidMethod = "sqrtm",
) -> MultiScaleResult:
    """MM-FID and MM-STD from precomputed features of A (reference) and B (evaluated).

    Args:
        features_a, features_b: (extractor name, scale) -> (N, D) features.
        extractors, scales: the rows and columns, in order.
        aggregate_mode: "l2-row", "mean" or "ref-normalised" (see the module docstring).
        reference_seed: seed of A's split into halves for "ref-normalised".
        fid_method: "sqrtm" (standard) or "eigh" (same value, faster at high D).
    """
    extractors, scales = tuple(extractors), tuple(int(s) for s in scales)
    if not extractors or not scales:
        raise SimrealError("MM-FID needs at least one extractor and one scale")
    if len(set(extractors)) != len(extractors):
        raise SimrealError(f"extractor names must differ, got {list(extractors)}")
    if aggregate_mode not in AGGREGATES:
        raise SimrealError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate_mode!r}")
    m, s = len(extractors), len(scales)
    fid = np.zeros((m, s))
    std = np.zeros((m, s))
    ref_fid = np.zeros((m, s)) if aggregate_mode == "ref-normalised" else None
    ref_std = np.zeros((m, s)) if aggregate_mode == "ref-normalised" else None
    n_a = n_b = 0
    for i, name in enumerate(extractors):
        for j, scale in enumerate(scales):
            try:
                fa, fb = np.asarray(features_a[(name, scale)]), np.asarray(features_b[(name, scale)])
            except KeyError:
                raise SimrealError(f"no features for extractor {name!r} at scale {scale}") from None
            n_a, n_b = fa.shape[0], fb.shape[0]
            fid[i, j] = _fid(fa, fb, fid_method)
            std[i, j] = feature_std(fb)
            if ref_fid is not None and ref_std is not None:
                h1, h2 = reference_halves(fa.shape[0], reference_seed)
                ref_fid[i, j] = _fid(fa[h1], fa[h2], fid_method)
                ref_std[i, j] = feature_std(fa)
    f, fs = aggregate(fid, aggregate_mode, ref_fid)
    sd, ss = aggregate(std, aggregate_mode, ref_std)
    return MultiScaleResult(
        extractors=extractors,
        scales=scales,
        fid=fid,
        std=std,
        aggregate=aggregate_mode,
        mm_fid=f,
        mm_fid_spread=fs,
        mm_std=sd,
        mm_std_spread=ss,
        n_a=n_a,
        n_b=n_b,
        reference_fid=ref_fid,
        reference_std=ref_std,
    )


# --- images -> features ------------------------------------------------------------------------------------


def grey_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 grey, exactly as PIL ``convert("L")`` (ITU-R 601-2 luma)."""
    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        return rgb.astype(np.uint8)
    r, g, b = (rgb[..., c].astype(np.uint32) for c in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def _check_extractor(extractor: Any) -> None:
    if not isinstance(extractor, FeatureExtractor):
        raise SimrealError(
            f"{type(extractor).__name__} is not a feature extractor: it needs name, num_features, input_size and __call__"
        )
    if getattr(extractor, "input_size", None) is not None:
        raise SimrealError(
            f"extractor {extractor.name!r} resizes every image to {extractor.input_size}: MM-FID needs one that keeps "
            "sizes (input_size=None, e.g. InceptionV3Features(input_size=None))"
        )


def multiscale_features(
    root: str | Path,
    extractors: Sequence[FeatureExtractor],
    scales: Sequence[int] = DEFAULT_SCALES,
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> Features:
    """Features of every image of a folder or simreal dataset at every scale, for every extractor.

    Each image is decoded once, turned grey (:func:`grey_luma`) and resized to each scale (bilinear,
    anti-aliased); batches of ``batch_size`` images go through each extractor at each scale. Every image
    counts: the last batch may be smaller (the released code drops it).

    Args:
        root: image folder (``*.png/jpg/...``) or simreal dataset (its "image" files).
        extractors: feature extractors that keep sizes (``input_size=None``), distinct names.
        scales: square sizes in pixels.
        batch_size: images per forward pass.
        device: where the extractors run.
        progress: called with (images done, total).

    Returns:
        (extractor name, scale) -> (N, D) float32 features, rows in the image set's order.
    """
    from simreal.data.images import read_rgb
    from simreal.metrics.features import open_image_set

    for e in extractors:
        _check_extractor(e)
    names = [e.name for e in extractors]
    if not names or len(set(names)) != len(names):
        raise SimrealError(f"give at least one extractor, with distinct names (got {names})")
    scales = tuple(int(s) for s in scales)
    if not scales or min(scales) < 1 or len(set(scales)) != len(scales):
        raise SimrealError(f"scales must be distinct positive sizes in pixels, got {list(scales)}")
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise SimrealError(f"batch_size must be a positive integer, got {batch_size!r}")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SimrealError(f"unknown device {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimrealError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    for e in extractors:
        if isinstance(e, torch.nn.Module):
            e.to(dev).eval()
    image_set = open_image_set(root)
    paths = image_set.paths
    n = len(paths)
    out: Features = {(e.name, s): np.empty((n, int(e.num_features)), np.float32) for e in extractors for s in scales}
    for start in range(0, n, batch_size):
        chunk = paths[start : start + batch_size]
        greys = [torch.from_numpy(grey_luma(read_rgb(p))).float().div_(255.0)[None, None] for p in chunk]
        for s in scales:
            x = torch.cat(
                [g if tuple(g.shape[-2:]) == (s, s) else F.interpolate(g, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
                 for g in greys]
            ).clamp_(0.0, 1.0).expand(-1, 3, -1, -1).to(dev)
            for e in extractors:
                with torch.inference_mode():
                    feats = e(x)
                d = int(e.num_features)
                if not isinstance(feats, torch.Tensor) or tuple(feats.shape) != (len(chunk), d):
                    shape = tuple(feats.shape) if isinstance(feats, torch.Tensor) else type(feats).__name__
                    raise SimrealError(f"feature extractor {e.name!r} returned {shape} at {s} px, expected ({len(chunk)}, {d})")
                arr = feats.detach().float().cpu().numpy()
                if not np.isfinite(arr).all():
                    raise SimrealError(f"feature extractor {e.name!r} returned NaN/inf at {s} px for {chunk[0].name} ..", image_set.root)
                out[(e.name, s)][start : start + len(chunk)] = arr
        if progress is not None:
            progress(start + len(chunk), n)
    return out


def mm_fid(
    a: str | Path,
    b: str | Path,
    *,
    extractors: Sequence[FeatureExtractor] | None = None,
    scales: Sequence[int] = DEFAULT_SCALES,
    aggregate_mode: Aggregate = "l2-row",
    batch_size: int = 16,
    device: str = "cpu",
    reference_seed: int = 0,
    fid_method: FidMethod = "sqrtm",
    progress: Callable[[str, int, int], None] | None = None,
) -> MultiScaleResult:
    """MM-FID and MM-STD between image set A (reference, e.g. real CT) and B (e.g. synthetic).

    Args:
        a, b: image folders or simreal datasets (their "image" files).
        extractors: feature extractors that keep sizes; default the FID Inception-v3 at native size.
        scales: square sizes (default 128, 256, 512, 1024; the Inception needs >= 75).
        aggregate_mode: "l2-row" (released), "mean" (absolute) or "ref-normalised" (module docstring).
        batch_size, device: featurisation.
        reference_seed: seed of A's halves for "ref-normalised".
        fid_method: "sqrtm" or "eigh".
        progress: called as ``progress(set_label, done, total)`` with labels "A" and "B".

    Raises:
        SimrealError: missing or unreadable images (named), fewer than 2 images in a set, bad options.
    """
    if extractors is None:
        from simreal.metrics.features import InceptionV3Features

        extractors = [InceptionV3Features(input_size=None)]
    feats = {}
    for label, root in (("A", a), ("B", b)):
        if label == "B" and Path(b).resolve() == Path(a).resolve():
            feats["B"] = feats["A"]  # the same set twice: featurise it once
            continue
        cb = None if progress is None else (lambda done, total, _l=label: progress(_l, done, total))
        feats[label] = multiscale_features(root, extractors, scales, batch_size=batch_size, device=device, progress=cb)
    for label, root in (("A", a), ("B", b)):
        n = next(iter(feats[label].values())).shape[0]
        if n < 2:
            raise SimrealError(f"MM-FID needs at least 2 images per set, set {label} has {n}", root)
    return mm_fid_from_features(
        feats["A"],
        feats["B"],
        [e.name for e in extractors],
        scales,
        aggregate_mode=aggregate_mode,
        reference_seed=reference_seed,
        fid_method=fid_method,
    )
