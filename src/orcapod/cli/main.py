"""The ``orcapod`` command line (typer).

    orcapod run FILE.py|FILE.json [--executor local|ray]    run a file's pipelines, or a saved one
    orcapod status [STORE]                                  pipelines, nodes, rows, failures
    orcapod show NODE [--limit N] [--format table|csv|json] a node's rows
    orcapod logs NODE [--failed] [--run ID]                 captured output and tracebacks
    orcapod runs [STORE]                                    the run history
    orcapod graph [STORE] [--format mermaid|dot|svg|png]    a picture of the graph
    orcapod explain NODE / lineage NODE --where k=v / verify NODE   reproducibility
    orcapod ui [STORE] [--port N]                           a web view of the store
    orcapod demo                                            a small persistent pipeline

Every command but ``run`` and ``demo`` reads a store without importing the user's code; the
store comes from STORE, ``--store STORE`` or ``ORCAPOD_STORE`` - a directory, an object-store
URI such as ``s3://bucket/prefix``, a SQLite file or a ``postgresql://`` URI
(``orcapod.cli.options``).
One module per command group: ``run``, ``status`` (status, runs), ``show`` (show, logs),
``graph``, ``repro`` (explain, lineage, verify), ``ui``, ``demo``. Shell completion:
``orcapod --install-completion``.

Start-up: ``orcapod --help`` imports orcapod itself (cheap: heavy libraries are imported by
the functions that use them) plus typer, and nothing a command needs only when it runs:
rich, the store reader, the graph renderer and the maintenance functions are loaded by the
command that uses them (``orcapod.cli.options``), and so are the Delta Lake backend (named as
``databases.DeltaTableDatabase`` when a command opens a store) and the demo module (its
function pods are built when it is imported); ``run`` imports the user's file only when it
runs. Running a command also imports pydantic: typer converts command-line values
through it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import orcapod
from orcapod._lazy import lazy_module
from orcapod.cli import graph as graph_command
from orcapod.cli import run as run_command
from orcapod.cli import show as show_command
from orcapod.cli import status as status_command
from orcapod.cli.maintenance import store_app
from orcapod.cli.options import DEMO_STORE, console, fail
from orcapod.cli.repro import explain_command, lineage_command, verify_command
from orcapod.cli.ui import ui as ui_command
from orcapod.errors import OrcapodError

if TYPE_CHECKING:
    from orcapod.cli import demo as demo_command
else:  # its function pods are built when it is imported: only ``orcapod demo`` needs them
    demo_command = lazy_module("orcapod.cli.demo")

__all__ = ["app", "main"]


class _Command(typer.Typer):
    """The ``orcapod`` command: an orcapod error that a command did not turn into its own
    message (e.g. a damaged store met by ``graph``, or credentials refused at a store's first
    read) is printed as ``error: ...`` on stderr with exit status 1, not as a traceback."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except OrcapodError as err:
            fail(str(err))
            sys.exit(1)


app = _Command(
    no_args_is_help=True,
    help="orcapod: reproducible, incremental scientific data pipelines.",
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
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
    ] = DEMO_STORE,
) -> None:
    """Run a small persistent pipeline (two sources, a join, two functions); run it twice."""
    try:
        demo_command.run_demo(store, console)
    except OrcapodError as err:
        raise fail(str(err)) from err


app.command("run")(run_command.run)
app.command("status")(status_command.status)
app.command("runs")(status_command.runs)
app.command("show")(show_command.show)
app.command("logs")(show_command.logs)
app.command("graph")(graph_command.graph)
app.command("explain")(explain_command)
app.command("lineage")(lineage_command)
app.command("verify")(verify_command)
app.command("ui")(ui_command)


if __name__ == "__main__":
    app()
