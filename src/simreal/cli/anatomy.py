"""`simreal anatomy ...`: make the surfaces that get rendered."""

import typer

app = typer.Typer(help="Make anatomy meshes: procedural colon, or a surface from a labelled CT.", no_args_is_help=True)
