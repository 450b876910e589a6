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
