"""The ``orcapod`` command line (typer): ``--version`` and ``demo`` so far."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

import orcapod
from orcapod.cli.demo import DEFAULT_STORE, run_demo
from orcapod.cli.maintenance import store_app

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="orcapod: reproducible pipelines"
)
console = Console()
app.add_typer(store_app, name="store")


def _version(value: bool) -> None:
    if value:
        console.print(f"orcapod {orcapod.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """orcapod: reproducible, incremental scientific data pipelines."""


@app.command()
def demo(
    store: Annotated[
        Path, typer.Option("--store", help="Directory of the demo's Delta Lake store.")
    ] = DEFAULT_STORE,
) -> None:
    """Run a small persistent pipeline (two sources, a join, two functions); run it twice."""
    run_demo(store, console)


if __name__ == "__main__":
    app()
