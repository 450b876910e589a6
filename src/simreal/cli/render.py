"""`simreal render ...`: render labelled datasets from anatomy.

``simreal render colon`` runs one :class:`~simreal.render.job.RenderJob`: from the defaults, or from
``--config FILE`` (YAML, TOML or JSON, or a rendered set's own ``dataset.json``), with every flag given on
the command line laid over it. Flags left out change nothing, so a file's values are never silently
replaced by a flag's default.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from simreal.cli.options import RAY_HELP

app = typer.Typer(help="Render labelled image datasets (RGB, depth, normals, masks, camera) from anatomy.", no_args_is_help=True)

#: Suffixes ``--write-config`` can write (TOML is read, not written).
WRITE_SUFFIXES = (".yaml", ".yml", ".json")


@app.command("colon")
def colon(
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder to create (must not exist)."),
    config: Optional[Path] = typer.Option(
        None, "--config",
        help="Render job file (YAML, TOML or JSON: n, size, seed, anatomy, colons and the config tree lens, pose, "
        "polyp_view, appearance, normals, field_stop, look, realism; visibility), or a rendered set's dataset.json to make it again. "
        "Flags given here override it.",
    ),
    write_config: Optional[Path] = typer.Option(
        None, "--write-config",
        help="Write the resolved job (file, flags and defaults) to this .yaml/.json file and stop, rendering nothing.",
    ),
    n: Optional[int] = typer.Option(None, "--n", help="Number of frames (default 100)."),
    size: Optional[int] = typer.Option(None, "--size", help="Square image size in pixels (default 256)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed: same seed and options give the same bytes (default 0)."),
    anatomy: Optional[List[Path]] = typer.Option(
        None, "--anatomy",
        help="Anatomy mesh (.ply from `simreal anatomy ...`); repeat for several (frame i renders the (i mod K)-th). "
        "Replaces the anatomies of --config. Default: procedural colon of --seed.",
    ),
    colons: Optional[int] = typer.Option(
        None, "--colons",
        help="Render K procedural colons (seeds derived from --seed, listed in dataset.json); frame i renders "
        "colon i mod K, and its record's group names the colon. Replaces the anatomies of --config.",
    ),
    workers: Optional[int] = typer.Option(
        None, "--workers",
        help="Parallel render processes (default 1), or with --ray Ray workers (default one per CPU of the cluster). "
        "The bytes do not depend on it.",
        show_default=False,
    ),
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="ADDRESS",
        help=RAY_HELP,
        show_default=False,
    ),
    fov_min: Optional[float] = typer.Option(None, "--fov-min", help="Smallest horizontal field of view, degrees (default 100)."),
    fov_max: Optional[float] = typer.Option(None, "--fov-max", help="Largest horizontal field of view, degrees (default 140)."),
    fisheye: Optional[bool] = typer.Option(
        None, "--fisheye/--pinhole", help="Equidistant fisheye lens with random k1 distortion, or pinhole (default pinhole).",
        show_default=False,
    ),
    normals: Optional[bool] = typer.Option(
        None, "--normals/--no-normals", help="Write the normals files (default yes).", show_default=False,
    ),
    offset_frac: Optional[float] = typer.Option(
        None, "--offset-frac", help="Largest camera offset from the centerline, fraction of the lumen radius (default 0.5).",
    ),
    look_deg: Optional[float] = typer.Option(
        None, "--look-deg", help="Largest yaw/pitch away from the lumen direction, degrees (default 25).",
    ),
    polyp_view_prob: Optional[float] = typer.Option(
        None, "--polyp-view-prob", help="Fraction of frames looking at a polyp close up (default 0.5).",
    ),
    field_stop: Optional[str] = typer.Option(
        None, "--field-stop",
        help="Black border outside the field stop: none, circle or octagon; depth, normals, mask and instance are 0 "
        "there too (no label without image) (default none).",
    ),
    look: Optional[str] = typer.Option(
        None, "--look",
        help="training or realistic: the realistic look renders the same frames (same seed: same poses, colours and "
        "labels) with what real frames have on top: fine vessels, wet highlights, mucus, bubbles, fluid, blur, "
        "colour cast, sensor noise, JPEG; its ranges are config.realism in --config (default training).",
    ),
    visibility: Optional[str] = typer.Option(
        None, "--visibility",
        help="How each pixel's first surface is found: raster (the mesh rasterised with an exact test of each "
        "pixel's ray, pinhole lenses; fisheye ones are cast by Embree) or embree (every ray cast by Embree): the "
        "same labels but at exact ties, depth equal to float32 rounding (default raster; a dataset.json without "
        "the field was cast by Embree).",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Fly a virtual colonoscope through a colon: RGB, depth (mm), normals, polyp mask and instances."""
    from simreal.configs import write_config_file
    from simreal.data.writer import partial_dir
    from simreal.errors import SimrealError
    from simreal.render.run import render_job

    if (out is None) == (write_config is None):
        raise SimrealError("give --out DIR to render, or --write-config FILE to write the job without rendering")
    if write_config is not None and write_config.suffix.lower() not in WRITE_SUFFIXES:
        raise SimrealError(f"--write-config writes {', '.join(WRITE_SUFFIXES)} files", write_config)
    job = resolve_job(
        config, n=n, size=size, seed=seed, anatomy=anatomy, colons=colons, fov_min=fov_min, fov_max=fov_max,
        fisheye=fisheye, normals=normals, offset_frac=offset_frac, look_deg=look_deg,
        polyp_view_prob=polyp_view_prob, field_stop=field_stop, look=look, visibility=visibility,
    )
    if out is None:
        write_config_file(write_config, job.resolved().to_dict())
        typer.echo(f"wrote the render job to {write_config}")
        return
    try:
        path = render_job(out, job, workers=workers, progress=progress, ray=ray)
    except KeyboardInterrupt:
        print(
            f"interrupted: finished frames are kept in {partial_dir(out)}; rerun the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None
    typer.echo(f"wrote {job.n} frames to {path}")


def resolve_job(config: Path | None, **flags: Any):
    """The job ``simreal render colon`` runs: ``config`` (or the defaults) with the given flags over it.

    Args:
        config: a job file or a rendered ``dataset.json``, or None.
        **flags: the command's options; None means "not given" and changes nothing. ``anatomy`` or
            ``colons`` (a count of procedural colons, seeds from :func:`~simreal.render.run.colon_seeds`)
            replace the file's anatomies together.

    Returns:
        The validated :class:`~simreal.render.job.RenderJob` (not resolved).
    """
    from simreal.configs import merge
    from simreal.render.job import RenderJob, read_render_job
    from simreal.render.run import colon_seeds

    job = read_render_job(config) if config is not None else RenderJob()
    changes: dict[str, Any] = {k: flags[k] for k in ("n", "size", "seed", "visibility") if flags.get(k) is not None}
    if flags["anatomy"] or flags["colons"] is not None:
        seed = changes.get("seed", job.seed)
        changes["anatomy"] = [str(p) for p in flags["anatomy"] or []]
        changes["colons"] = colon_seeds(seed, flags["colons"]) if flags["colons"] is not None else []
    lens: dict[str, Any] = {}
    if flags["fov_min"] is not None or flags["fov_max"] is not None:
        lo, hi = job.config.lens.fov_deg
        lens["fov_deg"] = [flags["fov_min"] if flags["fov_min"] is not None else lo,
                           flags["fov_max"] if flags["fov_max"] is not None else hi]
    if flags["fisheye"] is not None:
        lens["fisheye"] = flags["fisheye"]
    pose = {k: flags[k] for k in ("offset_frac", "look_deg") if flags[k] is not None}
    polyp_view = {"prob": flags["polyp_view_prob"]} if flags["polyp_view_prob"] is not None else {}
    top = {k: flags[k] for k in ("normals", "field_stop", "look") if flags.get(k) is not None}
    cfg = {**top, **{k: v for k, v in (("lens", lens), ("pose", pose), ("polyp_view", polyp_view)) if v}}
    if cfg:
        changes["config"] = cfg
    if not changes:
        return job
    return RenderJob.from_dict(merge(job.to_dict(), changes))


def bench_render_ray(
    n: int = typer.Option(100, "--n", help="Frames per run."),
    size: int = typer.Option(256, "--size", help="Square image size in pixels."),
    workers: int = typer.Option(2, "--workers", help="Local processes, and Ray workers of a local Ray instance."),
    seed: int = typer.Option(0, "--seed", help="Dataset seed (and procedural colon seed)."),
) -> None:
    """Colonoscopy rendering on Ray beside local processes: frames/s of W Ray workers and of W processes in
    one run, and whether the two datasets are the same bytes (`simreal render colon --ray` vs `--workers`)."""
    from rich.console import Console

    from simreal.bench.render_ray import bench_render_ray as bench

    r = bench(n=n, size=size, workers=workers, seed=seed)
    console = Console()
    console.print(f"render colon {n} frames of {size}x{size}; local Ray instance started in {r.ray_start_s:.1f} s "
                  "(not in its run's time)", soft_wrap=True)
    for run in r.runs:
        console.print(f"{run.executor} x{run.workers}: {run.frames_per_s:.1f} frames/s overall ({run.wall_s:.1f} s), "
                      f"{run.steady_frames_per_s:.1f} frames/s steady", soft_wrap=True)
    console.print(f"same bytes: {'yes' if r.identical else 'NO'}")
    if not r.identical:
        raise typer.Exit(1)


from simreal.cli.render_laparoscopy import laparoscopy; app.command("laparoscopy")(laparoscopy)  # noqa: E402, E702
from simreal.cli.render_cinematic import cinematic; app.command("cinematic")(cinematic)  # noqa: E402, E702
