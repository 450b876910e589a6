"""`simreal synth ...`: CT volumes as slice datasets, unsupervised superpixel guidance, patient splits.

    simreal synth prepare --ct CT [--labels SEG] [--group ID] [--ct CT2 --labels SEG2 ...] [--label liver]
                          --out DIR [--window -1500,100] [--montage] [--size 256] [--every K]
                          [--z-range organ|all] [--label-map JSON]
    simreal synth masks --data DIR --out DIR [--segments 512] [--compactness 10] [--step 10]
                        [--edges-from guidance|superpixels]
    simreal synth split DIR [--test 1] [--seed 0] [--out split.json]
    simreal synth train --method um|mask --data DIR [--guidance DIR] --out RUN [--labelled K] [--split FILE]
                        [--group ID ...] [--steps N] [--size S] [--batch-size B] [--ngf --n-downsample --n-blocks
                        --ndf ...] [--config FILE]
    simreal synth sample --model RUN --n N --out DIR [--from DIR] [--seed 0] [--perturb affine,elastic,jitter]
    simreal synth memorisation --samples DIR --model RUN [--heldout DIR] [--metric l2|ssim] [--out report.json]

`train` flags each map to one field of :class:`simreal.synth.um_config.SynthRunConfig`; a flag not given
takes its value from ``--config FILE`` when one is given, else the default shown in ``--help``.
"""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from simreal.adapt.config import EngineConfig as _E
from simreal.errors import SimrealError
from simreal.synth.um_config import PerturbConfig as _P
from simreal.synth.um_config import SynthDataConfig as _D
from simreal.synth.um_config import UMConfig as _U

app = typer.Typer(
    help="UM-synthesis inputs: CT -> slice datasets (HU + windowed image + masks), superpixel guidance, splits.",
    no_args_is_help=True,
)


class ZRangeChoice(str, Enum):
    organ = "organ"
    all = "all"


class EdgesChoice(str, Enum):
    guidance = "guidance"
    superpixels = "superpixels"


def _summary(out: Path) -> str:
    from simreal.data.reader import DatasetReader

    ds = DatasetReader(out)
    groups = Counter(r.group for r in ds.records)
    size = "varying sizes" if ds.info.image_size is None else f"{ds.info.image_size[0]}x{ds.info.image_size[1]}"
    per = ", ".join(f"{g}: {n}" for g, n in sorted(groups.items(), key=lambda kv: str(kv[0])))
    return f"wrote {len(ds)} samples ({size}; {len(groups)} patient(s): {per}; files: {', '.join(ds.info.files)}) to {out}"


