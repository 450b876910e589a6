"""`simreal predict`: run a trained model over a dataset or an image folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def predict(
    model: Path = typer.Option(..., "--model", help="Training run folder (config.json + checkpoints/)."),
    in_dir: Path = typer.Option(..., "--in", help="A simreal dataset folder or a folder of images (PNG/JPEG/TIFF)."),
    out_dir: Path = typer.Option(..., "--out", help="Output dataset folder (must not exist)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    size: Optional[str] = typer.Option(None, "--size", help="Network input size (default: the training size)."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bar."),
) -> None:
    """Predict depth (mm) or masks with a trained run; outputs keep each input's own resolution."""
    from rich.console import Console

    from simreal.cli.train import parse_size
    from simreal.tasks.predict import predict as run_predict

    out = run_predict(
        model, in_dir, out_dir, batch_size=batch_size, size=None if size is None else parse_size(size),
        device=device, progress=not no_progress,
    )
    Console(stderr=True).print(f"predictions: {out}")
