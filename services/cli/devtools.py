"""The development tools (devstack/: the local stack, the demo) as the CLI reaches them."""
from __future__ import annotations

import importlib
from types import ModuleType

import typer


def dev_tool(module: str) -> ModuleType:
    """A module of the development tools (devstack/: the local stack, the demo), which a
    source checkout has and the production image does not."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "devstack":
            typer.echo("error: this command needs the development tools (devstack/) of a source checkout; "
                       "the production image does not include them", err=True)
            raise typer.Exit(code=2) from exc
        raise
