"""`simreal render laparoscopy`: labelled laparoscopic liver scenes (registered in ``simreal.cli.render``).

The command runs one :class:`~simreal.render.laparoscopy_config.LaparoscopyJob`: from the defaults, or from
``--config FILE`` (YAML, TOML or JSON, or a rendered set's own ``dataset.json``), with every flag given on
the command line laid over it; flags left out change nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, List, Optional

import typer

from simreal.cli.options import RAY_HELP

#: Suffixes ``--write-config`` can write.
WRITE_SUFFIXES = (".yaml", ".yml", ".json")


def laparoscopy(
    out: Optional[Path] = typer.Option(None, "--out", help="Dataset folder to create (must not exist)."),
    config: Optional[Path] = typer.Option(
        None, "--config",
        help="Job file (YAML, TOML or JSON: n, size, seed, livers, orientation, frames_per_scene and the config tree "
        "liver, gallbladder, fat, ligament, wall, camera, tools, appearance, field_stop_prob, field_stop_radius, "
        "normals), or a rendered set's dataset.json to make it again. Flags given here override it.",
    ),
    write_config: Optional[Path] = typer.Option(
        None, "--write-config", help="Write the resolved job to this .yaml/.json file and stop, rendering nothing.",
    ),
    n: Optional[int] = typer.Option(None, "--n", help="Number of frames (default 100)."),
    size: Optional[int] = typer.Option(None, "--size", help="Square image size in pixels (default 256)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed: same seed and options give the same bytes (default 0)."),
    liver: Optional[List[Path]] = typer.Option(
        None, "--liver",
        help="Liver surface mesh in mm (.obj, .ply, .stl, .off; e.g. P2ILF's meshGT.obj or `simreal anatomy from-ct "
        "--label liver --surface label` output); repeat for several (scene s shows the (s mod K)-th). "
        "Default: the two P2ILF meshes of the real-data folder.",
    ),
    orientation: Optional[str] = typer.Option(
        None, "--orientation",
        help="How each liver's axes are found: auto (ras for simreal CT meshes, else pca), pca or ras (default auto).",
    ),
    frames_per_scene: Optional[int] = typer.Option(
        None, "--frames-per-scene",
        help="Consecutive frames sharing one scene (liver shape, organs); camera, tools, colours change per frame "
        "(default 1).",
    ),
    workers: int = typer.Option(1, "--workers", help="Parallel render processes, or with --ray Ray workers (the bytes do "
                                "not depend on it)."),
    ray: Optional[str] = typer.Option(None, "--ray", metavar="ADDRESS", help=RAY_HELP, show_default=False),
    fov_min: Optional[float] = typer.Option(None, "--fov-min", help="Smallest horizontal field of view, degrees (default 70)."),
    fov_max: Optional[float] = typer.Option(None, "--fov-max", help="Largest horizontal field of view, degrees (default 90)."),
    field_stop_prob: Optional[float] = typer.Option(
        None, "--field-stop-prob", help="Fraction of frames with a circular field stop (black, background class) (default 0.4).",
    ),
    normals: Optional[bool] = typer.Option(
        None, "--normals/--no-normals", help="Write the normals files (default yes).", show_default=False,
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Simulate laparoscopy of a CT-derived liver: RGB, depth (mm), normals, 8-class mask, tool instances, poses.

    Classes (mask ids): 0 background, 1 liver, 2 fat, 3 diaphragm/abdominal wall, 4 ligament, 5 tool shaft,
    6 tool tip, 7 gallbladder. Example: simreal render laparoscopy --out renders/lap --n 100 --size 256 --workers 2
    """
    from simreal.configs import write_config_file
    from simreal.data.writer import partial_dir
    from simreal.errors import SimrealError
    from simreal.render.laparoscopy_run import render_laparoscopy_job, resolve_job

    if (out is None) == (write_config is None):
        raise SimrealError("give --out DIR to render, or --write-config FILE to write the job without rendering")
    if write_config is not None and write_config.suffix.lower() not in WRITE_SUFFIXES:
        raise SimrealError(f"--write-config writes {', '.join(WRITE_SUFFIXES)} files", write_config)
    job = job_from_flags(
        config, n=n, size=size, seed=seed, liver=liver, orientation=orientation, frames_per_scene=frames_per_scene,
        fov_min=fov_min, fov_max=fov_max, field_stop_prob=field_stop_prob, normals=normals,
    )
    if out is None:
        write_config_file(write_config, resolve_job(job))
        typer.echo(f"wrote the render job to {write_config}")
        return
    try:
        path = render_laparoscopy_job(out, job, workers=workers, progress=progress, ray=ray)
    except KeyboardInterrupt:
        print(f"interrupted: finished frames are kept in {partial_dir(out)}; rerun the same command to resume",
              file=sys.stderr)
        raise typer.Exit(130) from None
    typer.echo(f"wrote {job.n} frames to {path}")


def job_from_flags(config: Path | None, **flags: Any):
    """The job ``simreal render laparoscopy`` runs: ``config`` (or the defaults) with the given flags over it.

    Args:
        config: a job file or a rendered ``dataset.json``, or None.
        **flags: the command's options; None means "not given" and changes nothing.

    Returns:
        The validated :class:`~simreal.render.laparoscopy_config.LaparoscopyJob` (livers not resolved).
    """
    from simreal.configs import merge
    from simreal.render.laparoscopy_config import LaparoscopyJob, read_laparoscopy_job

    job = read_laparoscopy_job(config) if config is not None else LaparoscopyJob()
    changes: dict[str, Any] = {k: flags[k] for k in ("n", "size", "seed", "orientation", "frames_per_scene")
                               if flags[k] is not None}
    if flags["liver"]:
        changes["livers"] = [str(p) for p in flags["liver"]]
    cfg: dict[str, Any] = {}
    if flags["fov_min"] is not None or flags["fov_max"] is not None:
        lo, hi = job.config.camera.fov_deg
        cfg["camera"] = {"fov_deg": [flags["fov_min"] if flags["fov_min"] is not None else lo,
                                     flags["fov_max"] if flags["fov_max"] is not None else hi]}
    for key in ("field_stop_prob", "normals"):
        if flags[key] is not None:
            cfg[key] = flags[key]
    if cfg:
        changes["config"] = cfg
    if not changes:
        return job
    return LaparoscopyJob.from_dict(merge(job.to_dict(), changes))
