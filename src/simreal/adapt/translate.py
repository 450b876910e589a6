"""Apply a trained sim-to-real translator (MUNIT, CycleGAN) to a dataset: a new dataset, the same labels.

:func:`translate_dataset` translates every image of a simreal dataset (or a plain image folder) with a
``simreal adapt forward`` run and writes a simreal dataset with domain ``"translated"``:

* **K styles, one dataset.** With ``styles=1`` each output sample keeps its input's id, so evaluations
  pair translated and source samples by id. With ``styles=K > 1`` every input gives K samples with ids
  ``<id>_s00`` ... ``<id>_s{K-1}`` (two digits, more when K > 100), each with its own copy of the labels.
  Style k is **one look shared by every input** (like MUNIT's ``test_batch.py --synchronized`` and
  Pfeiffer et al.'s released ``style_00`` ... folders): random style k is the code
  ``numpy.random.default_rng([seed, k]).standard_normal(style_dim)``; with ``style_from`` style k is
  the style encoded from the k-th of K real images drawn without replacement by
  ``numpy.random.default_rng(seed)`` from that folder (whole images at their own resolution for runs
  trained on crops, scaled to the training size for runs trained on resized images). CycleGAN is
  deterministic: K must be 1 and it takes no style images.
* **Labels byte for byte.** Every other file of a sample (depth, normals, masks, instances, ...) is
  copied, never decoded; labels never pass through a network. Groups, cameras and params are kept; the
  record's ``source`` is the input's source (or the input image).
* **Any image size.** Images are translated at their own resolution, padded (reflect) to a multiple of
  the translator's ``2**n_downsample`` and cropped back.
* **Provenance** in ``dataset.json``'s ``generator``: the model run, checkpoint file and sha256, method,
  its config and training step, the input folder (and its own generator), and ``styles``: K, the seed,
  the id rule, and per style its seed and code, or its image file, that file's sha256 and the code.

Written atomically (:class:`~simreal.data.writer.DatasetWriter`): bad input leaves nothing; an
interrupted run keeps its finished samples and the same command resumes.

Example:
    >>> translate_dataset("runs/munit", "data/lap_sim", "data/lap_translated", styles=3)   # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from simreal.adapt.apply import load_inference_modules, map_dataset_images, read_adapt_run, resolve_device, sha256_of
from simreal.adapt.config import FORWARD_METHODS
from simreal.adapt.data import ImageSource, crop_or_resize
from simreal.adapt.runs import method_field, run_config_class
from simreal.configs import build
from simreal.errors import SimrealError

__all__ = ["LoadedTranslator", "Style", "load_translator", "random_styles", "style_ids", "translate_dataset"]

_NAMES = {1: "grey", 3: "RGB"}


def build_translator(method: str, method_config: Any) -> Any:
    """The (untrained) method object of a translator config."""
    if method == "munit":
        from simreal.adapt.munit import build_method
    elif method == "cyclegan":
        from simreal.adapt.cyclegan import build_method
    else:
        raise SimrealError(f"{method!r} is not a translator; translators: {', '.join(FORWARD_METHODS)}")
    return build_method(method_config)


@dataclass
class LoadedTranslator:
    """A trained translator and where it came from.

    Attributes:
        method: the method object (only its ``inference_modules`` hold trained weights), in eval mode.
        run, checkpoint, sha256, step: the run folder, its checkpoint, the file's sha256, the step.
        config: the plain run config stored in the checkpoint.
        size, mode: the training crop size and mode (how style images are read).
    """

    method: Any
    run: Path
    checkpoint: Path
    sha256: str
    step: int
    config: dict[str, Any]
    size: tuple[int, int]
    mode: str

    @property
    def style_dim(self) -> int:
        """Length of a style code (0: a deterministic translator)."""
        return int(getattr(self.method, "style_dim", 0))

    @property
    def channels(self) -> int:
        return int(self.method.channels)

    @property
    def device(self) -> torch.device:
        return next(self.method.parameters()).device

    def translate(self, images: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [0, 1], any H and W -> translated (B, C, H, W) in [0, 1].

        Args:
            style: (B, style_dim) or (style_dim,) codes for MUNIT (broadcast over the batch); None for CycleGAN.
        """
        m = self.method.size_multiple
        h, w = images.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        x = images
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(images, (0, pw, 0, ph), mode=mode)
        if style is not None:
            style = style.to(device=x.device, dtype=x.dtype)
            if style.ndim == 1:
                style = style.expand(x.shape[0], -1)
        return self.method.translate(x, style)[..., :h, :w]

    def encode_style(self, images: torch.Tensor) -> torch.Tensor:
        """Style codes (B, style_dim) of real images (B, C, H, W) in [0, 1]."""
        if not self.style_dim:
            raise SimrealError(f"a {self.method.name} translator has no styles")
        return self.method.encode_style(images)


