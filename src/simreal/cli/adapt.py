"""`simreal adapt ...`: adversarial domain adaptation (train a refiner, apply it to datasets).

Every flag maps to one field of the run config (:class:`simreal.adapt.config.ReverseRunConfig`); a flag
not given takes its value from ``--config FILE`` when one is given, else the default shown in ``--help``.
A run folder's own ``config.json`` is a valid ``--config``: it resumes (or, with a larger ``--steps``,
extends) that run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

import typer

from simreal.adapt.config import EngineConfig as _E
from simreal.adapt.config import ReverseDAConfig as _R
from simreal.adapt.config import UnpairedDataConfig as _D
from simreal.cli.options import print_run_folder
from simreal.errors import SimrealError

app = typer.Typer(
    help="Domain adaptation by adversarial training: `reverse` trains a refiner (real -> synthetic look), "
    "`apply` refines a dataset with it; `forward` trains a sim -> real translator (MUNIT, CycleGAN), "
    "`translate` translates a dataset with it (labels copied byte for byte).",
    no_args_is_help=True,
)


def parse_size(text: str) -> tuple[int, int]:
    """'64' -> (64, 64); '48x64' -> (48, 64) (height x width)."""
    try:
        parts = [int(p) for p in text.lower().replace(",", "x").split("x")]
    except ValueError:
        raise SimrealError(f"--size must look like 64 or 48x64, got {text!r}") from None
    if len(parts) not in (1, 2):
        raise SimrealError(f"--size must look like 64 or 48x64, got {text!r}")
    return (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


_DEVICES_HELP = "Devices (processes) per node: auto, 1, 2, ... or GPU ids 0,1; --batch-size is shared by all processes."
_STRATEGY_HELP = "auto, ddp (re-runs this command in each process; GPUs, nodes) or ddp_spawn (multiprocessing)."
_NODES_HELP = "Machines (each runs this command with NODE_RANK, MASTER_ADDR, MASTER_PORT set); needs --strategy ddp."


def _opt(flag: str, text: str, default: object) -> Any:
    """An option whose absence means "from --config, else the config default" (shown in --help)."""
    return typer.Option(None, flag, help=text, show_default=str(default))


@app.command("reverse")
def reverse(
    real: Optional[Path] = typer.Option(None, "--real", help="REAL images to refine: a simreal dataset or an image folder."),
    synthetic: Optional[Path] = typer.Option(None, "--synthetic", help="Synthetic images with the target look (same kinds of folder)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (the same command resumes it; more --steps extend it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML / TOML / JSON run config (e.g. RUN/config.json); flags override it."),
    steps: Optional[int] = _opt("--steps", "Training steps in all, pre-training included.", _E.steps),
    size: Optional[str] = _opt("--size", "Training crop size: 64 or HxW.", _D.size[0]),
    batch_size: Optional[int] = _opt("--batch-size", "Images per mini-batch.", _D.batch_size),
    mode: Optional[str] = _opt("--mode", "crop (native-resolution windows) or resize (whole images).", _D.mode),
    ngf: Optional[int] = _opt("--ngf", "Refiner features per layer (32 is a CPU-scale choice).", _R.ngf),
    blocks: Optional[int] = _opt("--blocks", "Refiner ResNet blocks.", _R.n_blocks),
    norm: Optional[str] = _opt("--norm", "Refiner norm: none, batch, instance.", _R.norm),
    identity_init: Optional[bool] = _opt("--identity-init/--no-identity-init", "Residual refiner that starts as the identity.", _R.identity_init),
    d_norm: Optional[str] = _opt("--d-norm", "Discriminator norm: none, batch, instance.", _R.d_norm),
    lambda_reg: Optional[float] = _opt("--lambda-reg", "Self-regularisation weight on the PER-PIXEL MEAN L1 (a summed-L1 weight delta is delta * B*C*H*W here).", _R.lambda_reg),
    psi: Optional[str] = _opt("--psi", "What self-regularisation compares: identity, grayscale, lowpass.", _R.psi),
    psi_sigma: Optional[float] = _opt("--psi-sigma", "Gaussian sigma (px) of --psi lowpass.", _R.psi_sigma),
    history: Optional[int] = _opt("--history", "History buffer capacity in images (0: none).", _R.history_size),
    pretrain_r: Optional[int] = _opt("--pretrain-r", "Refiner pre-training steps (self-regularisation only).", _R.pretrain_r),
    pretrain_d: Optional[int] = _opt("--pretrain-d", "Discriminator pre-training steps.", _R.pretrain_d),
    k_r: Optional[int] = _opt("--k-r", "Refiner updates per adversarial step.", _R.k_r),
    k_d: Optional[int] = _opt("--k-d", "Discriminator updates per adversarial step.", _R.k_d),
    lr_r: Optional[float] = _opt("--lr-r", "Refiner Adam learning rate.", _R.lr_r),
    lr_d: Optional[float] = _opt("--lr-d", "Discriminator Adam learning rate.", _R.lr_d),
    sample_every: Optional[int] = _opt("--sample-every", "Write a sample grid every N steps.", _E.sample_every),
    checkpoint_every: Optional[int] = _opt("--checkpoint-every", "Write checkpoints/last.ckpt every N steps.", _E.checkpoint_every),
    log_every: Optional[int] = _opt("--log-every", "Average and log the losses every N steps.", _E.log_every),
    workers: Optional[int] = _opt("--workers", "DataLoader worker processes.", _E.num_workers),
    devices: Optional[str] = _opt("--devices", _DEVICES_HELP, _E.devices),
    strategy: Optional[str] = _opt("--strategy", _STRATEGY_HELP, _E.strategy),
    num_nodes: Optional[int] = _opt("--num-nodes", _NODES_HELP, _E.num_nodes),
    accelerator: Optional[str] = _opt("--accelerator", "Lightning accelerator: auto, cpu, gpu.", _E.accelerator),
    precision: Optional[str] = _opt("--precision", "32-true, 16-mixed, bf16-mixed.", _E.precision),
    seed: Optional[int] = _opt("--seed", "Seed of the weights and of every step's draws.", _E.seed),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Reverse domain adaptation: train a SimGAN refiner that makes REAL frames look synthetic."""

    from simreal.adapt.config import ReverseRunConfig
    from simreal.adapt.reverse import train_reverse
    from simreal.configs import build, merge, read_config_file

    base = read_config_file(config) if config is not None else {}
    flags = {
        "data": _given(real=None if real is None else str(real), synthetic=None if synthetic is None else str(synthetic),
                       size=None if size is None else parse_size(size), batch_size=batch_size, mode=mode),
        "reverse": _given(ngf=ngf, n_blocks=blocks, norm=norm, identity_init=identity_init, d_norm=d_norm,
                          lambda_reg=lambda_reg, psi=psi, psi_sigma=psi_sigma, history_size=history,
                          pretrain_r=pretrain_r, pretrain_d=pretrain_d, k_r=k_r, k_d=k_d, lr_r=lr_r, lr_d=lr_d),
        "engine": _given(steps=steps, sample_every=sample_every, checkpoint_every=checkpoint_every, log_every=log_every,
                         num_workers=workers, devices=devices, strategy=strategy, num_nodes=num_nodes, accelerator=accelerator,
                         precision=precision, seed=seed),
        **_given(out=None if out is None else str(out)),
    }
    merged = merge(base, flags)
    for flag, present in (("--real", "real" in merged.get("data", {})), ("--synthetic", "synthetic" in merged.get("data", {})),
                          ("--out", "out" in merged)):
        if not present:
            raise SimrealError(f"{flag} is required (as a flag or in --config)")
    run_config = build(ReverseRunConfig, merged, source=config)
    try:
        run = train_reverse(run_config, progress=progress)
    except (KeyboardInterrupt, SystemExit) as exc:  # Lightning turns Ctrl-C into SystemExit(1) after shutting down
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        print(f"interrupted: run the same command again to resume {run_config.out} from its last checkpoint",
              file=sys.stderr)
        raise typer.Exit(130) from None
    print_run_folder(run)


