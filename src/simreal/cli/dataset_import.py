"""`simreal dataset import ...`: turn external data sets into simreal dataset folders.

    simreal dataset import cvc SRC --out DIR [--size N]
    simreal dataset import kvasir SRC --out DIR [--size N]
    simreal dataset import folder SRC --out DIR [--masks DIR] [--size N] [--modality M] [--domain D]
    simreal dataset import simcol SRC --out DIR [--size N]
    simreal dataset import c3vd SRC --out DIR [--size N]

Every command shows a progress bar on stderr (``--no-progress`` turns it off) and, like every simreal
command, reports bad input as one line and exit status 2, leaving no half-written dataset.
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from simreal.progress import progress_bar
from rich.console import Console

app = typer.Typer(
    help="Import external data (CVC-ClinicDB, Kvasir-SEG, image folders, SimCol3D, C3VD) as simreal datasets.",
    no_args_is_help=True,
)

_SIZE_HELP = "Resize to N x N pixels (images bilinear, masks and depth nearest); default: keep the stored size."
_OUT = typer.Option(..., "--out", help="New dataset folder.")
_SIZE = typer.Option(None, "--size", help=_SIZE_HELP)
# Each importer's SRC argument (its --help text names the layout it expects).
_CVC_SRC = typer.Argument(..., help="CVC-ClinicDB folder with images/ and masks/ (or Original/, Ground Truth/).")
_KVASIR_SRC = typer.Argument(..., help="Kvasir-SEG folder with images/ and masks/.")
_SIMCOL_SRC = typer.Argument(..., help="SimCol3D folder (searched for FrameBuffer_NNNN.png + Depth_NNNN.png).")
_C3VD_SRC = typer.Argument(..., help="C3VD folder (searched for NNNN_color.png + NNNN_depth.tiff).")
_PROGRESS = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr.")


def _report(out: Path) -> None:
    from simreal.data.reader import DatasetReader

    ds = DatasetReader(out)
    groups = Counter(r.group for r in ds.records if r.group is not None)
    extra = f", {len(groups)} groups" if groups else ""
    size = "varying sizes" if ds.info.image_size is None else f"{ds.info.image_size[0]}x{ds.info.image_size[1]}"
    Console().print(f"wrote {len(ds)} samples ({size}{extra}, files: {', '.join(ds.info.files)}) to {out}")


def _import(module: str, importer: str, src: Path, out: Path, progress: bool, **kw) -> None:
    """Call ``simreal.data.external.<module>.<importer>(src, out, **kw)`` with a progress bar and print a
    summary of the result.

    The importer module is loaded only when its command runs, so ``--help`` stays fast.
    """
    run = getattr(importlib.import_module(f"simreal.data.external.{module}"), importer)
    with progress_bar("importing", enabled=progress, terminal_only=True, transient=True) as bar:
        path = run(src, out, progress=bar.update, **kw)
    _report(path)


@app.command("cvc")
def cvc(src: Path = _CVC_SRC, out: Path = _OUT, size: Optional[int] = _SIZE, progress: bool = _PROGRESS) -> None:
    """CVC-ClinicDB: frames + polyp masks, grouped into its 29 video sequences."""
    _import("cvc", "import_cvc", src, out, progress, size=size)


@app.command("kvasir")
def kvasir(src: Path = _KVASIR_SRC, out: Path = _OUT, size: Optional[int] = _SIZE, progress: bool = _PROGRESS) -> None:
    """Kvasir-SEG: frames + polyp masks (no sequence information)."""
    _import("cvc", "import_kvasir", src, out, progress, size=size)


@app.command("folder")
def folder(
    src: Path = typer.Argument(..., help="Folder of images (png, jpg, bmp, tif; RGB, RGBA or grey)."),
    out: Path = _OUT,
    masks: Optional[Path] = typer.Option(None, "--masks", help="Folder of binary masks matched by file stem."),
    size: Optional[int] = _SIZE,
    modality: str = typer.Option("image", "--modality", help="Modality written to dataset.json."),
    domain: str = typer.Option("real", "--domain", help="Domain written to dataset.json."),
    progress: bool = _PROGRESS,
) -> None:
    """Any image folder, with optional masks (thresholded at 127 into background / foreground)."""
    _import("folder", "import_folder", src, out, progress, masks=masks, size=size, modality=modality, domain=domain)


@app.command("simcol")
def simcol(src: Path = _SIMCOL_SRC, out: Path = _OUT, size: Optional[int] = _SIZE, progress: bool = _PROGRESS) -> None:
    """SimCol3D: synthetic frames + depth (16-bit PNG, v / 255 / 256 * 20 cm; 65535 = no depth) as depth in mm."""
    _import("simcol", "import_simcol", src, out, progress, size=size)


@app.command("c3vd")
def c3vd(src: Path = _C3VD_SRC, out: Path = _OUT, size: Optional[int] = _SIZE, progress: bool = _PROGRESS) -> None:
    """C3VD: phantom colonoscopy frames + depth (16-bit, 0..65535 = 0..100 mm) as depth in mm."""
    _import("c3vd", "import_c3vd", src, out, progress, size=size)