@app.command("prepare")
def prepare(
    ct: List[Path] = typer.Option(..., "--ct", help="CT volume: NIfTI file or DICOM series folder (HU). Repeat for several patients."),
    labels: Optional[List[Path]] = typer.Option(
        None, "--labels",
        help="Labels of the CT (same order as --ct): NIfTI, DICOM mask series folder, or folder of per-slice PNG masks.",
    ),
    label: Optional[List[str]] = typer.Option(
        None, "--label",
        help="Label to extract, NAME or NAME=ID (class 1, 2, ... in order). Binary masks: non-zero = NAME; "
        "multi-label volumes: NAME looked up in the label map (TotalSegmentator v2: liver = 5).",
    ),
    group: Optional[List[str]] = typer.Option(
        None, "--group", help="Patient id of each CT (default: the CT's name, or its parent's for DICOM folders)."
    ),
    out: Path = typer.Option(..., "--out", help="New dataset folder."),
    window: str = typer.Option("-1500,100", "--window", help="HU window MIN,MAX of the 8-bit image (paper: -1500,100)."),
    montage: bool = typer.Option(False, "--montage", help="2x2 montages of 4 slices in the organ's z-extent (10% trimmed) instead of slices."),
    size: int = typer.Option(256, "--size", min=0, help="Output side in pixels (square; padded with air); 0 keeps the native size."),
    every: int = typer.Option(1, "--every", min=1, help="Keep every K-th slice (or every K-th montage offset)."),
    z_range: ZRangeChoice = typer.Option(
        ZRangeChoice.organ, "--z-range", help="organ: slices from the first to the last holding a label; all: every slice."
    ),
    label_map: Optional[Path] = typer.Option(None, "--label-map", help="JSON {\"id\": \"name\"} for multi-label volumes."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """CT volumes -> a dataset of axial slices: float32 HU ("ct"), windowed 8-bit image, class mask.

    Slices are in radiological display (rows anterior -> posterior, columns patient right -> left) for
    NIfTI and DICOM alike; each record's group is its patient, its params hold slice_index, z_mm and
    spacing_mm.
    """
    from simreal.progress import progress_bar
    from simreal.synth.prepare import CTCase, PrepareConfig, prepare_ct_dataset

    labels = list(labels or [])
    groups = list(group or [])
    if labels and len(labels) != len(ct):
        raise SimrealError(f"give one --labels per --ct (got {len(ct)} CTs and {len(labels)} label sources)")
    if groups and len(groups) != len(ct):
        raise SimrealError(f"give one --group per --ct (got {len(ct)} CTs and {len(groups)} groups)")
    config = PrepareConfig(
        window_hu=window,  # type: ignore[arg-type]  (parsed and checked by PrepareConfig)
        size=size or None,
        montage=montage,
        every=every,
        z_range=z_range.value,  # type: ignore[arg-type]
        labels=tuple(label or ()),
        label_map=None if label_map is None else str(label_map),
    )
    cases = [
        CTCase(ct=c, labels=labels[n] if labels else None, group=groups[n] if groups else None) for n, c in enumerate(ct)
    ]
    with progress_bar("slicing", enabled=progress, terminal_only=True, transient=True) as bar:
        path = prepare_ct_dataset(cases, out, config, progress=bar.update)
    typer.echo(_summary(path))


@app.command("masks")
def masks(
    data: Path = typer.Option(..., "--data", help="Dataset with 'image' files (e.g. from synth prepare)."),
    out: Path = typer.Option(..., "--out", help="New dataset folder: the input's files plus guidance and edges."),
    segments: int = typer.Option(512, "--segments", min=1, help="SLIC superpixels per image (paper: 512 per 1024^2 montage)."),
    compactness: float = typer.Option(10.0, "--compactness", help="SLIC compactness (paper: 10)."),
    step: int = typer.Option(10, "--step", min=1, max=255, help="Quantisation step of the superpixel mean intensity (paper: 10)."),
    edges_from: EdgesChoice = typer.Option(
        EdgesChoice.guidance, "--edges-from", help="guidance: edges where the quantised mask changes (SemiCS2); superpixels: every boundary."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Unsupervised masks: SLIC superpixels, mean fill, quantisation, edge maps (deterministic)."""
    from simreal.progress import progress_bar
    from simreal.synth.masks import MaskConfig, make_mask_dataset

    config = MaskConfig(n_segments=segments, compactness=compactness, step=step, edges_from=edges_from.value)  # type: ignore[arg-type]
    with progress_bar("superpixels", enabled=progress, terminal_only=True, transient=True) as bar:
        path = make_mask_dataset(data, out, config, progress=bar.update)
    typer.echo(_summary(path))


@app.command("split")
def split(
    directory: Path = typer.Argument(..., help="Dataset whose records carry the patient in 'group'."),
    test: int = typer.Option(1, "--test", min=1, help="Number of patients in the test split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the patient shuffle."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write {split: [sample ids]} as JSON here."),
) -> None:
    """Patient-level train/test split: no patient has slices in both."""
    from simreal.atomic import write_json
    from simreal.data.reader import DatasetReader
    from simreal.synth.prepare import patient_split

    splits = patient_split(directory, n_test=test, seed=seed)
    groups = {r.id: r.group for r in DatasetReader(directory).records}
    for name, ids in splits.items():
        patients = sorted({str(groups[i]) for i in ids})
        typer.echo(f"{name}: {len(ids)} samples, {len(patients)} patients ({', '.join(patients)})")
    if out is not None:
        write_json(out, splits)
        typer.echo(f"wrote {out}")


# -- mask-guided synthesis: train, sample, memorisation ------------------------------------------------------


class MethodChoice(str, Enum):
    um = "um"
    mask = "mask"


class MetricChoice(str, Enum):
    l2 = "l2"
    ssim = "ssim"


def _given(**values: object) -> dict:
    return {k: v for k, v in values.items() if v is not None}


def _opt(flag: str, text: str, default: object):  # noqa: ANN202 (a typer option)
    """An option whose absence means "from --config, else the config default" (shown in --help)."""
    return typer.Option(None, flag, help=text, show_default=str(default))


@app.command("train")
def train(
    method: Optional[MethodChoice] = typer.Option(None, "--method", help="um: guided by superpixel masks (V2UM2I); mask: by the manual masks (V2M2I).", show_default="um"),
    data: Optional[Path] = typer.Option(None, "--data", help="CT slice dataset (synth prepare; + synth masks for um): ct, mask, guidance, edges."),
    guidance: Optional[Path] = typer.Option(None, "--guidance", help="Dataset with guidance + edges for the same sample ids (instead of --data's own)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (the same command resumes it; more --steps extend it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML / TOML / JSON run config (e.g. RUN/config.json); flags override it."),
    labelled: Optional[str] = _opt("--labelled", "Labelled training slices: all, N slices, a fraction 0.1 / 10%, or Np patients; the rest are unlabelled.", _D.labelled),
    split: Optional[Path] = typer.Option(None, "--split", help="JSON {split: [ids]} (synth split --out): train on --split-name's ids."),
    split_name: Optional[str] = _opt("--split-name", "Which split of --split to train on.", _D.split_name),
    group: Optional[List[str]] = typer.Option(None, "--group", help="Train on this patient only (repeat for several)."),
    size: Optional[int] = _opt("--size", "Training side in pixels (multiple of 2**n-downsample); default: the dataset's.", "the dataset's"),
    batch_size: Optional[int] = _opt("--batch-size", "Slices per mini-batch (labelled and unlabelled).", _D.batch_size),
    edges: Optional[bool] = _opt("--edges/--no-edges", "Feed the edge map as a second input channel.", _D.edges),
    steps: Optional[int] = _opt("--steps", "Training steps (one labelled G+D update each, plus an unlabelled one for um).", _E.steps),
    ngf: Optional[int] = _opt("--ngf", "Generator features of the first layer (16-32 on CPU).", _U.ngf),
    n_downsample: Optional[int] = _opt("--n-downsample", "Generator stride-2 convolutions.", _U.n_downsample),
    n_blocks: Optional[int] = _opt("--n-blocks", "Generator ResNet blocks.", _U.n_blocks),
    norm: Optional[str] = _opt("--norm", "Normalisation: instance, batch, none.", _U.norm),
    ndf: Optional[int] = _opt("--ndf", "Discriminator features of the first layer.", _U.ndf),
    n_layers_d: Optional[int] = _opt("--n-layers-d", "Stride-2 layers of each patch discriminator.", _U.n_layers_d),
    num_d: Optional[int] = _opt("--num-d", "Discriminator scales.", _U.num_d),
    lambda_l1: Optional[float] = _opt("--lambda-l1", "Weight of L1(CT).", _U.lambda_l1),
    lambda_seg: Optional[float] = _opt("--lambda-seg", "Weight of the supervised Dice + CE.", _U.lambda_seg),
    lambda_pseudo: Optional[float] = _opt("--lambda-pseudo", "Weight of the D-masked pseudo-label Dice + CE.", _U.lambda_pseudo),
    pseudo_threshold: Optional[float] = _opt("--pseudo-threshold", "A pixel counts in the pseudo-label loss where D's probability of 'real' exceeds this.", _U.pseudo_threshold),
    teacher_every: Optional[int] = _opt("--teacher-every", "Steps between teacher refreshes (default: one pass over the labelled slices).", "ceil(labelled / batch)"),
    lr: Optional[float] = _opt("--lr", "Adam learning rate of G and D.", _U.lr),
    decay_steps: Optional[int] = _opt("--decay-steps", "Linear learning-rate decay to 0 over the last N steps.", "steps / 4"),
    sample_every: Optional[int] = _opt("--sample-every", "Write a sample grid every N steps.", _E.sample_every),
    checkpoint_every: Optional[int] = _opt("--checkpoint-every", "Write checkpoints/last.ckpt every N steps.", _E.checkpoint_every),
    log_every: Optional[int] = _opt("--log-every", "Average and log the losses every N steps.", _E.log_every),
    workers: Optional[int] = _opt("--workers", "DataLoader worker processes.", _E.num_workers),
    devices: Optional[str] = _opt("--devices", "Lightning devices: auto, 1, 2, ...", _E.devices),
    accelerator: Optional[str] = _opt("--accelerator", "Lightning accelerator: auto, cpu, gpu.", _E.accelerator),
    precision: Optional[str] = _opt("--precision", "32-true, 16-mixed, bf16-mixed.", _E.precision),
    seed: Optional[int] = _opt("--seed", "Seed of the weights and of every step's draws.", _E.seed),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Train the mask-guided CT + segmentation generator (UM-synthesis), resumable; sample grids in RUN/samples."""
    import sys

    from rich.console import Console

    from simreal.configs import build, merge, read_config_file
    from simreal.synth.um import train_synth
    from simreal.synth.um_config import SynthRunConfig

    base = read_config_file(config) if config is not None else {}
    flags = {
        "data": _given(data=None if data is None else str(data), guidance=None if guidance is None else str(guidance),
                       split=None if split is None else str(split), split_name=split_name,
                       groups=None if not group else tuple(group), labelled=labelled, size=size, batch_size=batch_size,
                       edges=edges),
        "um": _given(ngf=ngf, n_downsample=n_downsample, n_blocks=n_blocks, norm=norm, ndf=ndf, n_layers_d=n_layers_d,
                     num_d=num_d, lambda_l1=lambda_l1, lambda_seg=lambda_seg, lambda_pseudo=lambda_pseudo,
                     pseudo_threshold=pseudo_threshold, teacher_every=teacher_every, lr=lr, decay_steps=decay_steps),
        "engine": _given(steps=steps, sample_every=sample_every, checkpoint_every=checkpoint_every, log_every=log_every,
                         num_workers=workers, devices=devices, accelerator=accelerator, precision=precision, seed=seed),
        **_given(out=None if out is None else str(out), method=None if method is None else method.value),
    }
    merged = merge(base, flags)
    for flag, present in (("--data", "data" in merged.get("data", {})), ("--out", "out" in merged)):
        if not present:
            raise SimrealError(f"{flag} is required (as a flag or in --config)")
    run_config = build(SynthRunConfig, merged, source=config)
    try:
        run = train_synth(run_config, progress=progress)
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns Ctrl-C into SystemExit(1)
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        print(f"interrupted: run the same command again to resume {run_config.out} from its last checkpoint", file=sys.stderr)
        raise typer.Exit(130) from None
    Console(stderr=True).print(f"run folder: {run}  (checkpoints/, metrics.csv, tb/, samples/, config.json, data.json)")


@app.command("sample")
def sample(
    model: Path = typer.Option(..., "--model", help="A `synth train` run folder."),
    n: int = typer.Option(..., "--n", min=1, help="Number of samples."),
    out: Path = typer.Option(..., "--out", help="New dataset folder (image, ct, mask, guidance, edges)."),
    source: Optional[Path] = typer.Option(None, "--from", help="Dataset to take guidance from (default: the run's training slices)."),
    seed: int = typer.Option(0, "--seed", help="Sample i draws its source and perturbation from (seed, i)."),
    perturb: str = typer.Option(",".join(_P.kinds), "--perturb", help="Comma list of affine, elastic, jitter, mix; or none."),
    rotate: float = typer.Option(_P.rotate_deg, "--rotate", help="Largest rotation (degrees)."),
    scale: float = typer.Option(_P.scale, "--scale", help="Largest relative scale change."),
    translate: float = typer.Option(_P.translate, "--translate", help="Largest shift (fraction of the side)."),
    elastic_alpha: float = typer.Option(_P.elastic_alpha, "--elastic-alpha", help="Largest elastic displacement (fraction of the side)."),
    elastic_sigma: float = typer.Option(_P.elastic_sigma, "--elastic-sigma", help="Elastic smoothness (Gaussian sigma, fraction of the side)."),
    jitter: int = typer.Option(_P.jitter, "--jitter", help="Largest superpixel level change, in quantisation steps (um only)."),
    step: int = typer.Option(_P.step, "--step", help="Quantisation step of the guidance (synth masks --step)."),
    mix_prob: float = typer.Option(_P.mix_prob, "--mix-prob", help="Probability of mixing with a nearby slice of the same patient."),
    mix_window: int = typer.Option(_P.mix_window, "--mix-window", help="Mixing partner within this many slices."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Samples per forward pass."),
    device: str = typer.Option("auto", "--device", help="torch device: auto, cpu, cuda, cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """New CT slices with masks from a trained generator, from perturbed guidance (provenance in dataset.json)."""
    from simreal.progress import progress_bar
    from simreal.synth.sample import PerturbConfig, parse_perturb, sample_from_run

    cfg = PerturbConfig(kinds=parse_perturb(perturb), rotate_deg=rotate, scale=scale, translate=translate,
                        elastic_alpha=elastic_alpha, elastic_sigma=elastic_sigma, jitter=jitter, step=step,
                        mix_prob=mix_prob, mix_window=mix_window)
    with progress_bar("sampling", enabled=progress, terminal_only=True, transient=True) as bar:
        path = sample_from_run(model, out, n=n, source=source, seed=seed, perturb=cfg, batch_size=batch_size,
                               device=device, progress=bar.update)
    typer.echo(_summary(path))


@app.command("memorisation")
def memorisation(
    samples: Path = typer.Option(..., "--samples", help="Synthetic dataset (synth sample)."),
    model: Optional[Path] = typer.Option(None, "--model", help="The run that made them: its training slices are the reference set."),
    train_dir: Optional[Path] = typer.Option(None, "--train", help="Instead of --model: a dataset of the training slices (all of it)."),
    heldout: Optional[Path] = typer.Option(None, "--heldout", help="Real unseen slices (default with --model: the run dataset's patients it never saw)."),
    size: int = typer.Option(32, "--size", min=4, help="Side of the downsampled images compared."),
    metric: MetricChoice = typer.Option(MetricChoice.l2, "--metric", help="l2 (RMS difference) or ssim (1 - global SSIM)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the summary and per-image rows as JSON here."),
) -> None:
    """Nearest-training-slice distance of every sample, beside the same for real held-out slices."""
    from simreal.atomic import write_json
    from simreal.synth.memorisation import memorisation_check, memorisation_from_run

    if (model is None) == (train_dir is None):
        raise SimrealError("give exactly one of --model RUN or --train DIR")
    if model is not None:
        report = memorisation_from_run(model, samples, heldout, size=size, metric=metric.value)
    else:
        report = memorisation_check(samples, train_dir, heldout, size=size, metric=metric.value)
    s = report.summary
    line = f"samples: median {s['sample_median']:.4f} (n {s['n_samples']}, near-copies below {s['copy_threshold']:.4g}: {100 * s['copies']:.1f}%)"
    if "heldout_median" in s:
        line += f"; held-out real: median {s['heldout_median']:.4f} (n {s['n_heldout']}); samples closer than the held-out 5th percentile: {100 * s['closer_than_heldout_q05']:.1f}%"
    if "cross_patient_median" in s:
        line += f"; real slice to other training patients: median {s['cross_patient_median']:.4f}"
    if "neighbour_median" in s:
        line += f"; real slice to its nearest slice of the same patient: median {s['neighbour_median']:.4f}"
    typer.echo(f"{s['metric']} distance to the nearest of {s['n_train']} training slices at {s['size']} px: {line}")
    if out is not None:
        write_json(out, {"summary": s, "rows": report.rows()})
        typer.echo(f"wrote {out}")
