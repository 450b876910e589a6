"""`simreal experiment NAME` and `simreal report DIR`: named protocols end to end, with an HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from simreal.errors import SimrealError


def experiment(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Experiment to run (see the list below)."),
    scale: str = typer.Option("smoke", "--scale", help="smoke (< 2 min, what the tests run) | small (this CPU, < 1 h) | full (GPU)."),
    out: Path = typer.Option(..., "--out", help="Folder for everything the experiment writes."),
    seed: int = typer.Option(0, "--seed", help="Seed for rendering, splits and training."),
    workers: int = typer.Option(2, "--workers", min=1, help="Render processes."),
    real_data: Optional[Path] = typer.Option(
        None, "--real-data", help="Folder holding the real data sets (default: $SIMREAL_DATA, else ../shared/data)."
    ),
    config: Optional[Path] = typer.Option(
        None, "--config", help="YAML, TOML or JSON file: scale, seed, workers, real_data and 'preset' (any field of "
        "the scale preset, e.g. depth_epochs); options typed on the command line override it."
    ),
    baseline: Optional[Path] = typer.Option(
        None, "--baseline", help="For experiments that adapt the baseline's synthetic-only networks: a finished "
        "`experiment baseline` folder of the same scale and seed to start from (default: run it into OUT/baseline)."
    ),
    real_images: Optional[Path] = typer.Option(
        None, "--real-images", help="For sim2real-laparoscopy: a folder of your own real laparoscopic frames (any "
        "size; no labels needed) whose look the translators learn (default: the two public P2ILF frames)."
    ),
) -> None:
    """Run a named protocol end to end; writes OUT/results.json and a self-contained OUT/report.html.

    Experiments: baseline (render synthetic colonoscopy from disjoint train / validation / test colons, train
    depth and polyp segmentation, evaluate once on the test colons and on real CVC-ClinicDB split by video
    sequence, beside trivial predictors); depth-recipes (the depth training recipes compared on validation
    colons only); reverse-da (a SimGAN refiner maps realistic-look and real frames to the synthetic look in front
    of the baseline's networks); sim2real-seg (CycleGAN and MUNIT + MS-SSIM translate the synthetic frames to the
    real look; polyp networks trained with zero manual labels, tested on real CVC-ClinicDB); sim2real-laparoscopy
    (the same translators on simulated laparoscopic liver scenes with the look of your own real frames, or of the
    two P2ILF frames: label-validity audit and zero-label segmenters, shown on the real frames); cinematic-ft
    (fine-tune the baseline's depth network on path-traced renders of CT); um-synthesis (CT + liver-mask
    generators guided by superpixels vs by manual masks, MM-FID and utility on held-out patients). A rerun with the same arguments
    reuses every stage already finished.
    """
    from simreal.experiments import EXPERIMENTS, SCALES

    if name not in EXPERIMENTS:
        raise SimrealError(f"unknown experiment {name!r}; known: {', '.join(sorted(EXPERIMENTS))}")
    settings = {"scale": scale, "seed": seed, "workers": workers, "real_data": real_data}
    preset = None
    if config is not None:
        settings, preset = _settings_from_file(ctx, config, settings, name)
    if settings["scale"] not in SCALES:
        raise SimrealError(f"unknown scale {settings['scale']!r}; known: {', '.join(SCALES)}")
    import inspect

    run = EXPERIMENTS[name]
    for option, value, key, why in (("--baseline", baseline, "baseline", "does not start from a baseline"),
                                    ("--real-images", real_images, "real_images", "takes no real frames of yours")):
        if value is not None:
            if key not in inspect.signature(run).parameters:
                raise SimrealError(f"experiment {name!r} {why}; leave {option} out")
            settings[key] = value
    results = run(out=out, preset=preset, **settings)
    for row in results.get("targets", []):
        mark = "met" if row["met"] else "NOT met"
        typer.echo(f"  {row['target']}: {row['value']:.4g} (threshold {row['threshold']}) {mark}")
    typer.echo(f"wrote {out / 'results.json'} and {out / 'report.html'}")


def _settings_from_file(ctx: typer.Context, path: Path, settings: dict, name: str):
    """(settings, preset) from a config file, with the options typed on the command line laid over it."""
    import dataclasses

    from simreal.cli.options import typed_on_command_line
    from simreal.configs import build, merge, read_config_file
    from simreal.experiments.colon_protocol import SCALE_PRESETS, ColonScale

    mapping = read_config_file(path)
    allowed = {"experiment", "scale", "seed", "workers", "real_data", "preset"}
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise SimrealError(f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                           f"known: {', '.join(sorted(allowed))}", path)
    if mapping.get("experiment", name) != name:
        raise SimrealError(f"this config is for experiment {mapping['experiment']!r}, not {name!r}", path)
    typed = typed_on_command_line(ctx, settings)
    out = {k: settings[k] if k in typed or k not in mapping else mapping[k] for k in settings}
    if out["scale"] not in SCALE_PRESETS:
        raise SimrealError(f"unknown scale {out['scale']!r}; known: {', '.join(SCALE_PRESETS)}", path)
    if out["real_data"] is not None:
        out["real_data"] = Path(out["real_data"])
    base = dataclasses.asdict(SCALE_PRESETS[out["scale"]])
    preset = build(ColonScale, merge(base, mapping.get("preset") or {}), source=path, prefix="preset")
    return out, preset


def report(directory: Path = typer.Argument(..., help="An experiment's output folder.")) -> None:
    """Rebuild DIR/report.html from DIR/results.json (tables, plots, image grids, config, environment, timings)."""
    from simreal.experiments.report import write_report

    typer.echo(f"wrote {write_report(directory)}")
