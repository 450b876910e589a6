"""Memorisation check: do synthetic slices sit closer to the training slices than real unseen slices do?

A generator that copies its training slices makes samples whose nearest training slice is much closer
than any real slice of an unseen patient ever is. For every synthetic sample this computes the distance
to its nearest training slice, and for every real held-out slice the same distance (the reference):

* images are the 8-bit windowed "image" files (grey), area-downsampled to ``size`` x ``size`` (32) and
  scaled to [0, 1], so small misalignments and noise count little;
* ``metric="l2"``: root-mean-square difference of the downsampled images (0 = identical, 1 = black vs
  white); ``metric="ssim"``: ``1 - SSIM`` computed once over the whole downsampled image (global means,
  variances and covariance, constants ``(0.01)^2`` and ``(0.03)^2``), cheap enough for all pairs.

References, all in the summary (``summarise`` plus the keys below):

* **held-out real slices** (``heldout_*``): real slices of a patient the run never saw, each to its
  nearest training slice; ``closer_than_heldout_q05`` is the share of samples closer to the training set
  than the 5th percentile of these; ``mannwhitney_p_closer`` a one-sided Mann-Whitney p-value (samples
  closer than held-out). The held-out patient may come from another scanner or collection, which alone
  makes it far;
* **other training patients** (``cross_patient_*``): each real training slice to the nearest slice of
  the *other* training patients (a within-collection reference that needs no held-out patient);
* **the scale of a copy** (``neighbour_median``): each training slice to the nearest other slice of its
  own patient (usually its z-neighbour); ``closer_than_neighbour_median`` is the share of samples that sit
  closer to a training slice than neighbouring real slices sit to each other: as good as copies;
* ``copies``: the share of samples below ``copy_threshold`` (default: ``neighbour_median``, else 0.02 for
  "l2" and 0.002 for "ssim").

Samples are drawn from perturbed guidance of training slices, so some closeness to them is expected;
near-copies are what memorisation looks like. Slices of one patient are not independent (neighbouring
slices look alike), so the p-value is descriptive: read the medians side by side.

Example:
    >>> a = np.zeros((2, 4)); b = np.array([[0, 0, 0, 0], [1, 1, 1, 1.0]])
    >>> pairwise_distances(a, b).tolist()
    [[0.0, 1.0], [0.0, 1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from simreal.errors import SimrealError

__all__ = [
    "MemorisationReport",
    "cross_patient_distances",
    "within_patient_distances",
    "downsample_images",
    "memorisation_check",
    "memorisation_from_run",
    "nearest_neighbours",
    "pairwise_distances",
    "summarise",
]

Metric = Literal["l2", "ssim"]
_C1, _C2 = 0.01**2, 0.03**2


def downsample_images(images: np.ndarray, size: int = 32) -> np.ndarray:
    """(N, H, W) grey images (uint8 0..255 or float 0..1) -> (N, size * size) float64 in [0, 1], area-averaged
    (anti-aliased bilinear when the side does not divide)."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(images)
    if x.ndim != 3:
        raise SimrealError(f"images must be (N, H, W), got shape {x.shape}")
    if size < 1:
        raise SimrealError(f"size must be >= 1, got {size}")
    t = torch.from_numpy(x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0))[:, None]
    h, w = x.shape[1:]
    if (h, w) != (size, size):
        if h % size == 0 and w % size == 0:
            t = F.adaptive_avg_pool2d(t, size)
        else:
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return t[:, 0].reshape(len(x), -1).numpy()


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: Metric = "l2") -> np.ndarray:
    """(N, D) x (M, D) flattened images -> (N, M) distances ("l2": RMS difference; "ssim": 1 - global SSIM)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise SimrealError(f"need (N, D) and (M, D) arrays with one D, got {a.shape} and {b.shape}")
    d = a.shape[1]
    if metric == "l2":
        sq = (a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T
        return np.sqrt(np.clip(sq, 0, None) / d)
    if metric == "ssim":
        ma, mb = a.mean(1), b.mean(1)
        va, vb = a.var(1), b.var(1)
        cov = (a @ b.T) / d - ma[:, None] * mb[None]
        ssim = ((2 * ma[:, None] * mb[None] + _C1) * (2 * cov + _C2)) / (
            (ma[:, None] ** 2 + mb[None] ** 2 + _C1) * (va[:, None] + vb[None] + _C2))
        return 1.0 - ssim
    raise SimrealError(f"metric must be 'l2' or 'ssim', got {metric!r}")


def nearest_neighbours(queries: np.ndarray, references: np.ndarray, metric: Metric = "l2", chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each query row, the distance to its nearest reference row and that row's index ((N,), (N,))."""
    if len(references) == 0:
        raise SimrealError("no reference images")
    dist, idx = np.empty(len(queries)), np.empty(len(queries), np.int64)
    for s in range(0, len(queries), chunk):
        d = pairwise_distances(queries[s : s + chunk], references, metric)
        j = d.argmin(1)
        idx[s : s + chunk], dist[s : s + chunk] = j, d[np.arange(len(j)), j]
    return dist, idx


