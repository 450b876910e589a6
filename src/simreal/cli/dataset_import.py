"""`simreal dataset import ...`: turn external data sets into simreal dataset folders."""

import typer

app = typer.Typer(help="Import external data (CVC-ClinicDB, Kvasir-SEG, image folders, SimCol3D, C3VD) as simreal datasets.", no_args_is_help=True)