def load_translator(model: str | Path, device: str | torch.device = "cpu") -> LoadedTranslator:
    """The trained translator of an ``adapt forward`` run folder, in eval mode on ``device``.

    Raises:
        SimrealError: not a run folder, a task training run, a run of a method that is not a translator
            (a refiner: use ``adapt apply``), no checkpoint yet, a damaged checkpoint.
    """
    hint = " (refiners are applied with simreal adapt apply)"
    run, path, ckpt = read_adapt_run(model, FORWARD_METHODS, "adapt translate uses",
                                     lambda m: hint if m == "reverse" else "")
    tag = ckpt["simreal"]
    method_name = tag["method"]
    config = build(run_config_class(method_name), tag["config"], source=path)
    method = load_inference_modules(build_translator(method_name, getattr(config, method_field(method_name))),
                                    ckpt, path, device)
    return LoadedTranslator(method=method, run=run, checkpoint=path, sha256=sha256_of(path), step=int(tag["iteration"]),
                            config=tag["config"], size=tuple(config.data.size), mode=config.data.mode)


# -- styles ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Style:
    """One style of a translated dataset: its code and where the code came from."""

    index: int
    code: tuple[float, ...]
    seed: tuple[int, int] | None = None
    image: str | None = None
    image_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"index": self.index, "code": [float(c) for c in self.code]}
        if self.seed is not None:
            d["seed"] = list(self.seed)
        if self.image is not None:
            d.update(image=self.image, image_sha256=self.image_sha256)
        return d


def random_styles(k: int, style_dim: int, seed: int) -> list[Style]:
    """K random style codes: code j = ``numpy.random.default_rng([seed, j]).standard_normal(style_dim)``."""
    return [Style(index=j, code=tuple(np.random.default_rng([int(seed), j]).standard_normal(style_dim).tolist()),
                  seed=(int(seed), j)) for j in range(k)]


def _styles_from_images(loaded: LoadedTranslator, folder: str | Path, k: int, seed: int) -> list[Style]:
    source = ImageSource(folder, what="style images", cache=False)
    if source.channels != loaded.channels:
        raise SimrealError(f"the model's real domain is {_NAMES[loaded.channels]} but these style images are "
                           f"{_NAMES[source.channels]}", source.path)
    if k > len(source):
        raise SimrealError(f"--styles {k} needs {k} style images but the folder holds {len(source)}", source.path)
    chosen = sorted(np.random.default_rng(int(seed)).choice(len(source), size=k, replace=False).tolist())
    styles = []
    for j, i in enumerate(chosen):
        arr = source.read(int(i))
        if loaded.mode == "resize":
            x = crop_or_resize(arr, loaded.size, "resize", None)
        else:
            x = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).float() / 255.0
        with torch.no_grad():
            code = loaded.encode_style(x[None].to(loaded.device))[0].cpu()
        styles.append(Style(index=j, code=tuple(code.tolist()), image=str(Path(source.files[i]).resolve()),
                            image_sha256=sha256_of(Path(source.files[i]))))
    return styles


