"""Apply a trained refiner to a dataset or an image folder: a new dataset with the same labels.

:func:`apply_refiner` refines every image of a simreal dataset folder, or of a plain image folder, at its
own size (the refiner is fully convolutional; methods whose networks down-sample are padded to their size
multiple and cropped back), and writes a simreal dataset with domain ``"refined"``:

* images: the refined frames, 8-bit RGB PNG (grey models write grey replicated to RGB, as the dataset
  contract wants);
* labels: every other file of each sample (depth, normals, masks, instances, CT) is **copied byte for
  byte**; labels never pass through a network;
* records: ids, groups, cameras, params and sources kept (a plain folder's records get its file stems as
  ids and the files as sources);
* ``dataset.json``: the input's modality, image size, label kinds and seed, ``domain: "refined"``, and
  the provenance in ``generator``: the model run, its checkpoint file and sha256, the method and its
  config, the step the weights are from, and the input folder with its own generator.

The dataset is written atomically (:class:`~simreal.data.writer.DatasetWriter`): bad input removes what
was written; an interrupted run (Ctrl-C) keeps its finished samples and the same command resumes it.

Example:
    >>> apply_refiner("runs/reverse", "data/cvc", "data/cvc_refined")      # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from simreal.adapt.data import ImageSource
from simreal.adapt.runs import CHECKPOINT, load_adapt_checkpoint, read_run_config
from simreal.configs import build
from simreal.data.format import DatasetInfo, SampleRecord
from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError

#: Methods whose trained runs ``adapt apply`` can refine with.
APPLICABLE_METHODS = ("reverse",)


@dataclass
class LoadedRefiner:
    """A trained refiner and where it came from.

    Attributes:
        method: the method object (only its ``inference_modules`` hold trained weights), in eval mode.
        run: the run folder.
        checkpoint: the checkpoint file.
        sha256: the checkpoint file's sha256.
        step: the training step the weights are from.
        config: the run config (plain mapping) stored in the checkpoint.
    """

    method: Any
    run: Path
    checkpoint: Path
    sha256: str
    step: int
    config: dict[str, Any]

    def refine(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1], any H and W -> refined (B, C, H, W) in [0, 1]."""
        m = self.method.size_multiple
        h, w = images.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(images, (0, pw, 0, ph), mode="replicate") if ph or pw else images
        return self.method.refine(x)[..., :h, :w]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; otherwise a torch device string ("cpu", "cuda:1")."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise SimrealError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimrealError(f"--device {device}: CUDA is not available on this machine")
    return dev


def load_refiner(model: str | Path, device: str | torch.device = "cpu") -> LoadedRefiner:
    """The trained refiner of an adapt run folder (``checkpoints/last.ckpt``), in eval mode on ``device``.

    Raises:
        SimrealError: not a run folder, a task training run, a run of a method ``adapt apply`` cannot use,
            no checkpoint yet, a damaged checkpoint.
    """
    from simreal.adapt.config import ReverseRunConfig
    from simreal.adapt.reverse import build_method

    from simreal.adapt.config import FORWARD_METHODS

    hint = "; translators are applied with simreal adapt translate"
    run, path, ckpt = read_adapt_run(model, APPLICABLE_METHODS, "adapt apply refines with",
                                     lambda m: hint if m in FORWARD_METHODS else "")
    tag = ckpt["simreal"]
    config = build(ReverseRunConfig, tag["config"], source=path)
    method = load_inference_modules(build_method(config.reverse), ckpt, path, device)
    return LoadedRefiner(method=method, run=run, checkpoint=path, sha256=sha256_of(path), step=int(tag["iteration"]), config=tag["config"])


