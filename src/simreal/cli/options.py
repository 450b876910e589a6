"""Helpers the commands share for their options."""

from __future__ import annotations

from typing import Iterable

import typer


def typed_on_command_line(ctx: typer.Context, names: Iterable[str]) -> set[str]:
    """The parameters among ``names`` that the user typed (not defaults, not environment variables).

    With ``--config FILE`` only these override the file: a flag's default must never silently replace a
    value the file sets.
    """
    # By name: typer may bring its own copy of click's ParameterSource enum.
    return {n for n in names if getattr(ctx.get_parameter_source(n), "name", "") == "COMMANDLINE"}


#: ``--ray ADDRESS`` of the render commands (one text for all of them).
RAY_HELP = (
    "Render on a Ray cluster instead of local processes: --ray local starts a Ray instance on this machine for "
    "the run; --ray auto joins the one running here (`ray start --head`); --ray HOST:PORT or ray://HOST:PORT a "
    "remote cluster, whose nodes must run the same simreal and see --out at the same path (shared storage). Same "
    "bytes, resume and atomicity as local workers."
)


def print_run_folder(run: object) -> None:
    """Say where a training run's files are, once: with ``--strategy ddp`` every process runs the command."""
    from lightning.pytorch.utilities import rank_zero_only
    from rich.console import Console

    if getattr(rank_zero_only, "rank", 0) == 0:
        Console(stderr=True).print(f"run folder: {run}  (checkpoints/, metrics.csv, tb/, samples/, config.json)")