def style_ids(sample_id: str, k: int) -> list[str]:
    """Output ids of one input: ``[sample_id]`` for one style, else ``<id>_s00`` ... (>= 2 digits)."""
    if k == 1:
        return [sample_id]
    width = max(2, len(str(k - 1)))
    return [f"{sample_id}_s{j:0{width}d}" for j in range(k)]


# -- the dataset -------------------------------------------------------------------------------------------


def translate_dataset(
    model: str | Path,
    in_dir: str | Path,
    out_dir: str | Path,
    *,
    styles: int = 1,
    style_from: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    on_sample: Callable[[int, int], None] | None = None,
) -> Path:
    """Translate every image of ``in_dir`` with the run ``model`` (K styles each); write ``out_dir``.

    Args:
        model: an ``adapt forward`` run folder (MUNIT or CycleGAN).
        in_dir: a simreal dataset (labels are carried over) or a plain image folder.
        out_dir: the new dataset folder (must not exist; a ``.partial`` one of the same command resumes).
        styles: K translations per input (see the module docstring for ids and styles).
        style_from: a folder of real images (dataset or plain) to take the K styles from.
        seed: seeds the random style codes, or which style images are taken.
        batch_size: images per forward pass (consecutive images of one size are batched).
        device: "auto", "cpu", "cuda", "cuda:N".
        progress: a progress bar on stderr.
        on_sample: called with (samples done, total) after each output sample.

    Raises:
        SimrealError: a bad model, missing or empty input, grey and RGB mixed, an alpha channel, images
            (or style images) whose channel count differs from the model's, K < 1, K > 1 or style images
            for CycleGAN, fewer style images than K, an existing ``out_dir``.
    """

    if styles < 1:
        raise SimrealError(f"--styles must be >= 1, got {styles}")
    if batch_size < 1:
        raise SimrealError(f"--batch-size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    loaded = load_translator(model, dev)
    if not loaded.style_dim and (styles != 1 or style_from is not None):
        raise SimrealError(f"a {loaded.method.name} translator is deterministic: use --styles 1 and no --style-from")
    in_dir = Path(in_dir)
    source = ImageSource(in_dir, what="images", cache=False)
    if source.channels != loaded.channels:
        raise SimrealError(f"the model translates {_NAMES[loaded.channels]} images but these are {_NAMES[source.channels]}", in_dir)

    if not loaded.style_dim:
        style_list: list[Style] = []
        style_info: dict[str, Any] = {"k": 1, "source": "none", "note": "deterministic translator"}
    elif style_from is not None:
        style_list = _styles_from_images(loaded, style_from, styles, seed)
        style_info = {"k": styles, "source": "images", "folder": str(Path(style_from).resolve()), "seed": seed,
                      "rule": "style j = the style code of the j-th of K images drawn without replacement by "
                              "numpy.random.default_rng(seed), in folder order"}
    else:
        style_list = random_styles(styles, loaded.style_dim, seed)
        style_info = {"k": styles, "source": "random", "seed": seed,
                      "rule": "style j = numpy.random.default_rng([seed, j]).standard_normal(style_dim)"}
    style_info["ids"] = "same as the input" if styles == 1 else "<input id>_s<style index>"
    style_info["styles"] = [s.to_dict() for s in style_list]

    provenance: dict[str, Any] = {
        "name": "simreal adapt translate",
        "method": loaded.method.name,
        "model": str(loaded.run.resolve()),
        "checkpoint": str(loaded.checkpoint.resolve()),
        "checkpoint_sha256": loaded.sha256,
        "step": loaded.step,
        "method_config": loaded.config.get(method_field(loaded.method.name)),
        "input": str(in_dir.resolve()),
        "styles": style_info,
    }
    codes = [torch.tensor(s.code, dtype=torch.float32) for s in style_list] or [None]
    maps = [lambda x, code=code: loaded.translate(x, code) for code in codes]
    return map_dataset_images(in_dir, out_dir, source, provenance, "translated", maps, dev, label="translating",
                              batch_size=batch_size, progress=progress, on_sample=on_sample, ids=style_ids)
