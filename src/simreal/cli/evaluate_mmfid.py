"""`simreal eval mmfid`: MM-FID and MM-STD between two image sets (folders or simreal datasets).

    simreal eval mmfid A B [--scales 128,256,512,1024] [--aggregate l2-row|mean|ref-normalised]
                           [--batch-size 16] [--device cpu] [--out result.json]

A is the reference (real), B the evaluated set (synthetic); MM-STD is B's feature spread.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from simreal.errors import SimrealError


class AggregateChoice(str, Enum):
    l2_row = "l2-row"
    mean = "mean"
    ref_normalised = "ref-normalised"


def _scales(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SimrealError(f"--scales must be comma-separated pixel sizes, e.g. 128,256,512,1024; got {text!r}") from None
    if not values:
        raise SimrealError("--scales is empty")
    return values


def mmfid_command(
    a: Path = typer.Argument(..., help="Reference image folder or simreal dataset (e.g. real CT slices)."),
    b: Path = typer.Argument(..., help="Evaluated image folder or simreal dataset (e.g. synthetic slices)."),
    scales: str = typer.Option("128,256,512,1024", "--scales", help="Square sizes in pixels (Inception needs >= 75)."),
    aggregate: AggregateChoice = typer.Option(
        AggregateChoice.l2_row, "--aggregate",
        help="l2-row: as released (each extractor's FIDs L2-normalised across scales, then the mean: loses the "
        "absolute scale); mean: plain mean of the FIDs; ref-normalised: FIDs over real-vs-real halves of A.",
    ),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Images per forward pass."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:1, ..."),
    seed: int = typer.Option(0, "--seed", help="Seed of A's halves for ref-normalised."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result as JSON here."),
) -> None:
    """MM-FID / MM-STD (UM-synthesis paper) with the FID Inception-v3 at native size over several scales."""
    from simreal.atomic import write_json
    from simreal.metrics.mmfid import mm_fid

    r = mm_fid(
        a, b, scales=_scales(scales), aggregate_mode=aggregate.value, batch_size=batch_size, device=device,  # type: ignore[arg-type]
        reference_seed=seed,
    )
    echo = typer.echo
    echo(f"A: {a} (n = {r.n_a}), B: {b} (n = {r.n_b})")
    for name, fids, stds in zip(r.extractors, r.fid, r.std):
        echo(f"{name}")
        for s, f, sd in zip(r.scales, fids, stds):
            echo(f"  {s:5d} px: FID {f:10.4f}  STD {sd:.4f}")
    echo(f"MM-FID {r.mm_fid:.4f} ({r.mm_fid_spread:.4f})  MM-STD {r.mm_std:.4f} ({r.mm_std_spread:.4f})  [{r.aggregate}]")
    if r.aggregate == "l2-row":
        echo("note: l2-row normalises each extractor's FIDs across scales: it ranks shapes, not distances "
             "(one extractor, 4 scales: always in [0.25, 0.5]); see --aggregate mean")
    if out is not None:
        write_json(out, r.to_dict())
        echo(f"wrote {out}")