def read_adapt_run(model: str | Path, methods: tuple[str, ...], usage: str,
                   hint: Callable[[str], str] = lambda method: "") -> tuple[Path, Path, dict[str, Any]]:
    """The run folder, its ``checkpoints/last.ckpt`` path and the checkpoint (memory-mapped: only the tensors
    used are read), after the checks every consumer of a trained adapt run makes.

    Args:
        model: the run folder.
        methods: the methods the caller can use.
        usage: how the error names the caller, e.g. "adapt apply refines with".
        hint: a method the caller cannot use -> where it is used instead (appended to the error).

    Raises:
        SimrealError: no such folder, not a folder, a task training run (see :func:`read_run_config`), a run
            or checkpoint of another method, no checkpoint yet, a damaged checkpoint.
    """
    run = Path(model)
    if not run.exists():
        raise SimrealError("model run folder not found", run)
    if not run.is_dir():
        raise SimrealError("--model must be a run folder (holding config.json and checkpoints/)", run)
    method = read_run_config(run)["method"]
    if method not in methods:
        raise SimrealError(f"this is a {method!r} run; {usage} {', '.join(methods)} runs{hint(method)}", run)
    path = run / CHECKPOINT
    if not path.is_file():
        raise SimrealError("run folder holds no checkpoint yet (checkpoints/last.ckpt)", run)
    ckpt = load_adapt_checkpoint(path, mmap=True)
    if ckpt["simreal"]["method"] not in methods:
        raise SimrealError(f"checkpoint is of method {ckpt['simreal']['method']!r}, not one {usage.split()[1]} can use",
                           path)
    return run, path, ckpt


def load_inference_modules(method: Any, ckpt: dict[str, Any], path: Path, device: str | torch.device) -> Any:
    """``method`` with the weights of its ``inference_modules`` from ``ckpt``, float32, eval mode, on ``device``."""
    for name in method.inference_modules:
        prefix = f"method.{name}."
        state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
        try:
            getattr(method, name).load_state_dict(state)
        except RuntimeError as exc:
            raise SimrealError(f"checkpoint weights do not fit the {name} ({' '.join(str(exc).split())[:200]})", path) from None
    dev = device if isinstance(device, torch.device) else resolve_device(str(device))
    return method.float().eval().to(dev)


def _safe_relative(rel: str, where: Path) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        raise SimrealError(f"sample file path {rel!r} leaves the dataset folder", where)
    return p


