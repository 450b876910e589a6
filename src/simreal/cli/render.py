"""`simreal render ...`: render labelled datasets from anatomy."""

import typer

app = typer.Typer(help="Render labelled image datasets (RGB, depth, normals, masks, camera) from anatomy.", no_args_is_help=True)
