"""The ``simreal`` command: one group per pipeline stage.

Every command reports bad input as one line on stderr (``error: <file>: <problem>``) and exits with
status 2; nothing it was writing is left half-done.
"""

from __future__ import annotations

import sys

import typer

from simreal.cli import adapt, anatomy, bench, dataset, demo, evaluate, experiment, predict, render, synth, train
from simreal.errors import SimrealError

app = typer.Typer(
    name="simreal",
    help=(
        "Deep learning with synthetic medical images.\n\n"
        "Pipeline: anatomy -> render -> dataset -> train -> predict -> eval -> experiment/report. "
        "Start with `simreal demo`."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(anatomy.app, name="anatomy")
app.add_typer(render.app, name="render")
app.add_typer(dataset.app, name="dataset")
app.add_typer(adapt.app, name="adapt")
app.add_typer(synth.app, name="synth")
app.add_typer(train.app, name="train")
app.command("predict")(predict.predict)
app.add_typer(evaluate.app, name="eval")
app.command("compare")(evaluate.compare)
app.command("experiment")(experiment.experiment)
app.command("report")(experiment.report)
app.add_typer(bench.app, name="bench")
app.command("demo")(demo.demo)

#: Exit status for bad input or an impossible request.
EXIT_BAD_INPUT = 2


def main() -> None:
    """Entry point of the ``simreal`` console script."""
    try:
        app()
    except SimrealError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def one_line(message: str) -> str:
    """The message itself when an error was re-raised from a DataLoader worker: torch wraps it as
    "Caught SimrealError in DataLoader worker process 0. Original Traceback ...", whose last line is ours."""
    lines = [line for line in message.strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):
        last = lines[-1]
        return last.split("SimrealError: ", 1)[-1]
    return message
