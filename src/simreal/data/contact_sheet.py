"""A contact sheet a person can look at: RGB, depth colour-mapped with a scale bar, masks overlaid.

One cell per sample: the image, its depth map (one colour scale shared by the whole sheet, so colours
compare across frames), the image with the class mask outlined and tinted, and (datasets with
unsupervised masks) the guidance mask in grey with its edges in red.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from simreal.atomic import atomic_path
from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError

# Distinct tints for class ids 1..9 (0 = background is never tinted): enough for the 8 laparoscopy classes
# (Okabe-Ito's colour-blind-safe set, then two more); ids beyond repeat them.
_CLASS_COLOURS = np.array(
    [[0, 0, 0], [0, 200, 255], [230, 159, 0], [0, 158, 115], [240, 228, 66], [0, 114, 178], [213, 94, 0],
     [204, 121, 167], [255, 255, 255], [120, 255, 80]], dtype=np.float32
)


def overlay_mask(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Tint (H, W, 3) uint8 ``rgb`` where ``mask`` > 0 and draw the class boundaries opaque."""
    from scipy import ndimage

    out = rgb.astype(np.float32).copy()
    for cid in np.unique(mask):
        if cid == 0:
            continue
        colour = _CLASS_COLOURS[1 + (int(cid) - 1) % (len(_CLASS_COLOURS) - 1)]
        region = mask == cid
        out[region] = (1 - alpha) * out[region] + alpha * colour
        edge = region & ~ndimage.binary_erosion(region)
        out[edge] = colour
    return np.clip(out, 0, 255).astype(np.uint8)


def pick_indices(n_total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over a dataset of ``n_total`` samples."""
    if n_total <= 0:
        return []
    n = min(n, n_total)
    return sorted({int(round(x)) for x in np.linspace(0, n_total - 1, n)})


def contact_sheet(
    datasets: Sequence[str | Path],
    out: str | Path,
    *,
    n: int = 16,
    columns: int = 4,
    title: str | None = None,
) -> Path:
    """Write a PNG contact sheet of ``n`` samples drawn evenly from one or more datasets.

    Args:
        datasets: dataset folders; samples are taken evenly from each in turn.
        out: PNG path to write.
        n: number of samples in total.
        columns: samples per row (each sample takes up to three panels: image, depth, mask overlay).
        title: sheet title (default: the dataset names).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    readers = [DatasetReader(d) for d in datasets]
    per = [n // len(readers) + (1 if i < n % len(readers) else 0) for i in range(len(readers))]
    chosen = [(r, i) for r, k in zip(readers, per) for i in pick_indices(len(r), k)]
    if not chosen:
        raise SimrealError("nothing to show: the dataset has no samples", Path(datasets[0]))
    has_depth = any("depth" in r.info.files for r in readers)
    has_mask = any("mask" in r.info.files for r in readers)
    has_guidance = any("guidance" in r.info.files for r in readers)
    panels = 1 + has_depth + has_mask + has_guidance

    depths = {}
    if has_depth:
        for r, i in chosen:
            if "depth" in r.records[i].files:
                depths[(id(r), i)] = r.read(i, "depth")
        valid = np.concatenate([d[d > 0] for d in depths.values()] or [np.zeros(1)])
        vmin, vmax = (np.percentile(valid, [1, 99]) if valid.size > 1 else (0.0, 1.0))
        vmax = max(vmax, vmin + 1e-3)

    rows = int(np.ceil(len(chosen) / columns))
    cols = columns * panels
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols + 0.8, 1.75 * rows + 0.4), squeeze=False)
    fig.subplots_adjust(left=0.005, right=0.93, bottom=0.005, top=1 - 0.4 / (1.75 * rows + 0.4), wspace=0.03, hspace=0.12)
    for ax in axes.flat:
        ax.axis("off")
    mappable = None
    for k, (r, i) in enumerate(chosen):
        row, col = divmod(k, columns)
        col *= panels
        rgb = r.read(i, "image")
        axes[row, col].imshow(rgb)
        axes[row, col].set_title(f"{r.root.name}/{r.records[i].id}", fontsize=6)
        if has_depth:
            d = depths.get((id(r), i))
            if d is not None:
                shown = np.ma.masked_where(d <= 0, d)
                mappable = axes[row, col + 1].imshow(shown, cmap="turbo", vmin=vmin, vmax=vmax)
                axes[row, col + 1].set_title("depth", fontsize=6)
        if has_mask and "mask" in r.records[i].files:
            m = r.read(i, "mask")
            axes[row, col + 1 + has_depth].imshow(overlay_mask(rgb, m))
            axes[row, col + 1 + has_depth].set_title(f"mask ({int((m > 0).sum())} px)", fontsize=6)
        if has_guidance and "guidance" in r.records[i].files:
            g = r.read(i, "guidance")
            shown = np.repeat(g[..., None], 3, axis=2)
            if "edges" in r.records[i].files:
                shown[r.read(i, "edges") > 0] = (255, 40, 40)  # the boundaries in red on the guidance
            axes[row, col + panels - 1].imshow(shown)
            axes[row, col + panels - 1].set_title(f"guidance ({len(np.unique(g))} levels) + edges", fontsize=6)
    fig.suptitle(title or " + ".join(str(r.root.name) for r in readers), fontsize=9)
    if mappable is not None:
        cbar = fig.colorbar(mappable, cax=fig.add_axes((0.945, 0.1, 0.012, 0.75)))
        cbar.set_label("depth (mm)")
    out = Path(out)
    try:
        with atomic_path(out) as tmp:
            fig.savefig(tmp, dpi=100, format="png")  # the temporary's name ends in .tmp: say the format
    except OSError as exc:
        raise SimrealError(f"cannot write the contact sheet ({exc.strerror})", out) from None
    finally:
        plt.close(fig)
    return out
