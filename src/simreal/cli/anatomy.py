"""`simreal anatomy ...`: make the surfaces that get rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from simreal.anatomy.mesh import AnatomyMesh, save_mesh
from simreal.errors import SimrealError

app = typer.Typer(help="Make anatomy meshes: procedural colon, or a surface from a labelled CT.", no_args_is_help=True)


def _summary(mesh: AnatomyMesh, out: Path) -> str:
    length = float(np.linalg.norm(np.diff(mesh.centerline, axis=0), axis=1).sum())
    n_polyps = int(mesh.face_instances.max()) if len(mesh.face_instances) else 0
    return (
        f"{len(mesh.vertices)} vertices, {len(mesh.faces)} faces, {n_polyps} polyps, "
        f"centerline {length:.1f} mm ({len(mesh.centerline)} points) -> {out}"
    )


@app.command("colon")
def colon(
    seed: int = typer.Option(0, "--seed", help="Random seed: the same seed and options give the same mesh."),
    out: Path = typer.Option(..., "--out", help="Output mesh (.ply, simreal anatomy format)."),
    length: Optional[float] = typer.Option(None, "--length", help="Centerline length in mm (default: random 220-380)."),
    n_polyps: Optional[int] = typer.Option(None, "--n-polyps", help="Number of polyps (default: random 1-4)."),
) -> None:
    """Make a procedural colon segment: curved tube, haustral folds, taeniae, mucosa texture and polyps.

    Polyp faces carry label 1 and instance ids 1..K; the centerline (fly-through order) and lumen radius are stored in the PLY, with every drawn parameter in its header. Example: simreal anatomy colon --seed 3 --out colon.ply --n-polyps 2
    """
    from simreal.anatomy.colon import make_colon

    overrides: dict = {}
    if length is not None:
        overrides["length_mm"] = float(length)
    if n_polyps is not None:
        overrides["n_polyps"] = int(n_polyps)
    mesh = make_colon(seed, **overrides)
    save_mesh(mesh, out)
    typer.echo(_summary(mesh, out))


@app.command("from-ct")
def from_ct(
    ct: Path = typer.Option(..., "--ct", help="CT volume: a .nii/.nii.gz file or a folder holding one DICOM series."),
    labels: Path = typer.Option(..., "--labels", help="Label volume (e.g. a TotalSegmentator output) on the CT's grid."),
    label: str = typer.Option("colon", "--label", help="Structure to extract: a name (e.g. colon, liver) or a numeric id."),
    out: Path = typer.Option(..., "--out", help="Output mesh (.ply)."),
    label_map: Optional[Path] = typer.Option(
        None, "--label-map", help='JSON {"id": "name"}; default: the bundled TotalSegmentator v2 "total" map.'
    ),
    smooth_iterations: int = typer.Option(10, "--smooth-iterations", help="Taubin smoothing iterations (0 = none)."),
    closing: int = typer.Option(1, "--closing", help="Morphological closing radius in voxels to fill small holes (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the baked mucosa texture pattern."),
) -> None:
    """Extract one labelled structure from a CT as a surface mesh with a centerline.

    Keeps the largest connected part of the label, runs marching cubes, places vertices in world mm (RAS) with the label volume's affine, Taubin-smooths, and skeletonises the mask for a fly-through centerline with the lumen radius. CT and labels must share one voxel grid (axis flips are fine).

    Example: simreal anatomy from-ct --ct ct.nii.gz --labels seg.nii.gz --label colon --out colon.ply
    """
    from simreal.anatomy.from_ct import mesh_from_ct

    if smooth_iterations < 0 or closing < 0:
        raise SimrealError("--smooth-iterations and --closing must be >= 0")
    mesh = mesh_from_ct(
        ct, labels, label, label_map=label_map, smooth_iterations=smooth_iterations, closing_voxels=closing, texture_seed=seed
    )
    save_mesh(mesh, out)
    typer.echo(f"{mesh.metadata['label']} (id {mesh.metadata['label_id']}): " + _summary(mesh, out))
