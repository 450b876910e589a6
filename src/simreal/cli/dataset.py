"""`simreal dataset ...`: check, look at and import dataset folders."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer

from simreal.cli import dataset_import

app = typer.Typer(help="Check, look at and import simreal dataset folders.", no_args_is_help=True)
app.add_typer(dataset_import.app, name="import")


@app.command()
def validate(
    directory: Path = typer.Argument(..., help="Dataset folder (holds dataset.json and samples.jsonl)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Decode every file of a dataset and check it against dataset.json.

    Exits with status 2 and one line naming the first bad file and its problem: damaged dataset.json or
    samples.jsonl, a file no record names, missing, corrupt or truncated files, wrong size or channels,
    NaN or negative depth, non-unit normals, mask values outside the declared classes.
    """
    from simreal.data.reader import validate_dataset

    from simreal.progress import progress_bar

    with progress_bar("validating", enabled=progress, terminal_only=True, transient=True) as bar:
        report = validate_dataset(directory, progress=bar.update)
    typer.echo(f"ok: {directory}: {report.n_samples} samples, {report.n_files} files ({', '.join(report.kinds)})")


@app.command()
def show(
    directories: List[Path] = typer.Argument(..., help="One or more dataset folders."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    n: int = typer.Option(16, "--n", min=1, help="Number of samples, spread evenly over the datasets."),
    columns: int = typer.Option(4, "--columns", min=1, help="Samples per row."),
) -> None:
    """Write a contact sheet: RGB, depth colour-mapped with a scale bar (mm), masks overlaid."""
    from simreal.data.contact_sheet import contact_sheet

    path = contact_sheet(directories, out, n=n, columns=columns)
    typer.echo(f"wrote {path}")