def summarise(sample_dist: np.ndarray, heldout_dist: np.ndarray | None, copy_threshold: float = 0.02) -> dict[str, Any]:
    """The report's numbers (see the module docstring) from the two distance arrays."""
    s = np.asarray(sample_dist, np.float64)
    out: dict[str, Any] = {
        "n_samples": int(len(s)),
        "sample_median": float(np.median(s)), "sample_q05": float(np.quantile(s, 0.05)), "sample_mean": float(s.mean()),
        "copies": float((s < copy_threshold).mean()), "copy_threshold": float(copy_threshold),
    }
    if heldout_dist is not None and len(heldout_dist):
        h = np.asarray(heldout_dist, np.float64)
        q05 = float(np.quantile(h, 0.05))
        out.update({
            "n_heldout": int(len(h)),
            "heldout_median": float(np.median(h)), "heldout_q05": q05, "heldout_mean": float(h.mean()),
            "closer_than_heldout_q05": float((s < q05).mean()),
            "median_ratio": float(np.median(s) / np.median(h)) if np.median(h) > 0 else float("nan"),
        })
        from scipy.stats import mannwhitneyu

        out["mannwhitney_p_closer"] = float(mannwhitneyu(s, h, alternative="less").pvalue) if len(s) and len(h) else float("nan")
    return out


