"""Run a trained model over a dataset folder or a plain folder of images; write a simreal dataset.

Each input is read as RGB (grey replicated, alpha dropped), resized to the run's training size, and the
output is resized back to that input's own resolution: depth bilinearly (in mm), masks by the argmax of
bilinearly upsampled logits. The output dataset holds ``image`` (the input, as RGB PNG) and ``depth``
(float32 mm) or ``mask`` (class ids); every record's ``source`` is the input file. For a dataset input
the ids, groups and cameras are kept, so evaluation can pair predictions with ground truth by id; a
plain folder's images get ids ``000000, 000001, ...`` in sorted file-name order.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from simreal.data.format import Camera, DatasetInfo, LabelKind, SampleRecord
from simreal.data.images import IMAGE_EXTENSIONS, read_rgb
from simreal.data.reader import DatasetReader
from simreal.data.torch_dataset import resize_image
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError
from simreal.progress import progress_bar
from simreal.tasks.config import TrainConfig, read_config
from simreal.tasks.losses import seg_logits_to_labels, upsample_logits
from simreal.tasks.modules import DepthModule, TaskModule, build_module, checkpoint_task, load_checkpoint
from simreal.tasks.train import resolve_checkpoint

__all__ = ["predict", "load_model", "list_inputs"]


@dataclass(frozen=True)
class InputItem:
    """One image to predict: where it is and what its output record keeps."""

    id: str
    path: Path
    group: str | None = None
    camera: Camera | None = None


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[TaskModule, TrainConfig]:
    """The trained module of a run folder (best checkpoint, else last), in eval mode on ``device``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise SimrealError("run folder not found", run)
    config = read_config(run / "config.json")
    ckpt_path = resolve_checkpoint(run)
    ckpt = load_checkpoint(ckpt_path)
    if checkpoint_task(ckpt) != config.task:
        raise SimrealError(f"checkpoint task {checkpoint_task(ckpt)!r} does not match config.json's {config.task!r}", ckpt_path)
    module = build_module(TrainConfig.from_dict(ckpt["simreal"]["config"]))
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise SimrealError(f"checkpoint does not fit its config ({exc})", ckpt_path) from None
    return module.eval().to(device), config


def list_inputs(in_dir: str | Path) -> tuple[list[InputItem], DatasetInfo | None]:
    """Images to predict: a dataset's samples (ids, groups, cameras kept) or a folder's image files."""
    in_dir = Path(in_dir)
    if not in_dir.is_dir():
        raise SimrealError("input folder not found", in_dir)
    if (in_dir / "dataset.json").is_file():
        reader = DatasetReader(in_dir)
        if "image" not in reader.info.files:
            raise SimrealError("dataset has no images", in_dir)
        items = [InputItem(r.id, in_dir / r.files["image"], r.group, r.camera) for r in reader.records]
        if not items:
            raise SimrealError("dataset has no samples", in_dir)
        return items, reader.info
    files = sorted(p for p in in_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    if not files:
        raise SimrealError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the input folder", in_dir)
    return [InputItem(f"{i:06d}", p) for i, p in enumerate(files)], None


def _batches(items: list[InputItem], batch_size: int) -> Iterator[list[InputItem]]:
    for i in range(0, len(items), batch_size):
        yield items[i : i + batch_size]


@torch.no_grad()
def predict_arrays(module: TaskModule, rgbs: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
    """Predict a list of (H_i, W_i, 3) uint8 images; returns each output at its input's size.

    Depth: (H_i, W_i) float32 mm. Segmentation: (H_i, W_i) uint8 class ids.
    """
    device = next(module.parameters()).device
    x = torch.stack([
        resize_image(torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1))).float() / 255.0, size) for r in rgbs
    ]).to(device)
    if isinstance(module, DepthModule):
        # Bilinear on depth is fine for a prediction: it is smooth, with no 0 = "no surface" holes.
        out = module.predict_depth(x)
        return [
            F.interpolate(out[i : i + 1], size=r.shape[:2], mode="bilinear", align_corners=False)[0, 0].cpu().numpy().astype(np.float32)
            for i, r in enumerate(rgbs)
        ]
    logits = module.predict_logits(x)
    return [
        seg_logits_to_labels(upsample_logits(logits[i : i + 1], r.shape[:2]))[0].cpu().numpy().astype(np.uint8)
        for i, r in enumerate(rgbs)
    ]


