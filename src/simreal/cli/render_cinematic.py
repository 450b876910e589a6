"""`simreal render cinematic`: volumetric path tracing of a CT (or a CT phantom) under many conditions.

Registered in :mod:`simreal.cli.render` as ``app.command("cinematic")(cinematic)``; the library behind it
is :mod:`simreal.render.cinematic_run`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer


def cinematic(
    out: Path = typer.Option(..., "--out", help="Dataset folder to create (must not exist; an interrupted run resumes)."),
    ct: Optional[Path] = typer.Option(None, "--ct", help="CT volume: NIfTI file or DICOM series folder (HU)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Segmentation on the CT's voxel grid (NIfTI or DICOM series)."),
    label: Optional[str] = typer.Option(
        None, "--label",
        help="Organ in --labels (name from the label map, e.g. colon, or an id): endoluminal views fly through its "
        "lumen; external views write its mask.",
    ),
    label_map: Optional[Path] = typer.Option(None, "--label-map", help="JSON {\"id\": \"name\"} (default: TotalSegmentator v2)."),
    phantom_seed: Optional[int] = typer.Option(
        None, "--phantom-seed", help="Render the CT phantom of procedural colon SEED instead of --ct (polyp masks included).",
    ),
    phantom_voxel_mm: float = typer.Option(1.0, "--phantom-voxel-mm", help="Voxel size of the phantom, mm."),
    phantom_length_mm: Optional[float] = typer.Option(None, "--phantom-length-mm", help="Length of the phantom colon, mm (default: drawn from its seed)."),
    n: int = typer.Option(8, "--n", help="Camera views; each is rendered under every condition (n x conditions frames)."),
    conditions: int = typer.Option(4, "--conditions", help="Rendering conditions (preset jitter, lights, exposure)."),
    spp: int = typer.Option(16, "--spp", help="Monte Carlo samples per pixel."),
    size: int = typer.Option(128, "--size", help="Square image size in pixels."),
    seed: int = typer.Option(0, "--seed", help="Seed: same seed and options give the same bytes."),
    view: str = typer.Option("endoluminal", "--view", help="endoluminal (inside the lumen) or external (orbits around the body)."),
    preset: Optional[List[str]] = typer.Option(
        None, "--preset",
        help="Transfer-function preset (repeat for several; condition k uses the (k mod P)-th): colon-mucosa, colon-pale, "
        "abdomen-soft, bone. Default: the view's (colon-* endoluminal; abdomen-soft and bone external).",
    ),
    light: Optional[List[str]] = typer.Option(
        None, "--light",
        help="Lighting preset a condition may draw (repeat for several): tip-spot, twin-guides, key-fill, environment. "
        "Default: tip-spot and twin-guides endoluminal; key-fill, environment and tip-spot external.",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu (llvm_ad_rgb) or cuda (cuda_ad_rgb)."),
    integrator: str = typer.Option("volpath", "--integrator", help="volpath or prbvolpath (mitsuba3 #336: black artefacts)."),
    max_depth: int = typer.Option(8, "--max-depth", help="Longest light path (scattering events)."),
    field_stop: str = typer.Option("none", "--field-stop", help="none, circle or octagon: black outside, labels 0 there."),
    max_voxels: Optional[int] = typer.Option(None, "--max-voxels", help="Largest medium grid (default 8000000); larger crops are resampled."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Cinematic rendering: Mitsuba 3 volumetric path tracing of a CT with depth (mm) and masks.

    Frames: N views x K conditions of one patient (a CT, or --phantom-seed S for the CT phantom of a
    procedural colon). Every frame records its view, preset, jittered transfer function, lights and spp.
    Needs Mitsuba 3 and, on the CPU, Debian's libllvm19 (apt-get install libllvm19).
    """
    from simreal.data.writer import partial_dir
    from simreal.errors import SimrealError
    from simreal.render.cinematic import CinematicConfig
    from simreal.render.cinematic_run import CinematicJob, render_cinematic_dataset
    from simreal.render.cinematic_source import MAX_VOXELS

    if view not in ("endoluminal", "external"):
        raise SimrealError(f"--view must be endoluminal or external, got {view!r}")
    try:
        config = CinematicConfig(
            view=view, presets=tuple(preset or ()), lights=tuple(light or ()), integrator=integrator,  # type: ignore[arg-type]
            max_depth=max_depth, field_stop=field_stop,  # type: ignore[arg-type]
        )
    except SimrealError as exc:
        raise SimrealError(str(exc).replace("presets: ", "--preset: ").replace("lights: ", "--light: ")) from None
    job = CinematicJob(
        n=n, conditions=conditions, spp=spp, size=size, seed=seed,
        ct=None if ct is None else str(ct), labels=None if labels is None else str(labels), label=label,
        label_map=None if label_map is None else str(label_map), phantom_seed=phantom_seed,
        phantom_voxel_mm=phantom_voxel_mm, phantom_length_mm=phantom_length_mm, device=device,  # type: ignore[arg-type]
        max_voxels=MAX_VOXELS if max_voxels is None else max_voxels, config=config,
    )
    try:
        path = render_cinematic_dataset(out, job, progress=progress)
    except KeyboardInterrupt:
        print(f"interrupted: finished frames are kept in {partial_dir(out)}; rerun the same command to resume",
              file=sys.stderr)
        raise typer.Exit(130) from None
    typer.echo(f"wrote {job.n_frames} frames ({job.n} views x {job.conditions} conditions) to {path}")


