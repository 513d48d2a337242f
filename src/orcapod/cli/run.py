"""``orcapod run FILE``: run every pipeline a Python file defines, or a saved pipeline.

A saved pipeline (``.json``, from ``Pipeline.save``) is loaded as ``explain`` and ``verify``
load it (``orcapod.cli.loading.load_saved``: its functions' modules imported as
``orcapod.pipeline.load_safety`` allows, ``--trusted`` to import them wherever they are) and
run in the store it was saved with - the way to run again after ``orcapod store recompute``.
A function node whose function could not be imported is read-only, and a pipeline with one
cannot run: the command refuses before running anything, naming the node, why its function
was not imported and how to make it importable.

Any other file is a Python file: it is executed as a module named ``__orcapod_run__`` (so an
``if __name__ == "__main__":`` block in it does not run), with its folder first on
``sys.path`` so it can import its neighbours (``orcapod.cli.loading``: a file that raises is
reported with its own frames only). Every ``Pipeline`` among its top-level names is then
run, in the order the file defines them.

Each run's summary is printed, followed by the command that shows the failures of each node
with failed rows (``--store`` included, so it can be pasted); each run records itself in its
store (run history, catalog, logs), where ``orcapod status`` and the other commands read it.

``--executor ray`` runs every function node on a local Ray (``RayExecutor()``); the default
``local`` keeps each node's own executor. ``--strict`` makes the command exit with status 1
when any row failed; without it failed rows are reported and the exit status is 0 (they are
retried by the next run). A node that raises stops the run and exits with status 2.
"""

from __future__ import annotations

import os
import shlex
import warnings
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from orcapod import executors
from orcapod.cli.loading import (
    function_labels,
    function_node,
    load_saved,
    load_script,
    pipelines_of,
)
from orcapod.cli.options import console, fail
from orcapod.errors import FailedRowsWarning, OrcapodError
from orcapod.pipeline import Pipeline

__all__ = ["ExecutorChoice", "run"]


class ExecutorChoice(StrEnum):
    LOCAL = "local"
    RAY = "ray"


def _store_argument(pipeline: Pipeline) -> str:
    """`` --store STORE`` naming the pipeline's Delta store (a local one relative to the
    working directory when inside it), or "" when it has none."""
    base = getattr(pipeline.pipeline_database, "base_path", None)
    if not isinstance(base, str):
        return ""
    if "://" in base:
        return f" --store {shlex.quote(base)}"
    path = Path(base)
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return f" --store {shlex.quote(shown or os.curdir)}"


def _failure_hints(pipeline: Pipeline, failed_nodes: tuple[str, ...]) -> list[str]:
    """One command per node with failed rows that shows its failures."""
    store = _store_argument(pipeline)
    return [
        f"see the failures with: orcapod logs {pipeline.name}.{label} --failed{store}"
        for label in failed_nodes
    ]


def _pipelines(file: Path, trusted: bool) -> list[Pipeline]:
    """The pipelines to run: the saved pipeline ``file`` (``.json``), whose function nodes
    must all be runnable, or those the Python file ``file`` defines (module docstring)."""
    if file.suffix.lower() != ".json":
        return pipelines_of(load_script(file))
    pipeline = load_saved(file, trusted)
    for label in function_labels(pipeline):
        function_node(pipeline, label)  # fails, saying why, on a read-only node
    return [pipeline]


def run(
    file: Annotated[
        Path,
        typer.Argument(help="A Python file that defines pipelines, or a saved pipeline (.json)."),
    ],
    executor: Annotated[
        ExecutorChoice,
        typer.Option("--executor", help="Where function nodes run: local, or a local Ray."),
    ] = ExecutorChoice.LOCAL,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit with status 1 when any row failed.")
    ] = False,
    trusted: Annotated[
        bool,
        typer.Option("--trusted", help="Import a saved pipeline's modules wherever they are."),
    ] = False,
) -> None:
    """Run every pipeline FILE (.py) defines, or the saved pipeline FILE (.json); print
    each run's summary."""
    pipelines = _pipelines(file, trusted)
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
        except KeyboardInterrupt as err:
            raise fail(
                f"pipeline {pipeline.name!r} interrupted: the rows it stored are kept (see "
                "orcapod status); run again to go on",
                code=130,
            ) from err
        console.print(str(summary))
        failed += summary.failed
        for hint in _failure_hints(pipeline, summary.failed_nodes):
            console.print(hint, markup=False)
    if strict and failed:
        raise typer.Exit(1)
