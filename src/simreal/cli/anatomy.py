"""`simreal anatomy ...`: make the surfaces that get rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from simreal.anatomy.lumen import HOLLOW_ORGANS, LUMEN_HU, MARGIN_MM, TAGGED_MIN_HU, UNTAGGED_MAX_HU
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
    ct: Path = typer.Option(..., "--ct", help="CT volume in HU: a .nii/.nii.gz file or a folder holding one DICOM series."),
    labels: Path = typer.Option(..., "--labels", help="Label volume (e.g. a TotalSegmentator output) on the CT's grid."),
    label: str = typer.Option("colon", "--label", help="Structure to extract: a name (e.g. colon, liver) or a numeric id."),
    out: Path = typer.Option(..., "--out", help="Output mesh (.ply)."),
    label_map: Optional[Path] = typer.Option(
        None, "--label-map", help='JSON {"id": "name"}; default: the bundled TotalSegmentator v2 "total" map.'
    ),
    surface: str = typer.Option(
        "auto",
        "--surface",
        help=(
            "lumen: the air/mucosa surface inside a hollow organ, what an endoscope sees; label: the outer "
            "surface of the label mask; auto: lumen for the gas-filled organs "
            f"({', '.join(sorted(HOLLOW_ORGANS))}), label for every other (liver, kidney, bladder...)."
        ),
    ),
    lumen_hu: float = typer.Option(
        LUMEN_HU, "--lumen-hu", help="Lumen: air is below this HU (gas -1000, fat -100, wall +20 to +80)."
    ),
    margin_mm: float = typer.Option(
        MARGIN_MM, "--margin-mm", help="Lumen: look for air within this distance (mm) of the label too."
    ),
    contents: str = typer.Option(
        "air",
        "--contents",
        help=(
            "Lumen: air (the endoscope sees the gas surface; a fluid pool shows as its flat top) or air+fluid "
            "(virtual cleansing: fluid and stool touching the gas count as lumen, the wall under them is the surface)."
        ),
    ),
    untagged_max_hu: float = typer.Option(
        UNTAGGED_MAX_HU, "--untagged-max-hu", help="air+fluid: untagged fluid/stool is --lumen-hu up to this HU (water 0 +- 20)."
    ),
    tagged_min_hu: float = typer.Option(
        TAGGED_MIN_HU, "--tagged-min-hu", help="air+fluid: contrast-tagged fluid/stool is this HU and above."
    ),
    smooth_iterations: int = typer.Option(10, "--smooth-iterations", help="Taubin smoothing iterations (0 = none)."),
    closing: int = typer.Option(1, "--closing", help="Label surface: closing radius in voxels to fill small holes (0 = none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the baked mucosa texture pattern."),
) -> None:
    """Extract the surface of one labelled structure from a CT as a mesh with a fly-through centerline.

    Lumen surface: the CT iso-surface at --lumen-hu inside the label grown by --margin-mm, around its largest 26-connected air pocket (marching cubes on the intensities, sub-voxel accurate); the centerline runs through that air, its radius is the distance to the surface. Label surface: the largest connected part of the label, marching cubes on the mask, the centerline from its skeleton. Vertices in world mm (RAS) with the label volume's affine, Taubin-smoothed, normals into the lumen. CT and labels must share one voxel grid (axis flips are fine). Every option and the HU ranges used go into the mesh's metadata.

    Example: simreal anatomy from-ct --ct ct.nii.gz --labels seg.nii.gz --label colon --out colon.ply
    """
    from simreal.anatomy.from_ct import mesh_from_ct

    if smooth_iterations < 0 or closing < 0:
        raise SimrealError("--smooth-iterations and --closing must be >= 0")
    if out.suffix.lower() != ".ply":
        raise SimrealError("anatomy meshes are written as .ply", out)
    mesh = mesh_from_ct(
        ct,
        labels,
        label,
        label_map=label_map,
        surface=surface,  # type: ignore[arg-type]  # checked by mesh_from_ct
        lumen_hu=lumen_hu,
        margin_mm=margin_mm,
        contents=contents,  # type: ignore[arg-type]
        untagged_max_hu=untagged_max_hu,
        tagged_min_hu=tagged_min_hu,
        smooth_iterations=smooth_iterations,
        closing_voxels=closing,
        texture_seed=seed,
    )
    save_mesh(mesh, out)
    md = mesh.metadata
    radius = float(np.median(mesh.centerline_radius))
    typer.echo(f"{md['label']} (id {md['label_id']}), {md['surface']} surface, median radius {radius:.1f} mm: " + _summary(mesh, out))


from simreal.cli.render_cinematic import ct_phantom  # noqa: E402  (a CT volume of a procedural colon)

app.command("ct-phantom")(ct_phantom)
