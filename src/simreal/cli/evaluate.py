"""`simreal eval depth|seg` and `simreal compare`: metrics and paired statistics."""

import typer

app = typer.Typer(help="Evaluate predictions against ground truth: per-sample rows.csv and summary.json.", no_args_is_help=True)


def compare() -> None:
    """Paired comparison of two per-sample metric tables."""
    raise typer.Exit(1)