@dataclass
class MemorisationReport:
    """Per-image nearest-training distances of samples and held-out real slices, with the summary.

    Attributes:
        sample_ids, sample_distance, sample_nearest: each sample, its distance, its nearest training slice id.
        heldout_ids, heldout_distance, heldout_nearest: the same for the real held-out slices (may be empty).
        cross_distance: each training slice's distance to the nearest slice of another training patient
            (:func:`cross_patient_distances`; empty with one training patient).
        summary: :func:`summarise`'s numbers plus metric, size and n_train.
    """

    sample_ids: list[str]
    sample_distance: np.ndarray
    sample_nearest: list[str]
    heldout_ids: list[str] = field(default_factory=list)
    heldout_distance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heldout_nearest: list[str] = field(default_factory=list)
    cross_distance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    summary: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One row per image: ``set`` ("sample" / "heldout"), ``id``, ``distance``, ``nearest_train``."""
        out = [{"set": "sample", "id": i, "distance": float(d), "nearest_train": n}
               for i, d, n in zip(self.sample_ids, self.sample_distance, self.sample_nearest)]
        out += [{"set": "heldout", "id": i, "distance": float(d), "nearest_train": n}
                for i, d, n in zip(self.heldout_ids, self.heldout_distance, self.heldout_nearest)]
        return out


def _grey_images(reader: Any, indices: Sequence[int], kind: str) -> np.ndarray:
    arrs = []
    for i in indices:
        a = reader.read(i, kind)
        arrs.append(a[..., 0] if a.ndim == 3 else a)
    shapes = {a.shape for a in arrs}
    if len(shapes) > 1:
        raise SimrealError(f"images of different sizes {sorted(shapes)}; the check needs one size per dataset", reader.root)
    return np.stack(arrs)


def _indices(reader: Any, ids: Sequence[str] | None) -> list[int]:
    if ids is None:
        return list(range(len(reader)))
    pos = {rid: i for i, rid in enumerate(reader.ids)}
    missing = [i for i in ids if i not in pos]
    if missing:
        raise SimrealError(f"{len(missing)} ids not in the dataset (e.g. {missing[0]!r})", reader.root)
    return [pos[i] for i in ids]


def memorisation_check(
    samples: str | Path,
    train: str | Path,
    heldout: str | Path | None = None,
    *,
    train_ids: Sequence[str] | None = None,
    heldout_ids: Sequence[str] | None = None,
    size: int = 32,
    metric: Metric = "l2",
    copy_threshold: float | None = None,
) -> MemorisationReport:
    """Nearest-training-slice distances of a synthetic dataset's images and of real held-out images.

    Args:
        samples: the synthetic dataset (``simreal synth sample``).
        train: the dataset holding the training slices; ``train_ids`` restricts it (None: all).
        heldout: the dataset of real unseen slices (None: ``train`` itself, with ``heldout_ids``); None with
            no ``heldout_ids`` skips the reference.
        size: side of the downsampled images compared.
        metric: "l2" or "ssim" (module docstring).
        copy_threshold: distances below this count as near-copies (None: the median distance between a
            training slice and its nearest slice of the same patient, else 0.02 for "l2", 0.002 for "ssim").

    Raises:
        SimrealError: unreadable datasets, unknown ids, training and held-out ids that overlap in one dataset.
    """
    from simreal.data.reader import DatasetReader

    sr, tr = DatasetReader(samples), DatasetReader(train)
    ti = _indices(tr, train_ids)
    ref = downsample_images(_grey_images(tr, ti, "image"), size)
    train_names = [tr.ids[i] for i in ti]
    s_img = downsample_images(_grey_images(sr, range(len(sr)), "image"), size)
    sd, sn = nearest_neighbours(s_img, ref, metric)
    report = MemorisationReport(sample_ids=list(sr.ids), sample_distance=sd, sample_nearest=[train_names[j] for j in sn])
    hr = None
    if heldout is not None:
        hr = DatasetReader(heldout)
    elif heldout_ids is not None:
        hr = tr
    if hr is not None:
        hi = _indices(hr, heldout_ids)
        if hr is tr and set(hi) & set(ti):
            raise SimrealError("held-out ids overlap the training ids", tr.root)
        if hi:
            h_img = downsample_images(_grey_images(hr, hi, "image"), size)
            hd, hn = nearest_neighbours(h_img, ref, metric)
            report.heldout_ids, report.heldout_distance, report.heldout_nearest = [hr.ids[i] for i in hi], hd, [train_names[j] for j in hn]
    groups = [tr.records[i].group for i in ti]
    within = within_patient_distances(ref, groups, metric)
    if copy_threshold is None:
        copy_threshold = float(np.median(within)) if within is not None else (0.02 if metric == "l2" else 0.002)
    report.summary = {**summarise(sd, report.heldout_distance if hr is not None else None, copy_threshold),
                      "metric": metric, "size": size, "n_train": len(ti)}
    if within is not None:
        report.summary.update({"neighbour_median": float(np.median(within)),
                               "closer_than_neighbour_median": float((sd < np.median(within)).mean())})
    cross = cross_patient_distances(ref, groups, metric)
    if cross is not None:
        report.cross_distance = cross
        report.summary.update({"cross_patient_median": float(np.median(cross)), "cross_patient_q05": float(np.quantile(cross, 0.05)),
                               "closer_than_cross_patient_q05": float((sd < np.quantile(cross, 0.05)).mean())})
    return report


def within_patient_distances(images: np.ndarray, groups: Sequence[Any], metric: Metric = "l2") -> np.ndarray | None:
    """Each image's distance to the nearest *other* image of its own patient (usually its z-neighbour), for
    the images of patients with at least two (others are left out); None when no patient has two.

    The median is the scale of "as close as two neighbouring real slices": a sample closer than that to a
    training slice is as good as a copy of it.
    """
    g = np.array([str(x) for x in groups])
    out = np.full(len(images), np.nan)
    for name in np.unique(g):
        own = np.flatnonzero(g == name)
        if len(own) < 2:
            continue
        d = pairwise_distances(images[own], images[own], metric)
        np.fill_diagonal(d, np.inf)
        out[own] = d.min(1)
    return None if np.isnan(out).all() else out[~np.isnan(out)]


def cross_patient_distances(images: np.ndarray, groups: Sequence[Any], metric: Metric = "l2") -> np.ndarray | None:
    """Each image's distance to its nearest image of *another* patient (None with fewer than 2 patients).

    A within-collection reference: how close a real slice of one training patient comes to the other
    training patients' slices (the held-out patient may come from another scanner or collection).
    """
    g = np.array([str(x) for x in groups])
    names = np.unique(g)
    if len(names) < 2:
        return None
    out = np.empty(len(images))
    for name in names:
        own = g == name
        out[own] = nearest_neighbours(images[own], images[~own], metric)[0]
    return out


def memorisation_from_run(run: str | Path, samples: str | Path, heldout: str | Path | None = None, **kw: Any) -> MemorisationReport:
    """:func:`memorisation_check` against a ``synth train`` run's own training slices (its ``data.json``).

    Held-out reference: ``heldout`` if given, else the run's dataset slices of patients the run never saw.
    """
    import json

    from simreal.data.reader import DatasetReader
    from simreal.synth.um import DATA_JSON

    path = Path(run) / DATA_JSON
    if not path.is_file():
        raise SimrealError("no data.json: not a synth train run folder (or it never started)", run)
    d = json.loads(path.read_text())
    train_ids = list(d["labelled"]) + list(d["unlabelled"])
    heldout_ids = None
    if heldout is None:
        reader = DatasetReader(d["data"])
        seen = set(d["groups"])
        heldout_ids = [r.id for r in reader.records if str(r.group) not in seen]
    return memorisation_check(samples, d["data"], heldout, train_ids=train_ids, heldout_ids=heldout_ids, **kw)