def ct_phantom(
    out: Path = typer.Option(..., "--out", help="Folder to create: ct.nii.gz, labels.nii.gz, instances.nii.gz, labels.json, phantom.json."),
    seed: int = typer.Option(0, "--seed", help="Procedural colon seed (also the noise seed)."),
    voxel_mm: float = typer.Option(1.0, "--voxel-mm", help="Isotropic voxel size, mm."),
    length_mm: Optional[float] = typer.Option(None, "--length-mm", help="Colon length, mm (default: drawn from the seed)."),
    n_polyps: Optional[int] = typer.Option(None, "--polyps", help="Number of polyps (default: 1-4 drawn from the seed)."),
) -> None:
    """Write the CT phantom of a procedural colon as NIfTI (HU, labels colon=20 / colon_polyp=150, polyp instances)."""
    from simreal.anatomy.ct_phantom import make_ct_phantom, write_phantom

    overrides: dict = {}
    if length_mm is not None:
        overrides["length_mm"] = float(length_mm)
    if n_polyps is not None:
        overrides["n_polyps"] = int(n_polyps)
    files = write_phantom(make_ct_phantom(seed, voxel_mm=voxel_mm, **overrides), out)
    typer.echo(f"wrote the CT phantom of colon {seed} to {out} ({', '.join(p.name for p in files.values())})")


def bench_cinematic(
    size: int = typer.Option(256, "--size", help="Square image size in pixels."),
    spp: str = typer.Option("4,16", "--spp", help="Samples per pixel to measure, comma-separated."),
    frames: int = typer.Option(3, "--frames", help="Timed frames per way (after a warm-up)."),
    device: str = typer.Option("all", "--device", help="all (every device present), cpu or cuda."),
    phantom_seed: int = typer.Option(3, "--phantom-seed", help="Procedural colon of the CT phantom rendered."),
    phantom_length_mm: float = typer.Option(150.0, "--phantom-length-mm", help="Its length, mm."),
) -> None:
    """Cinematic rendering speed: seconds per frame and simreal's overhead over a bare mi.render."""
    from rich.console import Console

    from simreal.bench.cinematic import bench_cinematic as run_bench
    from simreal.errors import SimrealError

    try:
        counts = tuple(int(s) for s in spp.split(","))
    except ValueError:
        raise SimrealError(f"--spp must be comma-separated integers, got {spp!r}") from None
    if not counts or min(counts) < 1 or frames < 1 or size < 8:
        raise SimrealError("--spp values and --frames must be >= 1 and --size >= 8")
    if device not in ("all", "cpu", "cuda"):
        raise SimrealError(f"--device must be all, cpu or cuda, got {device!r}")
    console = Console()
    scene, rows = run_bench(size=size, spp=counts, frames=frames, devices=None if device == "all" else (device,),
                            phantom_seed=phantom_seed, phantom_length_mm=phantom_length_mm)
    console.print(f"bench cinematic: {scene}", soft_wrap=True)
    for r in rows:
        console.print(
            f"cinematic {r.size}x{r.size} spp {r.spp} on {r.device} ({r.variant}, {r.threads or 'GPU'} threads): "
            f"{r.simreal_s:.2f} s/frame simreal, {r.bare_s:.2f} s bare mi.render -> overhead {r.overhead:.3f}x "
            f"(goal <= 1.10); files {r.write_s * 1e3:.0f} ms; scene build {r.scene_s:.2f} s once per condition "
            f"(excluded); first frame {r.first_s:.2f} s (kernel compilation); median of {r.frames}",
            soft_wrap=True,
        )
