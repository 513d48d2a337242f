"""``orcapod store ...``: maintenance of a local Delta store from the command line.

    orcapod store compact ./store [--no-vacuum] [--retention-hours 0]
    orcapod store forget-function ./store compute_bmi
    orcapod store forget-node pipeline.json compute_bmi [--trusted]
    orcapod store recompute pipeline.json compute_bmi --where subject=s1 --where subject=s2

Commands that need a node (``forget-node``, ``recompute``) load the saved pipeline
(``Pipeline.save``), which imports its functions' modules: see
``orcapod.pipeline.load_safety`` for when ``--trusted`` is needed (a module saved next to the
pipeline file is imported without it). A node whose function cannot be imported (it loads
read-only) is maintained all the same, from the tables the file names. After deleting, the
node's entry in the store's catalog says ``stale`` (``orcapod.pipeline.maintenance``).
Every command prints what it did, one line per table or node; an error is printed on stderr
(no traceback) and exits with status 1 - also when there was nothing to delete:
``forget-function`` of a function the store holds no results of (the error lists those it
holds), ``recompute`` whose ``--where`` matches no stored row.
``--where COLUMN=VALUE`` converts VALUE to the tag column's type (``orcapod.cli.where``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from orcapod import databases
from orcapod._lazy import lazy_module
from orcapod.cli.loading import load_saved, stored_function_node, tag_types
from orcapod.cli.options import fail, lazy_console
from orcapod.cli.where import parse_where
from orcapod.errors import OrcapodError

if TYPE_CHECKING:
    from orcapod.databases import maintenance as store_maintenance
    from orcapod.nodes import store_lineage
    from orcapod.pipeline import maintenance as pipeline_maintenance
    from orcapod.pipeline.maintenance import Forgotten
else:  # loaded when a command runs: orcapod --help does not need them
    store_maintenance = lazy_module("orcapod.databases.maintenance")
    store_lineage = lazy_module("orcapod.nodes.store_lineage")
    pipeline_maintenance = lazy_module("orcapod.pipeline.maintenance")

__all__ = ["store_app"]

store_app = typer.Typer(no_args_is_help=True, help="Maintain a local Delta store.")
console = lazy_console()

T = TypeVar("T")

StoreArg = Annotated[
    str, typer.Argument(help="The local directory of the DeltaTableDatabase.", show_default=False)
]
PipelineArg = Annotated[Path, typer.Argument(help="A pipeline saved with Pipeline.save.")]
LabelArg = Annotated[str, typer.Argument(help="Label of a function node of the pipeline.")]
TrustedOpt = Annotated[
    bool, typer.Option("--trusted", help="Import the pipeline's modules wherever they are.")
]


def _guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except OrcapodError as err:
        raise fail(str(err)) from err


def _existing_store(store: str) -> databases.DeltaTableDatabase:
    if not Path(store).is_dir():
        raise fail(
            f"no store directory at {store}: the orcapod store commands maintain "
            "a Delta store on the local file system (not on object storage, nor a SQLite or "
            "PostgreSQL store); pass the directory given to DeltaTableDatabase(...)"
        )
    return databases.DeltaTableDatabase(store, create_base_path=False)


def _stored_functions(store: str) -> list[str]:
    """The functions the store holds results of (its shared results area)."""
    area = Path(store) / pipeline_maintenance.RESULT_AREA
    if not area.is_dir():
        return []
    return sorted(
        store_lineage.decode_segment(entry.name)
        for entry in area.iterdir()
        if entry.is_dir() and not entry.name.startswith("_")
    )


def _report(what: str, forgotten: Forgotten) -> None:
    console.print(
        f"{what}: deleted {forgotten.records} record(s), {forgotten.failures} failure(s), "
        f"{forgotten.results} result(s); the next run computes them again",
        highlight=False,
    )


@store_app.command()
def compact(
    store: StoreArg,
    vacuum: Annotated[
        bool, typer.Option("--vacuum/--no-vacuum", help="Delete unreferenced files too.")
    ] = True,
    retention_hours: Annotated[
        int | None,
        typer.Option(min=0, help="Keep files younger than this (default: the table's retention)."),
    ] = None,
) -> None:
    """Compact every table of a store into few files (and vacuum it)."""
    _existing_store(store)
    reports = _guarded(lambda: store_maintenance.compact_store(store, vacuum, retention_hours))
    for r in reports:
        console.print(
            f"{r.table}: {r.files_before} -> {r.files_after} file(s), "
            f"{r.removed_files} removed, version {r.version}",
            highlight=False,
        )
    console.print(f"{len(reports)} table(s) compacted", highlight=False)


@store_app.command("forget-function")
def forget_function_command(
    store: StoreArg,
    function_name: Annotated[str, typer.Argument(help="The function's name.")],
) -> None:
    """Delete every stored result of a function (all pipelines recompute it)."""
    database = _existing_store(store)
    functions = _stored_functions(store)
    if function_name not in functions:
        raise fail(
            f"the store {store} holds no results of a function {function_name!r}; the "
            f"functions it holds: {', '.join(functions) or 'none'}"
        )
    _report(
        function_name,
        _guarded(lambda: pipeline_maintenance.forget_function(database, function_name)),
    )


@store_app.command("forget-node")
def forget_node_command(
    pipeline: PipelineArg, label: LabelArg, trusted: TrustedOpt = False
) -> None:
    """Delete one function node's records, failures and results."""
    loaded = load_saved(pipeline, trusted)
    stored_function_node(loaded, label)
    _report(label, _guarded(lambda: pipeline_maintenance.forget_node(loaded, label)))


@store_app.command()
def recompute(
    pipeline: PipelineArg,
    label: LabelArg,
    where: Annotated[
        list[str],
        typer.Option(help="COLUMN=VALUE of a tag column; repeat it to choose several rows."),
    ],
    trusted: TrustedOpt = False,
) -> None:
    """Forget chosen rows of a function node so the next run computes them again."""
    parse_where(where)  # COLUMN=VALUE checked before the pipeline is loaded
    loaded = load_saved(pipeline, trusted)
    node = stored_function_node(loaded, label)
    chosen: dict[str, Any] = parse_where(where, tag_types(node))
    forgotten = _guarded(lambda: pipeline_maintenance.recompute_rows(loaded, label, chosen))
    if forgotten.records == 0:
        asked = " ".join(f"--where {w}" for w in where)
        raise fail(
            f"node {label!r} has no stored row with {asked}: nothing was deleted (values are "
            "compared with the tag column's type; a failed row has no stored row, and the next "
            "run retries it anyway)"
        )
    _report(label, forgotten)
