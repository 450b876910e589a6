"""`simreal eval label-validity`: do translated images still agree with their source's labels?

    simreal eval label-validity --source SIM --translated TRANSLATED --out OUT [--segmenter RUN]
                                [--tolerance PX] [--edge-sigma PX] [--edge-quantile Q]
                                [--include-background] [--device cpu] [--progress/--no-progress]

Writes ``OUT/rows.csv`` (one row per translated sample) and ``OUT/summary.json`` (with groups); see
:mod:`simreal.metrics.label_validity`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def label_validity_command(
    source: Path = typer.Option(..., "--source", help="The dataset that was translated (images + mask labels)."),
    translated: Path = typer.Option(..., "--translated", help="Its translation (e.g. from `simreal adapt translate`)."),
    out: Path = typer.Option(..., "--out", help="Output folder for rows.csv and summary.json."),
    segmenter: Optional[Path] = typer.Option(None, "--segmenter", help="A segmentation run (`simreal train seg`) to score on the translations."),
    tolerance: float = typer.Option(2.0, "--tolerance", help="Pixels an image edge may lie from a label boundary."),
    edge_sigma: float = typer.Option(1.0, "--edge-sigma", help="Gaussian sigma (px) of the edge map."),
    edge_quantile: float = typer.Option(0.9, "--edge-quantile", help="Strong edges: the image's strongest 1 - Q of pixels."),
    include_background: bool = typer.Option(False, "--include-background", help="Also score class 0 in the segmenter's Dice."),
    device: str = typer.Option("cpu", "--device", help="torch device of the segmenter."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Label validity of translated images: brightness SSIM / MS-SSIM, label boundaries on image edges,
    and (with --segmenter) Dice of a segmenter's predictions on them."""
    from simreal.cli.evaluate import print_summary
    from simreal.metrics.label_validity import evaluate_label_validity

    summary = evaluate_label_validity(source, translated, out, segmenter=segmenter, tolerance_px=tolerance, sigma=edge_sigma,
                                      quantile=edge_quantile, include_background=include_background, device=device,
                                      progress=progress)
    print_summary(summary, out)
