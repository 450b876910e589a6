"""Sample new annotated CT slices from a trained mask-guided generator (``simreal synth sample``).

Each sample starts from a guidance map of a real slice (the run's training slices, or ``--from DIR``) and
gets **new structure** before the generator sees it, so samples are not copies of training slices:

* ``affine``: rotation (uniform in +-``rotate_deg``), isotropic scale (``1 +- scale``) and translation
  (+-``translate`` of the side) about the image centre;
* ``elastic``: a smooth random displacement field (white noise smoothed with a Gaussian of ``elastic_sigma``
  x side, scaled so its largest displacement is ``elastic_alpha`` x side);
* ``jitter``: every connected region of one guidance level moves by ``k * step`` grey levels, k uniform in
  ``-jitter..jitter`` (a superpixel intensity change; method "um" only: a manual mask has no intensities);
* ``mix``: with probability ``mix_prob``, the map is combined with a second slice of the same patient
  (within ``mix_window`` slices in dataset order), chosen by a smooth random blob mask (about half of each).

Spatial changes move the guidance (and, for method "mask", the manual mask it is drawn from) with nearest
neighbour sampling and replicated borders (the border of a CT slice is air), so guidance levels and
class ids stay exact; the edge map is recomputed from the new guidance. The parameters are **drawn** first
from ``np.random.default_rng([seed, i])`` (:func:`draw_perturbation`, stored in the record's params) and then
**applied** by a deterministic function (:func:`apply_perturbation`): same seed, same bytes.

What each sample holds (a simreal dataset, modality "ct", domain "synthetic"):

* ``ct``: float32 HU, the CT head's tanh output mapped onto the training window (:func:`unit_to_hu`);
* ``image``: that HU windowed to 8-bit (the dataset's window, grey replicated to RGB);
* ``mask``: class ids: the segmentation head's argmax (method "um"), or the perturbed manual mask that
  guided the generator (method "mask": labels never pass through a network);
* ``guidance`` and ``edges``: the generator's input.

The CT, mask and guidance of a sample are computed on one pixel grid (the training size), so they align.
``params.spacing_mm`` is the source slice's pixel size rescaled to the training size (divided by the drawn
scale for affine samples).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from simreal.errors import SimrealError
from simreal.synth.data import SliceTensors, edge_map, mask_guidance, to_generator_input, unit_to_hu
from simreal.synth.um_config import PERTURBATIONS, Guidance, PerturbConfig, parse_perturb

__all__ = [
    "PERTURBATIONS",
    "PerturbConfig",
    "parse_perturb",
    "apply_perturbation",
    "displacement_field",
    "draw_perturbation",
    "jitter_levels",
    "load_generator",
    "sample_dataset",
    "sample_from_run",
    "warp_nearest",
]

# -- draw, then apply ---------------------------------------------------------------------------------------


def draw_perturbation(rng: np.random.Generator, config: PerturbConfig, source: int, groups: Sequence[str | None]) -> dict[str, Any]:
    """The random parameters of one sample (JSON types), drawn in a fixed order from ``rng``.

    Args:
        rng: the sample's generator (``np.random.default_rng([seed, i])``).
        config: what to perturb and how much.
        source: index of the source slice.
        groups: the patient of every source slice (mix partners share the source's patient).

    Returns:
        ``{"source": int, "mix": {...} | None, "affine": {...} | None, "elastic": {...} | None, "jitter": {...} | None}``.
    """
    kinds = set(config.kinds)
    out: dict[str, Any] = {"source": int(source), "mix": None, "affine": None, "elastic": None, "jitter": None}
    # every draw happens whether or not its perturbation is on, so switching one off leaves the others' values
    mix_u, mix_off, mix_seed = rng.random(), rng.integers(1, config.mix_window + 1) * (1 if rng.random() < 0.5 else -1), int(rng.integers(2**31))
    rot, sc, tx, ty = rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1)
    e_seed, j_seed = int(rng.integers(2**31)), int(rng.integers(2**31))
    if "mix" in kinds and mix_u < config.mix_prob:
        partner = _mix_partner(source, int(mix_off), groups)
        if partner is not None:
            out["mix"] = {"partner": partner, "seed": mix_seed, "sigma": 0.15}
    if "affine" in kinds:
        out["affine"] = {"rotate_deg": float(rot * config.rotate_deg), "scale": float(1 + sc * config.scale),
                         "translate": [float(ty * config.translate), float(tx * config.translate)]}
    if "elastic" in kinds and config.elastic_alpha > 0:
        out["elastic"] = {"seed": e_seed, "alpha": config.elastic_alpha, "sigma": config.elastic_sigma}
    if "jitter" in kinds and config.jitter > 0:
        out["jitter"] = {"seed": j_seed, "max_steps": config.jitter, "step": config.step}
    return out


def _mix_partner(source: int, offset: int, groups: Sequence[str | None]) -> int | None:
    """The slice ``offset`` positions away within the same patient (the other direction at a border)."""
    for o in (offset, -offset):
        j = source + o
        if 0 <= j < len(groups) and groups[j] == groups[source]:
            return j
    return None


def displacement_field(seed: int, size: int, alpha: float, sigma: float) -> np.ndarray:
    """A smooth (2, size, size) displacement in pixels: Gaussian-smoothed white noise (sigma x size px),
    scaled so its largest component magnitude is ``alpha * size`` px (0 field for alpha 0)."""
    from scipy.ndimage import gaussian_filter

    noise = np.random.default_rng(seed).standard_normal((2, size, size))
    field = np.stack([gaussian_filter(n, sigma * size, mode="reflect") for n in noise])
    peak = np.abs(field).max()
    return np.zeros_like(field) if peak == 0 else field / peak * alpha * size


def sampling_grid(size: int, affine: dict[str, Any] | None, elastic: dict[str, Any] | None) -> np.ndarray:
    """(2, size, size) input coordinates (row, column) each output pixel is read from.

    The affine maps an output pixel to the input by the inverse of "scale by s, rotate by r, shift by t"
    about the centre; the elastic displacement is added in output pixels.
    """
    c = (size - 1) / 2
    rows, cols = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    y, x = rows - c, cols - c
    if elastic is not None:
        d = displacement_field(int(elastic["seed"]), size, float(elastic["alpha"]), float(elastic["sigma"]))
        y, x = y + d[0], x + d[1]
    if affine is not None:
        ty, tx = (v * size for v in affine["translate"])
        y, x = y - ty, x - tx
        a = math.radians(affine["rotate_deg"])
        s = affine["scale"]
        cos, sin = math.cos(a), math.sin(a)
        y, x = (cos * y - sin * x) / s, (sin * y + cos * x) / s
    return np.stack([y + c, x + c])


def warp_nearest(image: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Read ``image`` (H, W) at ``grid`` (2, H', W') coordinates, nearest neighbour, borders replicated;
    the values (levels, class ids) are kept exactly."""
    h, w = image.shape
    r = np.clip(np.floor(grid[0] + 0.5).astype(np.int64), 0, h - 1)
    c = np.clip(np.floor(grid[1] + 0.5).astype(np.int64), 0, w - 1)
    return image[r, c]


def jitter_levels(guidance: np.ndarray, seed: int, max_steps: int, step: int) -> np.ndarray:
    """Shift every 4-connected region of one guidance level by ``k * step`` (k uniform in -max_steps..max_steps,
    one k per region, regions numbered in raster order), clipped to the quantised range 0..floor(255/step)*step."""
    from scipy.ndimage import label

    g = guidance.astype(np.int64)
    out = g.copy()
    rng = np.random.default_rng(seed)
    top = (255 // step) * step
    for level in np.unique(g):
        regions, n = label(g == level)
        if n == 0:
            continue
        shifts = rng.integers(-max_steps, max_steps + 1, size=n + 1) * step
        shifts[0] = 0
        sel = regions > 0
        out[sel] = np.clip(level + shifts[regions[sel]], 0, top)
    return out.astype(np.uint8)


def blob_mask(seed: int, size: int, sigma: float) -> np.ndarray:
    """A smooth random binary (size, size) mask covering about half the image (smoothed noise > its median)."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(np.random.default_rng(seed).standard_normal((size, size)), sigma * size, mode="reflect")
    return f > np.median(f)


def apply_perturbation(base: np.ndarray, params: dict[str, Any], *, partner: np.ndarray | None = None, allow_jitter: bool = True) -> np.ndarray:
    """Apply drawn parameters to a (S, S) uint8 map (a guidance map, or a class-id mask for method "mask").

    Order: mix with ``partner`` (if drawn), then one warp (affine + elastic), then level jitter (if drawn and
    ``allow_jitter``). Pure: the same map and parameters give the same bytes.
    """
    m = np.asarray(base)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise SimrealError(f"perturbation needs a square (S, S) map, got shape {m.shape}")
    size = m.shape[0]
    if params.get("mix") is not None:
        if partner is None or partner.shape != m.shape:
            raise SimrealError("a mixed sample needs its partner map of the same shape")
        m = np.where(blob_mask(int(params["mix"]["seed"]), size, float(params["mix"]["sigma"])), m, partner)
    if params.get("affine") is not None or params.get("elastic") is not None:
        m = warp_nearest(m, sampling_grid(size, params.get("affine"), params.get("elastic")))
    if allow_jitter and params.get("jitter") is not None:
        j = params["jitter"]
        m = jitter_levels(m, int(j["seed"]), int(j["max_steps"]), int(j["step"]))
    return np.ascontiguousarray(m)


# -- the model ---------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A trained generator and what sampling needs to know about its run."""

    generator: torch.nn.Module
    method: Guidance
    config: dict[str, Any]
    data: dict[str, Any]
    step: int
    run: Path


def load_generator(run: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """The generator of a ``synth train`` run folder (weights of ``checkpoints/last.ckpt``) in eval mode.

    Raises:
        SimrealError: not a synthesis run, no checkpoint or data.json, weights that do not fit the config.
    """
    from simreal.adapt.runs import CHECKPOINT, load_adapt_checkpoint, read_run_config
    from simreal.configs import build
    from simreal.nets.pix2pixhd import GlobalGenerator
    from simreal.synth.um import DATA_JSON
    from simreal.synth.um_config import SynthRunConfig

    run = Path(run)
    plain = read_run_config(run)
    if plain.get("method") not in ("um", "mask"):
        raise SimrealError(f"this is a {plain.get('method')!r} run, not a synthesis run (synth train --method um|mask)", run)
    cfg = build(SynthRunConfig, plain, source=run / "config.json")
    data_path = run / DATA_JSON
    if not data_path.is_file():
        raise SimrealError("no data.json: the run never started training", run)
    try:
        data = json.loads(data_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SimrealError(f"unreadable data.json ({exc})", data_path) from None
    ckpt = load_adapt_checkpoint(run / CHECKPOINT)
    um = cfg.um
    g = GlobalGenerator(int(um.in_channels), int(um.num_classes), ngf=um.ngf, n_downsample=um.n_downsample, n_blocks=um.n_blocks, norm=um.norm)
    prefix = "method.generator."
    state = {k[len(prefix):]: v for k, v in ckpt["state_dict"].items() if k.startswith(prefix)}
    try:
        g.load_state_dict(state)
    except RuntimeError as exc:
        raise SimrealError(f"generator weights do not fit the run's config ({' '.join(str(exc).split())[:300]})", run / CHECKPOINT) from None
    g.to(device).eval()
    return LoadedModel(generator=g, method=cfg.method, config=plain, data=data, step=int(ckpt["simreal"]["iteration"]), run=run)


# -- sampling ----------------------------------------------------------------------------------------------


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise SimrealError(f"unknown device {device!r} (auto, cpu, cuda, cuda:N)") from None


def sample_dataset(
    generator: torch.nn.Module,
    sources: SliceTensors,
    out: str | Path,
    *,
    n: int,
    method: Guidance,
    window: tuple[float, float],
    classes: dict[int, str],
    seed: int = 0,
    perturb: PerturbConfig = PerturbConfig(),
    edges: bool = True,
    batch_size: int = 8,
    source_size: int | None = None,
    provenance: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``n`` synthetic CT slices with masks from ``generator`` and perturbed ``sources`` guidance.

    Args:
        generator: maps (B, C_in, S, S) input to ``(ct, seg_logits)`` (a :class:`~simreal.nets.pix2pixhd.GlobalGenerator`).
        sources: the guidance (and, for method "mask", the masks) to start from, at the generator's size.
        out: the new dataset folder.
        n: samples to write.
        method: "um" (mask = seg head argmax) or "mask" (mask = the perturbed manual mask).
        window: HU window of the CT head's range (the training data's).
        classes: class id -> name of the masks.
        seed: sample i draws from ``np.random.default_rng([seed, i])``.
        perturb: the perturbations.
        edges: the generator takes the edge channel.
        batch_size: samples per forward pass (results do not depend on it with instance norm).
        source_size: side of the source slices as stored (for ``spacing_mm``); None: the same as now.
        provenance: extra fields for dataset.json's generator (the model run, its config, ...).
        progress: called with (samples written, n).

    Raises:
        SimrealError: n < 1, no sources, a mask method without masks.
    """
    from simreal.data.format import CTInfo, DatasetInfo, LabelKind, SampleRecord
    from simreal.data.writer import write_dataset
    from simreal.synth.prepare import IMAGE_AXES, ORIENTATION, SLICE_AXIS, window_to_uint8

    if n < 1:
        raise SimrealError(f"--n must be >= 1, got {n}")
    m = len(sources.ids)
    if m == 0:
        raise SimrealError("no source guidance maps")
    if method == "mask" and bool((sources.masks < 0).any()):
        raise SimrealError("method 'mask' samples from manual masks, but some source slices have none")
    size = int(sources.guidance.shape[-1])
    num_classes = max(classes) + 1
    try:
        device = next(generator.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    lo, hi = window
    plans = []
    for i in range(n):
        rng = np.random.default_rng([int(seed), i])
        src = int(rng.integers(m))
        plans.append(draw_perturbation(rng, perturb, src, sources.groups))

    def maps_of(params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(guidance, edges, mask or None) of one sample after its perturbation."""
        src = params["source"]
        partner = None if params["mix"] is None else params["mix"]["partner"]
        if method == "mask":
            mask = apply_perturbation(sources.masks[src].numpy().astype(np.uint8), params,
                                      partner=None if partner is None else sources.masks[partner].numpy().astype(np.uint8),
                                      allow_jitter=False)
            guide = mask_guidance(mask, num_classes)
        else:
            mask = None
            guide = apply_perturbation(sources.guidance[src], params,
                                       partner=None if partner is None else sources.guidance[partner])
        return guide, edge_map(guide), mask

    def spacing(params: dict[str, Any]) -> list[float]:
        sp = sources.params[params["source"]].get("spacing_mm") if sources.params else None
        sp = [1.0, 1.0] if not (isinstance(sp, list) and len(sp) == 2) else [float(v) for v in sp]
        factor = (source_size or size) / size
        s = params["affine"]["scale"] if params["affine"] is not None else 1.0
        return [round(v * factor / s, 6) for v in sp]

    def items() -> Iterator[tuple[SampleRecord, dict[str, np.ndarray]]]:
        for start in range(0, n, batch_size):
            chunk = plans[start : start + batch_size]
            maps = [maps_of(p) for p in chunk]
            x = torch.stack([to_generator_input(g, e if edges else None) for g, e, _ in maps]).to(device)
            with torch.no_grad():
                ct, seg = generator(x)
            ct = ct[:, 0].float().cpu().numpy()
            labels = seg.argmax(dim=1).to(torch.uint8).cpu().numpy()
            for k, (params, (guide, edge, mask)) in enumerate(zip(chunk, maps)):
                i = start + k
                hu = np.asarray(unit_to_hu(ct[k].astype(np.float64), window), dtype=np.float32)
                grey = window_to_uint8(hu, window)
                src = params["source"]
                record = SampleRecord(
                    id=f"{i:06d}", files={},
                    params={**params, "source_id": sources.ids[src],
                            "partner_id": None if params["mix"] is None else sources.ids[params["mix"]["partner"]],
                            "spacing_mm": spacing(params)},
                    source=sources.ids[src], group=None if sources.groups[src] is None else str(sources.groups[src]),
                )
                arrays = {
                    "image": np.repeat(grey[..., None], 3, axis=2),
                    "ct": hu,
                    "mask": (mask if mask is not None else labels[k]).astype(np.uint8),
                    "guidance": guide,
                    "edges": edge,
                }
                yield record, arrays
                if progress is not None:
                    progress(i + 1, n)

    mask_desc = ("the segmentation head's argmax" if method == "um"
                 else "the perturbed manual mask that guided the generator (not predicted)")
    labels_info = {
        "ct": LabelKind(unit="HU", description=f"synthetic CT: the generator's tanh output mapped onto [{lo:g}, {hi:g}] HU"),
        "mask": LabelKind(classes=dict(classes), description=f"class ids: {mask_desc}"),
        "guidance": LabelKind(description="the generator's guidance input after the sample's perturbation (params)"),
        "edges": LabelKind(description="pix2pixHD get_edges of the guidance: 255 = boundary, 0 = inside"),
    }
    info = DatasetInfo(
        modality="ct", domain="synthetic", image_size=(size, size), files=("image", "ct", "mask", "guidance", "edges"),
        labels=labels_info,
        generator={"name": "simreal.synth.sample", "method": method, "perturb": dataclasses.asdict(perturb),
                   "n_sources": m, **(provenance or {})},
        seed=int(seed),
        ct=CTInfo(window_hu=(float(lo), float(hi)), image_axes=IMAGE_AXES, slice_axis=SLICE_AXIS,
                  description=ORIENTATION + f" (of the source slices); image = floor((clip(HU, {lo:g}, {hi:g}) - ({lo:g})) / {hi - lo:g} * 255)"),
    )
    return write_dataset(out, info, items(), total=n)


def sample_from_run(
    run: str | Path,
    out: str | Path,
    *,
    n: int,
    source: str | Path | None = None,
    seed: int = 0,
    perturb: PerturbConfig = PerturbConfig(),
    batch_size: int = 8,
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """``simreal synth sample``: ``n`` samples of a trained run, from its training slices' guidance (or ``source``).

    Args:
        run: a ``synth train`` run folder.
        out: the new dataset folder.
        source: a dataset to take the guidance from (method "um": "guidance" / "edges" files; "mask":
            "mask" files); None: the run's own training slices (labelled and unlabelled).

    Raises:
        SimrealError: see :func:`load_generator` and :func:`sample_dataset`; a source dataset without the kinds
            the method needs.
    """
    from simreal.data.reader import DatasetReader
    from simreal.synth.data import read_slices

    model = load_generator(run, _device(device))
    d = model.data
    window = (float(d["window_hu"][0]), float(d["window_hu"][1]))
    classes = {int(k): v for k, v in d["classes"].items()}
    if source is None:
        reader = DatasetReader(d["data"])
        guidance_reader = DatasetReader(d["guidance"]) if d.get("guidance") else None
        wanted = set(d["labelled"]) | set(d["unlabelled"])
        idx = [i for i, rid in enumerate(reader.ids) if rid in wanted]  # "mask" runs have no unlabelled slices
        if not idx:
            raise SimrealError("the run's training slices are no longer in its dataset", reader.root)
    else:
        reader, guidance_reader = DatasetReader(source), None
        idx = list(range(len(reader)))
    size = int(d["size"])
    sources = read_slices(reader, idx, method=model.method, size=size, edges=bool(d["edges"]), num_classes=int(d["num_classes"]),
                          window=window, guidance_reader=guidance_reader)
    source_size = reader.info.image_size[0] if reader.info.image_size else None
    provenance = {
        "model": str(Path(run)), "model_step": model.step, "model_config": model.config,
        "from": str(reader.root), "from_training_slices": source is None,
    }
    return sample_dataset(model.generator, sources, out, n=n, method=model.method, window=window, classes=classes, seed=seed,
                          perturb=perturb, edges=bool(d["edges"]), batch_size=batch_size, source_size=source_size,
                          provenance=provenance, progress=progress)
