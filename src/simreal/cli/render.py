"""`simreal render ...`: render labelled datasets from anatomy."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(help="Render labelled image datasets (RGB, depth, normals, masks, camera) from anatomy.", no_args_is_help=True)


@app.command("colon")
def colon(
    out: Path = typer.Option(..., "--out", help="Dataset folder to create (must not exist)."),
    n: int = typer.Option(100, "--n", help="Number of frames."),
    size: int = typer.Option(256, "--size", help="Square image size in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed and options give the same bytes."),
    anatomy: Optional[List[Path]] = typer.Option(
        None, "--anatomy",
        help="Anatomy mesh (.ply from `simreal anatomy ...`); repeat for several (frame i renders the (i mod K)-th). "
        "Default: procedural colon of --seed.",
    ),
    colons: Optional[int] = typer.Option(
        None, "--colons",
        help="Render K procedural colons (seeds derived from --seed, listed in dataset.json); frame i renders "
        "colon i mod K, and its record's group names the colon.",
    ),
    workers: int = typer.Option(1, "--workers", help="Parallel render processes."),
    fov_min: float = typer.Option(100.0, "--fov-min", help="Smallest horizontal field of view, degrees."),
    fov_max: float = typer.Option(140.0, "--fov-max", help="Largest horizontal field of view, degrees."),
    fisheye: bool = typer.Option(False, "--fisheye", help="Equidistant fisheye lens with random k1 distortion."),
    no_normals: bool = typer.Option(False, "--no-normals", help="Do not write the normals files."),
    offset_frac: float = typer.Option(0.5, "--offset-frac", help="Largest camera offset from the centerline, fraction of the lumen radius."),
    look_deg: float = typer.Option(25.0, "--look-deg", help="Largest yaw/pitch away from the lumen direction, degrees."),
    polyp_view_prob: float = typer.Option(0.5, "--polyp-view-prob", help="Fraction of frames looking at a polyp close up (8-40 mm)."),
    field_stop: str = typer.Option("none", "--field-stop", help="Black border outside the field stop: none, circle or octagon; depth, normals, mask and instance are 0 there too (no label without image)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Fly a virtual colonoscope through a colon: RGB, depth (mm), normals, polyp mask and instances."""
    from simreal.render.colonoscopy import ColonoscopyConfig
    from simreal.data.writer import partial_dir
    from simreal.render.run import colon_seeds, render_colon_dataset

    config = dataclasses.replace(
        ColonoscopyConfig(), fov_deg=(fov_min, fov_max), fisheye=fisheye, normals=not no_normals,
        offset_frac=offset_frac, look_deg=look_deg, polyp_view_prob=polyp_view_prob, field_stop=field_stop,
    )
    try:
        seeds = None if colons is None else colon_seeds(seed, colons)
        path = render_colon_dataset(
            out, n=n, size=size, seed=seed, anatomy=anatomy or None, colons=seeds, workers=workers, config=config,
            progress=progress,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: finished frames are kept in {partial_dir(out)}; rerun the same command to resume",
            file=sys.stderr,
        )
        raise typer.Exit(130) from None
    typer.echo(f"wrote {n} frames to {path}")
