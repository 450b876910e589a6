"""`simreal eval fid`: FID and KID between two image sets (folders or simreal datasets).

    simreal eval fid A B [--batch-size 32] [--device cpu] [--cache-dir DIR] [--no-cache]
                         [--kid-subsets 100] [--kid-subset-size 1000] [--kid-seed 0] [--fid-method sqrtm|eigh]
                         [--out result.json] [--progress/--no-progress]
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from simreal.errors import SimrealError


class FidMethodChoice(str, Enum):
    sqrtm = "sqrtm"
    eigh = "eigh"


def fid_command(
    a: Path = typer.Argument(..., help="Image folder or simreal dataset A (e.g. real images)."),
    b: Path = typer.Argument(..., help="Image folder or simreal dataset B (e.g. synthetic images)."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per Inception forward pass."),
    device: str = typer.Option("cpu", "--device", help="Where the feature extractor runs: cpu, cuda, cuda:1, ..."),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", help="Feature cache folder (default: $SIMREAL_CACHE/features, else ~/.cache/simreal/features)."
    ),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Read and write cached features."),
    kid_subsets: int = typer.Option(100, "--kid-subsets", min=1, help="KID: number of random subsets."),
    kid_subset_size: int = typer.Option(
        1000, "--kid-subset-size", min=2, help="KID: images per subset (capped at the smaller set)."
    ),
    kid_seed: int = typer.Option(0, "--kid-seed", help="KID: seed of the subset draws."),
    fid_method: FidMethodChoice = typer.Option(
        FidMethodChoice.sqrtm, "--fid-method", help="sqrtm: standard (scipy); eigh: same value, ~10x faster at 2048-d."
    ),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the result as JSON here."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar while featurising."),
) -> None:
    """FID and KID (mean +- std over subsets) between two image sets, with the standard FID Inception-v3.

    Features are computed once per folder and cached outside it; a changed folder is recomputed.
    """
    from simreal.data.writer import write_json
    from simreal.metrics.fid import compare_image_sets

    kwargs = dict(
        batch_size=batch_size,
        device=device,
        cache_dir=cache_dir,
        use_cache=cache,
        kid_subsets=kid_subsets,
        kid_subset_size=kid_subset_size,
        kid_seed=kid_seed,
        fid_method=fid_method.value,
    )
    if progress:
        from simreal.progress import progress_bar

        with progress_bar("image features of set", transient=True, fields=("set",)) as bar:
            r = compare_image_sets(a, b, progress=lambda label, done, total: bar.update(done, total, set=label),
                                   **kwargs)  # type: ignore[arg-type]
    else:
        r = compare_image_sets(a, b, **kwargs)  # type: ignore[arg-type]
    echo = typer.echo  # plain text: paths may hold characters rich would read as markup
    echo(f"A: {r.a} (n_A = {r.n_a}{', cached features' if r.cached_a else ''})")
    echo(f"B: {r.b} (n_B = {r.n_b}{', cached features' if r.cached_b else ''})")
    echo(f"FID  {r.fid:.4f}")
    echo(f"KID  {r.kid_mean:.6f} +- {r.kid_std:.6f}  ({r.kid_subsets} subsets of {r.kid_subset_size})")
    echo(f"features: {r.extractor} ({r.num_features}-d), FID by {r.fid_method}")
    echo(f"note: {r.note}")
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_json(out, r.to_dict())
        except OSError as exc:
            raise SimrealError(f"cannot write the result ({exc.strerror or exc})", out) from None
        echo(f"wrote {out}")