def apply_refiner(
    model: str | Path,
    in_dir: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = 8,
    device: str = "auto",
    progress: bool = True,
    on_sample: Callable[[int, int], None] | None = None,
) -> Path:
    """Refine every image of ``in_dir`` with the run ``model``; write the dataset ``out_dir``.

    Args:
        model: an adapt run folder (e.g. of ``simreal adapt reverse``).
        in_dir: a simreal dataset folder or a plain folder of images (grey or RGB, as the model was trained).
        out_dir: the new dataset folder (must not exist; a ``.partial`` one of the same command resumes).
        batch_size: images per forward pass (consecutive images of one size are batched).
        device: "auto", "cpu", "cuda", "cuda:N".
        progress: a progress bar on stderr.
        on_sample: called with (samples done, total) after each sample (tests, callers' own progress).

    Returns:
        ``out_dir``.

    Raises:
        SimrealError: a bad model (see :func:`load_refiner`), an empty or missing input, grey and RGB mixed,
            an alpha channel, images whose channels differ from the model's, an existing ``out_dir``.
    """

    if batch_size < 1:
        raise SimrealError(f"--batch-size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    loaded = load_refiner(model, dev)
    in_dir = Path(in_dir)
    source = ImageSource(in_dir, what="images", cache=False)
    channels = loaded.method.channels
    if source.channels != channels:
        names = {1: "grey", 3: "RGB"}
        raise SimrealError(f"the model refines {names[channels]} images but these are {names[source.channels]}", in_dir)

    provenance: dict[str, Any] = {
        "name": "simreal adapt apply",
        "method": loaded.method.name,
        "model": str(loaded.run.resolve()),
        "checkpoint": str(loaded.checkpoint.resolve()),
        "checkpoint_sha256": loaded.sha256,
        "step": loaded.step,
        "method_config": loaded.config.get(loaded.method.name),
        "input": str(in_dir.resolve()),
    }
    return map_dataset_images(in_dir, out_dir, source, provenance, "refined", [loaded.refine], dev,
                              label="refining", batch_size=batch_size, progress=progress, on_sample=on_sample)


def map_dataset_images(in_dir: Path, out_dir: str | Path, source: ImageSource, provenance: dict[str, Any], domain: str,
                       maps: list[Callable[[torch.Tensor], torch.Tensor]], device: torch.device, *, label: str,
                       batch_size: int, progress: bool, on_sample: Callable[[int, int], None] | None,
                       ids: Callable[[str, int], list[str]] | None = None) -> Path:
    """The dataset of every image of ``source`` passed through each of ``maps``, labels copied byte for byte.

    What refining and translating share: records (ids, groups, cameras, params, sources) and every file
    but the image are carried over (a label never passes through a network); ``dataset.json`` keeps the
    input's modality, size, label kinds, CT grid and seed with ``domain`` and ``provenance`` (the
    ``generator``). Consecutive images of one size go through ``maps`` in batches of ``batch_size`` (floats
    in [0, 1], NCHW). With K maps, input ``id`` gives the K outputs ``ids(id, K)`` (default: the id itself,
    for K = 1), their label files renamed after them. Written atomically: bad input removes what was
    written, an interruption keeps the finished samples for the same command to resume.
    """
    from simreal.data.reader import DatasetReader
    from simreal.progress import progress_bar

    if source.kind == "dataset":
        reader = DatasetReader(in_dir)
        src_info = reader.info
        records = list(reader.records)
        provenance = {**provenance, "input_domain": src_info.domain, "input_generator": src_info.generator}
        info = DatasetInfo(modality=src_info.modality, domain=domain, image_size=src_info.image_size,
                           files=src_info.files, labels=src_info.labels, generator=provenance, seed=src_info.seed,
                           ct=src_info.ct)
        root = reader.root
    else:
        from simreal.data.external.common import image_size_of

        records = [SampleRecord(id=f.stem, files={}, source=str(f)) for f in source.files]
        info = DatasetInfo(modality="image", domain=domain, image_size=image_size_of(source.files),
                           files=("image",), generator=provenance)
        root = in_dir

    k = len(maps)
    out_ids = [(ids or _same_id)(r.id, k) for r in records]
    expected = [i for per_input in out_ids for i in per_input]
    writer = DatasetWriter(Path(out_dir), info)
    count = [0]

    def write_one(i: int, j: int, image: np.ndarray) -> None:
        rec, new_id = records[i], out_ids[i][j]
        files = {}
        for kind, rel in rec.files.items():
            if kind == "image":
                continue
            rel_path = _safe_relative(rel, root / "samples.jsonl")
            target_rel = rel_path if new_id == rec.id else rel_path.with_name(new_id + rel_path.suffix)
            target = writer.root / target_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel_path, target)  # copied as a file: byte for byte, never decoded
            files[kind] = target_rel.as_posix()
        rgb = image if image.shape[2] == 3 else np.repeat(image, 3, axis=2)
        record = SampleRecord(**{**rec.__dict__, "id": new_id, "files": files, "source": rec.source or str(source.files[i])})
        writer.write(record, {"image": rgb})

    with progress_bar(label, len(expected), enabled=progress, unit="images") as bar:

        def advance() -> None:
            count[0] += 1
            bar.update(count[0])
            if on_sample is not None:
                on_sample(count[0], len(expected))

        pending: list[tuple[int, np.ndarray]] = []

        def flush() -> None:
            x = torch.stack([torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))) for _, a in pending])
            x = x.to(device).float() / 255.0
            for j, fn in enumerate(maps):
                if all(writer.has(out_ids[i][j]) for i, _ in pending):
                    continue
                with torch.no_grad():
                    y = fn(x)
                out = (y.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                for (i, _), img in zip(pending, out):
                    if not writer.has(out_ids[i][j]):
                        write_one(i, j, img)
                        advance()
            pending.clear()

        try:
            for i in range(len(records)):
                done = [writer.has(o) for o in out_ids[i]]
                for _ in range(sum(done)):
                    advance()  # finished by an interrupted earlier run
                if all(done):
                    continue
                arr = source.read(i)
                if pending and (len(pending) == batch_size or pending[0][1].shape != arr.shape):
                    flush()
                pending.append((i, arr))
            if pending:
                flush()
            return writer.finish(expected_ids=expected)
        except SimrealError:
            writer.abort()  # bad input: leave nothing half-written
            raise
        except BaseException:
            writer.close()  # interrupted: finished samples stay in .partial for the same command to resume
            raise


def _same_id(sample_id: str, k: int) -> list[str]:
    return [sample_id]
