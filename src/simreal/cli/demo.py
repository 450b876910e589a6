"""`simreal demo`: the main job, out of the box: render a small labelled set and show it."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", help="Folder for the demo's dataset and contact sheet."),
    n: int = typer.Option(16, "--n", min=1, help="Frames to render."),
    size: int = typer.Option(256, "--size", min=16, help="Frame size in pixels (square)."),
    seed: int = typer.Option(0, "--seed", help="Seed for the colon and the frames."),
    workers: int = typer.Option(2, "--workers", min=1, help="Render processes."),
) -> None:
    """Render a small labelled colonoscopy set from a procedural colon and write a contact sheet.

    Writes OUT/colon.ply (the anatomy), OUT/frames/ (a simreal dataset: RGB, depth in mm, normals, polyp
    masks, cameras) and OUT/contact_sheet.png. Rerunning with the same arguments gives the same bytes; a
    finished demo folder is reused, never overwritten; one made with other arguments is refused.
    """
    from simreal.anatomy.colon import make_colon
    from simreal.anatomy.mesh import load_mesh, save_mesh
    from simreal.data.contact_sheet import contact_sheet
    from simreal.data.reader import DatasetReader, validate_dataset
    from simreal.errors import SimrealError
    from simreal.render.run import render_colon_dataset

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    mesh_path = out / "colon.ply"
    frames = out / "frames"
    if mesh_path.exists() and load_mesh(mesh_path).metadata.get("seed") != seed:
        raise SimrealError("holds a demo colon of another seed; use another --out or --seed", mesh_path)
    if frames.exists():
        info = DatasetReader(frames).info
        if (info.seed, info.n_samples, info.image_size) != (seed, n, (size, size)):
            raise SimrealError(
                f"holds a demo of other arguments (seed {info.seed}, n {info.n_samples}, size {info.image_size}); "
                "use another --out",
                frames,
            )
    if not mesh_path.exists():
        save_mesh(make_colon(seed), mesh_path)
    if not frames.exists():
        render_colon_dataset(frames, n=n, size=size, seed=seed, anatomy=mesh_path, workers=workers)
    report = validate_dataset(frames)
    sheet = contact_sheet([frames], out / "contact_sheet.png", n=min(n, 16))
    typer.echo(
        f"demo: {report.n_samples} labelled frames in {frames} (validated), contact sheet {sheet} "
        f"[{time.perf_counter() - start:.1f} s]"
    )
