"""`simreal dataset import ...`: turn external data sets into simreal dataset folders.

    simreal dataset import cvc SRC --out DIR [--size N]
    simreal dataset import kvasir SRC --out DIR [--size N]
    simreal dataset import folder SRC --out DIR [--masks DIR] [--size N] [--modality M] [--domain D]
    simreal dataset import simcol SRC --out DIR [--size N]
    simreal dataset import c3vd SRC --out DIR [--size N]
"""

from __future__ import annotations

import importlib
from collections import Counter
from pathlib import Path
from typing import Optional

import typer
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


def _report(out: Path) -> None:
    from simreal.data.reader import DatasetReader

    ds = DatasetReader(out)
    groups = Counter(r.group for r in ds.records if r.group is not None)
    extra = f", {len(groups)} groups" if groups else ""
    size = "varying sizes" if ds.info.image_size is None else f"{ds.info.image_size[0]}x{ds.info.image_size[1]}"
    Console().print(f"wrote {len(ds)} samples ({size}{extra}, files: {', '.join(ds.info.files)}) to {out}")


def _import(module: str, importer: str, src: Path, out: Path, **kw) -> None:
    """Call ``simreal.data.external.<module>.<importer>(src, out, **kw)`` and print a summary of the result.

    The importer module is loaded only when its command runs, so ``--help`` stays fast.
    """
    run = getattr(importlib.import_module(f"simreal.data.external.{module}"), importer)
    _report(run(src, out, **kw))


@app.command("cvc")
def cvc(src: Path = _CVC_SRC, out: Path = _OUT, size: Optional[int] = _SIZE) -> None:
    """CVC-ClinicDB: frames + polyp masks, grouped into its 29 video sequences."""
    _import("cvc", "import_cvc", src, out, size=size)


@app.command("kvasir")
def kvasir(src: Path = _KVASIR_SRC, out: Path = _OUT, size: Optional[int] = _SIZE) -> None:
    """Kvasir-SEG: frames + polyp masks (no sequence information)."""
    _import("cvc", "import_kvasir", src, out, size=size)


@app.command("folder")
def folder(
    src: Path = typer.Argument(..., help="Folder of images (png, jpg, bmp, tif; RGB, RGBA or grey)."),
    out: Path = _OUT,
    masks: Optional[Path] = typer.Option(None, "--masks", help="Folder of binary masks matched by file stem."),
    size: Optional[int] = _SIZE,
    modality: str = typer.Option("image", "--modality", help="Modality written to dataset.json."),
    domain: str = typer.Option("real", "--domain", help="Domain written to dataset.json."),
) -> None:
    """Any image folder, with optional masks (thresholded at 127 into background / foreground)."""
    _import("folder", "import_folder", src, out, masks=masks, size=size, modality=modality, domain=domain)


@app.command("simcol")
def simcol(src: Path = _SIMCOL_SRC, out: Path = _OUT, size: Optional[int] = _SIZE) -> None:
    """SimCol3D: synthetic frames + depth (16-bit PNG, v / 255 / 256 * 20 cm) as depth in mm."""
    _import("simcol", "import_simcol", src, out, size=size)


@app.command("c3vd")
def c3vd(src: Path = _C3VD_SRC, out: Path = _OUT, size: Optional[int] = _SIZE) -> None:
    """C3VD: phantom colonoscopy frames + depth (16-bit, 0..65535 = 0..100 mm) as depth in mm."""
    _import("c3vd", "import_c3vd", src, out, size=size)