@app.command("apply")
def apply(
    model: Path = typer.Option(..., "--model", help="An adapt run folder (e.g. of `simreal adapt reverse`)."),
    in_dir: Path = typer.Option(..., "--in", help="A simreal dataset or an image folder, images of any size."),
    out_dir: Path = typer.Option(..., "--out", help="The refined dataset to write (must not exist)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="torch device: auto, cpu, cuda, cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Refine every image with a trained refiner; labels and metadata are copied byte for byte."""
    from rich.console import Console

    from simreal.adapt.apply import apply_refiner

    out = apply_refiner(model, in_dir, out_dir, batch_size=batch_size, device=device, progress=progress)
    Console(stderr=True).print(f"refined dataset: {out}")


def bench_adapt(
    method: str = typer.Option("reverse", "--method", help="reverse, munit or cyclegan."),
    size: int = typer.Option(64, "--size", help="Square crop size in pixels."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per mini-batch."),
    ngf: int = typer.Option(32, "--ngf", help="Refiner features per layer."),
    blocks: int = typer.Option(4, "--blocks", help="Refiner ResNet blocks."),
    k_r: int = typer.Option(2, "--k-r", help="Refiner updates per step."),
    k_d: int = typer.Option(1, "--k-d", help="Discriminator updates per step."),
    steps: int = typer.Option(10, "--steps", help="Timed steps (after 2 warm-up steps)."),
    repeats: int = typer.Option(2, "--repeats", help="Measurements of each loop (the fastest counts)."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda."),
    d_layers: Optional[int] = typer.Option(None, "--d-layers", help="MUNIT discriminator layers (4) / CycleGAN PatchGAN layers (3)."),
    d_scales: Optional[int] = typer.Option(None, "--d-scales", help="MUNIT discriminator scales (3)."),
) -> None:
    """Adversarial steps/s (reverse DA, MUNIT or CycleGAN): the engine vs a plain PyTorch loop.

    For munit and cyclegan, --ngf is the generators' and discriminators' width (MUNIT's dim) and --blocks
    their residual blocks; a step is one discriminator and one generator update.
    """
    from rich.console import Console

    from simreal.bench.adapt import bench_adapt as run_bench

    r = run_bench(size=size, batch_size=batch_size, ngf=ngf, n_blocks=blocks, k_r=k_r, k_d=k_d, steps=steps,
                  repeats=repeats, device=device, method=method, d_layers=d_layers, d_scales=d_scales)
    if r.method != "reverse":
        nets = ("MUNIT: 2 generators + 2 multi-scale D" if r.method == "munit" else "CycleGAN: 2 ResNet generators + 2 PatchGANs")
        Console().print(
            f"adapt {r.method} {r.device}: {nets}, dim {r.ngf} x {r.n_blocks} blocks ({r.params / 1e6:.2f} M params), "
            f"{r.size}x{r.size} batch {r.batch_size}, {r.threads} threads: "
            f"plain loop {r.plain_steps_per_s:.3f} steps/s ({1000 / r.plain_steps_per_s:.0f} ms/step), "
            f"engine {r.engine_steps_per_s:.3f} steps/s ({1000 / r.engine_steps_per_s:.0f} ms/step), "
            f"engine overhead {100 * r.overhead:+.1f}%",
            soft_wrap=True,
        )
        return
    Console().print(
        f"adapt reverse {r.device}: refiner ngf {r.ngf} x {r.n_blocks} blocks + local D ({r.params / 1e6:.2f} M params), "
        f"{r.size}x{r.size} batch {r.batch_size}, k_r {r.k_r} k_d {r.k_d}, {r.threads} threads: "
        f"plain loop {r.plain_steps_per_s:.3f} steps/s ({1000 / r.plain_steps_per_s:.0f} ms/step), "
        f"engine {r.engine_steps_per_s:.3f} steps/s ({1000 / r.engine_steps_per_s:.0f} ms/step), "
        f"engine overhead {100 * r.overhead:+.1f}%",
        soft_wrap=True,
    )


# -- forward DA: sim -> real translators -------------------------------------------------------------------

def _both(munit: object, cyclegan: object) -> str:
    return f"munit {munit} / cyclegan {cyclegan}"


#: forward flag -> {method: field of that method's config}; a flag absent for a method is refused with it.
_FORWARD_FIELDS: dict[str, dict[str, str]] = {
    "dim": {"munit": "dim", "cyclegan": "ngf"},
    "n_res": {"munit": "n_res", "cyclegan": "n_blocks"},
    "downsample": {"munit": "n_downsample", "cyclegan": "n_downsampling"},
    "d_dim": {"munit": "d_dim", "cyclegan": "ndf"},
    "d_layers": {"munit": "d_n_layer", "cyclegan": "d_n_layers"},
    "d_norm": {"munit": "d_norm", "cyclegan": "d_norm"},
    "lr": {"munit": "lr", "cyclegan": "lr"},
    "d_scales": {"munit": "d_num_scales"},
    "style_dim": {"munit": "style_dim"},
    "mlp_dim": {"munit": "mlp_dim"},
    "style_downsample": {"munit": "style_n_downsample"},
    "gan_w": {"munit": "gan_w"},
    "recon_x_w": {"munit": "recon_x_w"},
    "recon_c_w": {"munit": "recon_c_w"},
    "recon_s_w": {"munit": "recon_s_w"},
    "recon_x_cyc_w": {"munit": "recon_x_cyc_w"},
    "ms_ssim_a_w": {"munit": "ms_ssim_a_w"},
    "ms_ssim_b_w": {"munit": "ms_ssim_b_w"},
    "ms_ssim_kernel": {"munit": "ms_ssim_kernel"},
    "ms_ssim_scales": {"munit": "ms_ssim_scales"},
    "real_style_p": {"munit": "real_style_p"},
    "weight_decay": {"munit": "weight_decay"},
    "lr_step": {"munit": "lr_step"},
    "lr_gamma": {"munit": "lr_gamma"},
    "norm": {"cyclegan": "norm"},
    "dropout": {"cyclegan": "dropout"},
    "lambda_a": {"cyclegan": "lambda_a"},
    "lambda_b": {"cyclegan": "lambda_b"},
    "lambda_identity": {"cyclegan": "lambda_identity"},
    "pool": {"cyclegan": "pool_size"},
    "lr_constant_steps": {"cyclegan": "lr_constant_steps"},
    "lr_decay_steps": {"cyclegan": "lr_decay_steps"},
}

#: Batch size of both translators' papers (MUNIT / Pfeiffer et al. and CycleGAN train with batch 1).
FORWARD_BATCH_SIZE = 1


@app.command("forward")
def forward(
    synthetic: Optional[Path] = typer.Option(None, "--synthetic", help="Domain A: SYNTHETIC images (a simreal dataset or an image folder)."),
    real: Optional[Path] = typer.Option(None, "--real", help="Domain B: REAL images with the target look (same kinds of folder)."),
    method: Optional[str] = typer.Option(None, "--method", help="munit (Pfeiffer et al.'s MUNIT with MS-SSIM) or cyclegan."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder (the same command resumes it; more --steps extend it)."),
    config: Optional[Path] = typer.Option(None, "--config", help="YAML / TOML / JSON run config (e.g. RUN/config.json); flags override it."),
    steps: Optional[int] = _opt("--steps", "Training steps.", _E.steps),
    size: Optional[str] = _opt("--size", "Training crop size: 64 or HxW (MUNIT's default D needs >= 64).", _D.size[0]),
    batch_size: Optional[int] = _opt("--batch-size", "Images per mini-batch.", FORWARD_BATCH_SIZE),
    mode: Optional[str] = _opt("--mode", "crop (native-resolution windows) or resize (whole images).", _D.mode),
    dim: Optional[int] = _opt("--dim", "Generator width (MUNIT dim / CycleGAN ngf; 16-32 at CPU scale).", _both(64, 64)),
    n_res: Optional[int] = _opt("--n-res", "Residual blocks (MUNIT n_res / CycleGAN n_blocks).", _both(4, 9)),
    downsample: Optional[int] = _opt("--downsample", "Generator down-samplings.", _both(2, 2)),
    d_dim: Optional[int] = _opt("--d-dim", "Discriminator width (MUNIT d_dim / CycleGAN ndf).", _both(64, 64)),
    d_layers: Optional[int] = _opt("--d-layers", "Discriminator layers (MUNIT n_layer / CycleGAN n_layers).", _both(4, 3)),
    d_norm: Optional[str] = _opt("--d-norm", "Discriminator norm: none, batch, instance.", _both("none", "instance")),
    lr: Optional[float] = _opt("--lr", "Adam learning rate.", _both(1e-4, 2e-4)),
    d_scales: Optional[int] = _opt("--d-scales", "MUNIT: discriminator scales.", 3),
    style_dim: Optional[int] = _opt("--style-dim", "MUNIT: style code length.", 8),
    mlp_dim: Optional[int] = _opt("--mlp-dim", "MUNIT: width of the style MLP.", 256),
    style_downsample: Optional[int] = _opt("--style-downsample", "MUNIT: style encoder down-samplings.", 4),
    gan_w: Optional[float] = _opt("--gan-w", "MUNIT: adversarial weight.", 1.0),
    recon_x_w: Optional[float] = _opt("--recon-x-w", "MUNIT: image reconstruction weight.", 10.0),
    recon_c_w: Optional[float] = _opt("--recon-c-w", "MUNIT: content reconstruction weight.", 1.0),
    recon_s_w: Optional[float] = _opt("--recon-s-w", "MUNIT: style reconstruction weight.", 1.0),
    recon_x_cyc_w: Optional[float] = _opt("--recon-x-cyc-w", "MUNIT: cycle weight.", 10.0),
    ms_ssim_a_w: Optional[float] = _opt("--ms-ssim-a-w", "MUNIT: 1 - MS-SSIM of brightness, sim -> real.", 5.0),
    ms_ssim_b_w: Optional[float] = _opt("--ms-ssim-b-w", "MUNIT: 1 - MS-SSIM of brightness, real -> sim.", 3.0),
    ms_ssim_kernel: Optional[int] = _opt("--ms-ssim-kernel", "MUNIT: MS-SSIM window (px, odd).", 11),
    ms_ssim_scales: Optional[int] = _opt("--ms-ssim-scales", "MUNIT: MS-SSIM levels (unset: as many as the size allows).", "by size"),
    real_style_p: Optional[float] = _opt("--real-style-p", "MUNIT: probability of the real batch's style instead of N(0, I).", 0.5),
    weight_decay: Optional[float] = _opt("--weight-decay", "MUNIT: Adam weight decay.", 1e-4),
    lr_step: Optional[int] = _opt("--lr-step", "MUNIT: halve (lr-gamma) the learning rate every N steps.", 100000),
    lr_gamma: Optional[float] = _opt("--lr-gamma", "MUNIT: learning-rate decay factor.", 0.5),
    norm: Optional[str] = _opt("--norm", "CycleGAN: generator norm (instance, batch, none).", "instance"),
    dropout: Optional[float] = _opt("--dropout", "CycleGAN: dropout in the ResNet blocks.", 0.0),
    lambda_a: Optional[float] = _opt("--lambda-a", "CycleGAN: cycle weight A -> B -> A.", 10.0),
    lambda_b: Optional[float] = _opt("--lambda-b", "CycleGAN: cycle weight B -> A -> B.", 10.0),
    lambda_identity: Optional[float] = _opt("--lambda-identity", "CycleGAN: identity weight (relative).", 0.5),
    pool: Optional[int] = _opt("--pool", "CycleGAN: image pool size.", 50),
    lr_constant_steps: Optional[int] = _opt("--lr-constant-steps", "CycleGAN: steps at the full learning rate.", 100000),
    lr_decay_steps: Optional[int] = _opt("--lr-decay-steps", "CycleGAN: steps of linear decay after them.", 100000),
    sample_every: Optional[int] = _opt("--sample-every", "Write a sample grid every N steps.", _E.sample_every),
    checkpoint_every: Optional[int] = _opt("--checkpoint-every", "Write checkpoints/last.ckpt every N steps.", _E.checkpoint_every),
    log_every: Optional[int] = _opt("--log-every", "Average and log the losses every N steps.", _E.log_every),
    workers: Optional[int] = _opt("--workers", "DataLoader worker processes.", _E.num_workers),
    devices: Optional[str] = _opt("--devices", _DEVICES_HELP, _E.devices),
    strategy: Optional[str] = _opt("--strategy", _STRATEGY_HELP, _E.strategy),
    num_nodes: Optional[int] = _opt("--num-nodes", _NODES_HELP, _E.num_nodes),
    accelerator: Optional[str] = _opt("--accelerator", "Lightning accelerator: auto, cpu, gpu.", _E.accelerator),
    precision: Optional[str] = _opt("--precision", "32-true, 16-mixed, bf16-mixed.", _E.precision),
    seed: Optional[int] = _opt("--seed", "Seed of the weights and of every step's draws.", _E.seed),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Forward domain adaptation: train a translator that makes SYNTHETIC images look real (labels stay valid)."""

    from simreal.adapt.config import FORWARD_METHODS
    from simreal.adapt.runs import method_field, run_config_class
    from simreal.configs import build, merge, read_config_file

    base = read_config_file(config) if config is not None else {}
    name = method if method is not None else base.get("method")
    if name is None:
        raise SimrealError("--method is required (munit or cyclegan), as a flag or in --config")
    if name not in FORWARD_METHODS:
        raise SimrealError(f"--method must be one of {', '.join(FORWARD_METHODS)}, got {name!r}")
    if "method" in base and base["method"] != name:
        raise SimrealError(f"--method {name} but the --config holds a {base['method']!r} run", config)
    values = dict(dim=dim, n_res=n_res, downsample=downsample, d_dim=d_dim, d_layers=d_layers, d_norm=d_norm, lr=lr,
                  d_scales=d_scales, style_dim=style_dim, mlp_dim=mlp_dim, style_downsample=style_downsample, gan_w=gan_w,
                  recon_x_w=recon_x_w, recon_c_w=recon_c_w, recon_s_w=recon_s_w, recon_x_cyc_w=recon_x_cyc_w,
                  ms_ssim_a_w=ms_ssim_a_w, ms_ssim_b_w=ms_ssim_b_w, ms_ssim_kernel=ms_ssim_kernel,
                  ms_ssim_scales=ms_ssim_scales, real_style_p=real_style_p, weight_decay=weight_decay, lr_step=lr_step,
                  lr_gamma=lr_gamma, norm=norm, dropout=dropout, lambda_a=lambda_a, lambda_b=lambda_b,
                  lambda_identity=lambda_identity, pool=pool, lr_constant_steps=lr_constant_steps,
                  lr_decay_steps=lr_decay_steps)
    method_flags: dict[str, Any] = {}
    for flag, value in values.items():
        if value is None:
            continue
        target = _FORWARD_FIELDS[flag].get(name)
        if target is None:
            owner = ", ".join(_FORWARD_FIELDS[flag])
            raise SimrealError(f"--{flag.replace('_', '-')} is a {owner} flag; it does not apply to --method {name}")
        method_flags[target] = value
    flags = {
        "data": _given(real=None if real is None else str(real), synthetic=None if synthetic is None else str(synthetic),
                       size=None if size is None else parse_size(size), batch_size=batch_size, mode=mode),
        method_field(name): method_flags,
        "engine": _given(steps=steps, sample_every=sample_every, checkpoint_every=checkpoint_every, log_every=log_every,
                         num_workers=workers, devices=devices, strategy=strategy, num_nodes=num_nodes, accelerator=accelerator,
                         precision=precision, seed=seed),
        **_given(out=None if out is None else str(out)),
        "method": name,
    }
    merged = merge({"data": {"batch_size": FORWARD_BATCH_SIZE}}, merge(base, flags))
    for flag, present in (("--synthetic", "synthetic" in merged.get("data", {})), ("--real", "real" in merged.get("data", {})),
                          ("--out", "out" in merged)):
        if not present:
            raise SimrealError(f"{flag} is required (as a flag or in --config)")
    run_config = build(run_config_class(name), merged, source=config)
    if name == "munit":
        from simreal.adapt.munit import train_munit as train
    else:
        from simreal.adapt.cyclegan import train_cyclegan as train
    try:
        run = train(run_config, progress=progress)
    except (KeyboardInterrupt, SystemExit) as exc:
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            raise
        print(f"interrupted: run the same command again to resume {run_config.out} from its last checkpoint",
              file=sys.stderr)
        raise typer.Exit(130) from None
    print_run_folder(run)


@app.command("translate")
def translate(
    model: Path = typer.Option(..., "--model", help="An `adapt forward` run folder (munit or cyclegan)."),
    in_dir: Path = typer.Option(..., "--in", help="A simreal dataset (labels are carried over) or an image folder."),
    out_dir: Path = typer.Option(..., "--out", help="The translated dataset to write (must not exist)."),
    styles: int = typer.Option(1, "--styles", help="K translations per input: ids kept for 1, else <id>_s00 ... (MUNIT only)."),
    style_from: Optional[Path] = typer.Option(None, "--style-from", help="Take the K styles from K real images of this folder (MUNIT)."),
    seed: int = typer.Option(0, "--seed", help="Seeds the random style codes (or which style images are taken)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="torch device: auto, cpu, cuda, cuda:N."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Translate every image with a trained translator; labels are copied byte for byte, styles recorded."""
    from rich.console import Console

    from simreal.adapt.translate import translate_dataset

    out = translate_dataset(model, in_dir, out_dir, styles=styles, style_from=style_from, seed=seed,
                            batch_size=batch_size, device=device, progress=progress)
    Console(stderr=True).print(f"translated dataset: {out}")
