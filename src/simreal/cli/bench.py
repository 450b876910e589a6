"""`simreal bench ...`: measure speed and print the figures."""

import typer

app = typer.Typer(help="Benchmarks that print their figures (rendering and training throughput).", no_args_is_help=True)
