"""`simreal bench ...`: measure speed and print the figures."""

from typing import Optional

import typer

from simreal.cli.adapt import bench_adapt

app = typer.Typer(help="Benchmarks that print their figures (rendering and training throughput).", no_args_is_help=True)


@app.command("render")
def render(
    n: int = typer.Option(200, "--n", help="Frames per measurement."),
    size: int = typer.Option(256, "--size", help="Square image size in pixels."),
    workers: str = typer.Option("1,2", "--workers", help="Worker counts to measure, comma-separated."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed (and procedural colon seed)."),
    no_normals: bool = typer.Option(False, "--no-normals", help="Do not write normals files."),
    visibility: str = typer.Option(
        "embree,raster", "--visibility",
        help="First-hit backends to measure one after the other, comma-separated: embree, raster.",
    ),
) -> None:
    """Colonoscopy rendering throughput (frames/s per worker count), memory, and time per stage."""
    from rich.console import Console

    from simreal.bench.render import bench_render
    from simreal.errors import SimrealError
    from simreal.render.raycast import VISIBILITIES

    try:
        counts = tuple(int(w) for w in workers.split(","))
    except ValueError:
        raise SimrealError(f"--workers must be comma-separated integers, got {workers!r}") from None
    backends = tuple(v.strip() for v in visibility.split(","))
    if not backends or any(v not in VISIBILITIES for v in backends):
        raise SimrealError(f"--visibility must be a comma-separated list of {', '.join(VISIBILITIES)}, got {visibility!r}")
    console = Console()
    scene, runs = bench_render(n=n, size=size, workers=counts, seed=seed, normals=not no_normals,
                               visibility=backends)
    files = "image, depth, " + ("" if no_normals else "normals, ") + "mask, instance"
    console.print(f"render colon: {scene}, {n} frames of {size}x{size} ({files})", soft_wrap=True)
    for r in runs:
        stages = ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in r.stage_ms.items())
        rss = "parent " + " -> ".join(f"{x:.0f}" for x in r.rss_mb)
        if r.workers_rss_mb:
            rss += f"; {r.workers} workers together " + " -> ".join(f"{x:.0f}" for x in r.workers_rss_mb)
        console.print(
            f"render {size}x{size} {r.visibility} workers={r.workers}: {r.frames_per_s:.1f} frames/s overall, "
            f"{r.steady_frames_per_s:.1f} frames/s steady; CPU {r.cpu_ms_per_frame:.1f} ms per frame (all "
            f"processes); per frame in a worker (ms): {stages}; "
            f"RSS at 10/50/100% (MiB): {rss}; peak RSS {r.peak_rss_mb:.0f} MiB",
            soft_wrap=True,
        )


@app.command("train")
def train(
    size: int = typer.Option(128, "--size", help="Square image size in pixels."),
    batch_size: int = typer.Option(4, "--batch-size", help="Images per step."),
    steps: int = typer.Option(10, "--steps", help="Timed steps (after 2 warm-up steps)."),
    task: str = typer.Option("depth", "--task", help="depth or seg."),
    channels: str = typer.Option("16,32,64,128", "--channels", help="U-Net widths per level, comma-separated."),
    devices: Optional[str] = typer.Option(None, "--devices", help="Process counts to time the whole trainer with "
                                          "(DDP, one global batch), e.g. 1,2; default: the bare network step."),
    accelerator: str = typer.Option("cpu", "--accelerator", help="With --devices: cpu (gloo processes) or gpu."),
) -> None:
    """Training throughput of the task U-Net (images/s) on CPU, and on CUDA when available; with --devices 1,2
    the trainer itself (data loading, Lightning, DDP) with 1 and 2 processes."""
    import torch
    from rich.console import Console

    from simreal.bench.train import bench_train
    from simreal.errors import SimrealError

    try:
        widths = tuple(int(c) for c in channels.split(","))
    except ValueError:
        raise SimrealError(f"--channels must be comma-separated integers, got {channels!r}") from None
    if not widths or min(widths) < 1:
        raise SimrealError(f"--channels must be positive integers, got {channels!r}")
    console = Console()
    if devices is not None:
        _train_processes(console, devices, accelerator, task, size, batch_size, steps, widths)
        return
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        r = bench_train(task=task, size=size, batch_size=batch_size, steps=steps, channels=widths, device=device)
        console.print(
            f"train {r.task} {r.device}: UNet {widths} ({r.params / 1e6:.2f} M params), {r.size}x{r.size} batch "
            f"{r.batch_size}, {r.threads} threads: {r.seconds_per_step * 1000:.1f} ms/step, "
            f"{r.images_per_second:.1f} images/s",
            soft_wrap=True,
        )


def _train_processes(console, devices: str, accelerator: str, task: str, size: int, batch_size: int, steps: int,
                     widths: tuple[int, ...]) -> None:
    from simreal.bench.train import bench_train_processes
    from simreal.errors import SimrealError

    try:
        counts = tuple(int(d) for d in devices.split(","))
    except ValueError:
        raise SimrealError(f"--devices must be comma-separated process counts, got {devices!r}") from None
    for r in bench_train_processes(processes=counts, accelerator=accelerator, task=task, size=size,
                                   batch_size=batch_size, steps=steps, channels=widths):
        console.print(
            f"train {r.task} {r.accelerator}, {r.processes} process(es) x {r.threads} threads: UNet {widths}, "
            f"{r.size}x{r.size} global batch {r.batch_size} ({r.batch_size // r.processes} per process): "
            f"{r.seconds_per_step * 1000:.1f} ms/step, {r.images_per_second:.1f} images/s",
            soft_wrap=True,
        )


app.command("adapt")(bench_adapt)
from simreal.cli.render_cinematic import bench_cinematic; app.command("cinematic")(bench_cinematic)  # noqa: E402, E702
from simreal.cli.render import bench_render_ray; app.command("render-ray")(bench_render_ray)  # noqa: E402, E702
