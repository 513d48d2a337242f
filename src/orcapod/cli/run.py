"""``orcapod run FILE.py``: run every pipeline a Python file defines.

The file is executed as a module named ``__orcapod_run__`` (so an ``if __name__ ==
"__main__":`` block in it does not run), with its folder first on ``sys.path`` so it can
import its neighbours. Every ``Pipeline`` among its top-level names is then run, in the order
the file defines them, and its summary printed; each run records itself in its store (run
history, catalog, logs), where ``orcapod status`` and the other commands read it.

``--executor ray`` runs every function node on a local Ray (``RayExecutor()``); the default
``local`` keeps each node's own executor. ``--strict`` makes the command exit with status 1
when any row failed; without it failed rows are reported and the exit status is 0 (they are
retried by the next run). A node that raises stops the run and exits with status 2.
"""

from __future__ import annotations

import runpy
import sys
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from orcapod import executors
from orcapod.cli.options import console, fail
from orcapod.errors import FailedRowsWarning, OrcapodError
from orcapod.pipeline import Pipeline

__all__ = ["ExecutorChoice", "pipelines_of", "run"]

RUN_NAME = "__orcapod_run__"


class ExecutorChoice(StrEnum):
    LOCAL = "local"
    RAY = "ray"


def pipelines_of(namespace: dict[str, Any]) -> list[Pipeline]:
    """The distinct pipelines among a module's top-level names, in definition order."""
    found: list[Pipeline] = []
    for value in namespace.values():
        if isinstance(value, Pipeline) and all(value is not p for p in found):
            found.append(value)
    return found


def _load(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise fail(f"no such file: {file}")
    folder = str(file.resolve().parent)
    sys.path.insert(0, folder)
    try:
        return runpy.run_path(str(file), run_name=RUN_NAME)
    except OrcapodError as err:
        raise fail(f"{file} raised while defining its pipelines: {err}") from err
    finally:
        if sys.path and sys.path[0] == folder:
            sys.path.pop(0)


def run(
    file: Annotated[Path, typer.Argument(help="A Python file that defines pipelines.")],
    executor: Annotated[
        ExecutorChoice,
        typer.Option("--executor", help="Where function nodes run: local, or a local Ray."),
    ] = ExecutorChoice.LOCAL,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 1 when any row failed.")
    ] = False,
) -> None:
    """Run every pipeline FILE.py defines; print each run's summary."""
    namespace = _load(file)
    pipelines = pipelines_of(namespace)
    if not pipelines:
        raise fail(f"{file} defines no Pipeline at its top level: nothing to run")
    chosen = executors.RayExecutor() if executor is ExecutorChoice.RAY else None
    failed = 0
    for pipeline in pipelines:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FailedRowsWarning)  # reported below
                summary = pipeline.run(executor=chosen)
        except OrcapodError as err:
            raise fail(f"pipeline {pipeline.name!r} stopped: {err}", code=2) from err
        console.print(str(summary))
        if summary.failed:
            failed += summary.failed
            first = summary.failed_nodes[0]
            console.print(f"see the failures with: orcapod logs {pipeline.name}.{first} --failed")
    if strict and failed:
        raise typer.Exit(1)