def predict(
    run_dir: str | Path,
    in_dir: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    size: tuple[int, int] | None = None,
    device: str = "cpu",
    progress: bool | Callable[[int, int], None] = True,
) -> Path:
    """Predict depth or masks for every image of ``in_dir`` with the model of ``run_dir``.

    Args:
        run_dir: a training run folder (config.json + checkpoints/).
        in_dir: a simreal dataset folder, or a folder of PNG / JPEG / TIFF / BMP images of any size.
        out_dir: the output dataset folder (must not exist; written atomically).
        batch_size: images per forward pass.
        size: (H, W) the network reads; None = the run's training size.
        device: torch device ("cpu", "cuda").
        progress: True for a rich progress bar, False for none, or a callable ``(done, total)``.

    Returns:
        ``out_dir``.

    Raises:
        SimrealError: no images, a corrupt image, a run folder without checkpoint, an existing output.
    """
    if batch_size < 1:
        raise SimrealError(f"--batch-size must be >= 1, got {batch_size}")
    module, config = load_model(run_dir, device)
    size = tuple(size) if size is not None else tuple(config.data.size)
    if len(size) != 2 or min(size) < 8:
        raise SimrealError(f"--size must be (H, W) >= 8, got {size}")
    items, in_info = list_inputs(in_dir)
    kind = "depth" if config.task == "depth" else "mask"
    if kind == "depth":
        label = LabelKind(unit="mm", description="predicted z-depth")
    else:
        n = config.model.num_classes or 2
        label = LabelKind(classes={c: ("background" if c == 0 else f"class{c}") for c in range(n)}, description="predicted class ids")
        if in_info is not None and "mask" in in_info.labels and in_info.labels["mask"].classes and config.data.mask_map is None:
            names = in_info.labels["mask"].classes
            label = LabelKind(classes={c: names.get(c, f"class{c}") for c in range(n)}, description="predicted class ids")
    info = DatasetInfo(
        modality=in_info.modality if in_info else "image",
        domain=in_info.domain if in_info else "unknown",
        image_size=None,  # filled below once every size is known
        files=("image", kind),
        labels={kind: label},
        generator={"name": "simreal.predict", "run": str(Path(run_dir).resolve()), "task": config.task,
                   "input": str(Path(in_dir).resolve()), "size": list(size)},
        seed=None,
    )
    # resume=True: a .partial left by a killed run with the same arguments is simply rewritten.
    writer = DatasetWriter(out_dir, info, resume=True)
    sizes: set[tuple[int, int]] = set()
    with _reporter(progress, len(items)) as report:
        try:
            done = 0
            for chunk in _batches(items, batch_size):
                rgbs = [read_rgb(it.path) for it in chunk]
                outs = predict_arrays(module, rgbs, size)
                for it, rgb, out in zip(chunk, rgbs, outs):
                    sizes.add(rgb.shape[:2])
                    record = SampleRecord(id=it.id, files={}, camera=it.camera, source=str(it.path.resolve()), group=it.group)
                    writer.write(record, {"image": rgb, kind: out})
                done += len(chunk)
                report(done)
            # Same size everywhere -> say so; otherwise None (each output keeps its input's resolution).
            writer.info = DatasetInfo(**{**info.__dict__, "image_size": next(iter(sizes)) if len(sizes) == 1 else None})
            return writer.finish()
        except BaseException:
            writer.abort()
            raise


@contextmanager
def _reporter(progress: bool | Callable[[int, int], None], total: int) -> Iterator[Callable[[int], None]]:
    """``report(done)``: the caller's own ``(done, total)`` callback, or the shared progress bar."""
    if callable(progress):
        yield lambda done: progress(done, total)
        return
    with progress_bar("predicting", total, enabled=bool(progress), unit="images") as bar:
        yield bar.update
