"""`simreal train depth|seg`: train task networks on simreal datasets."""

import typer

app = typer.Typer(help="Train depth or segmentation networks (Lightning; resumable runs).", no_args_is_help=True)
