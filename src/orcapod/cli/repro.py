"""``orcapod explain``, ``orcapod lineage`` and ``orcapod verify``.

* ``lineage NODE --where k=v [--where k2=v2] [--format table|prov]`` reads the store alone
  (``--store STORE`` or ``ORCAPOD_STORE``; ``orcapod.nodes.store_lineage``, which lists the
  tables of a local Delta store directory: any other store needs ``--pipeline-file``): NODE is
  the function's name; ``--pipeline NAME`` picks the pipeline when several in the store apply
  it. With ``--pipeline-file`` the pipeline's node graph is used instead, and operators are
  shown too.
* ``explain NODE --pipeline-file FILE`` and ``verify NODE --pipeline-file FILE [--sample F |
  --where k=v] [--rel-tol T]`` need the user's functions (``--pipeline-file`` is required).
  NODE is a function node's label. FILE is

  - a saved pipeline (``.json``, from ``Pipeline.save``): its nodes read the store it was
    saved with, or ``--store`` / ``ORCAPOD_STORE`` when given (which must exist; any store
    the commands read, ``orcapod.cli.options``); its
    functions' modules are imported as ``orcapod.pipeline.load_safety`` allows
    (``--trusted``: wherever they are);
  - or a Python script that builds one ``Pipeline``, loaded as ``orcapod run`` loads it
    (``orcapod.cli.loading``: its folder on ``sys.path``, its ``__main__`` block not run,
    its errors as an ``error:`` line with its own frames). Its pipeline uses the store the
    script builds, a relative path resolving against the working directory as under
    ``orcapod run`` run from here.

  Decision: ``--store`` cannot redirect a script's pipeline (the script builds its
  databases), and answering about another store than the one asked for would be a wrong
  answer given with confidence: with a script, ``--store`` / ``ORCAPOD_STORE``, when given,
  must name the store the script uses, else the command refuses, naming both. A store
  directory that loading the file created just now (empty: nothing ever ran there, e.g. the
  command was run from another folder than the pipeline) is removed again - ``explain`` is
  read-only and writes nothing - and ``explain`` notes on stderr that the store holds
  nothing, while ``verify`` refuses: there is nothing to verify.
* ``verify`` exits with status 1 when a row did not reproduce, and when it checked no row:
  ``--where`` matched no stored row (rows not computed yet, failed or filtered have no stored
  output), or the node has none.

``--where`` values are converted to the tag column's type (``orcapod.cli.where``). Errors are
``error:`` lines on stderr with exit status 1, as for every command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orcapod._lazy import lazy_module
from orcapod.cli.loading import function_node, load_saved, load_script, pipelines_of
from orcapod.cli.options import (
    StoreOption,
    fail,
    is_uri,
    lazy_console,
    open_store,
    store_database,
)
from orcapod.cli.where import arrow_types, catalog_types, parse_where, single_values
from orcapod.errors import OrcapodError
from orcapod.pipeline import Pipeline

if TYPE_CHECKING:
    from rich import console as rich_console
    from rich import table as rich_table

    from orcapod.nodes import store_lineage
    from orcapod.pipeline import StoreView
else:
    rich_console = lazy_module("rich.console")
    rich_table = lazy_module("rich.table")
    store_lineage = lazy_module("orcapod.nodes.store_lineage")

__all__ = ["explain_command", "lineage_command", "verify_command"]

console = lazy_console()
_notes = lazy_console(stderr=True, highlight=False)

_FILE_HELP = (
    "A saved pipeline (.json) or a Python script that builds one Pipeline (loaded as "
    "orcapod run loads it; it uses the store it builds: --store, if given, must name it)."
)
PipelineFileOption = Annotated[Path, typer.Option("--pipeline-file", help=_FILE_HELP)]
OptionalPipelineFileOption = Annotated[
    Path | None, typer.Option("--pipeline-file", help=_FILE_HELP)
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help="A tag value of the row, COLUMN=VALUE, converted to the column's type (repeat "
        "for several tag columns).",
    ),
]
TrustedOption = Annotated[
    bool,
    typer.Option("--trusted", help="Import a saved pipeline's modules wherever they are."),
]
#: how long before the command a store directory may have been made and still count as made
#: by it (file-system timestamps are coarser than the clock)
_CLOCK_SLACK = 1.0


def _store_of(pipeline: Pipeline) -> Path | None:
    base = getattr(pipeline.pipeline_database, "base_path", None)
    if not isinstance(base, str) or "://" in base:
        return None
    return Path(base)


def _is_empty(folder: Path) -> bool:
    return folder.is_dir() and not any(folder.iterdir())


def _load(path: Path, store: str | None, trusted: bool) -> Pipeline:
    if path.suffix == ".json":
        database = None if store is None else store_database(store)
        return load_saved(path, trusted, database)
    if not path.is_file():
        raise fail(f"no pipeline file at {str(path)!r}")
    pipelines = pipelines_of(load_script(path))
    if len(pipelines) != 1:
        names = ", ".join(repr(p.name) for p in pipelines)
        advice = f" ({names}): save the one you mean (Pipeline.save) and pass the .json"
        raise fail(
            f"{path} must define exactly one Pipeline at its top level, found "
            f"{len(pipelines)}{advice if pipelines else ''}"
        )
    return pipelines[0]


def _uses_store(pipeline: Pipeline, store: str) -> bool:
    """Whether the pipeline's store is the one ``store`` names."""
    base = getattr(pipeline.pipeline_database, "base_path", None)
    if not isinstance(base, str):
        return False
    if is_uri(store) or is_uri(base):
        return base.rstrip("/") == store.rstrip("/")
    return Path(base).resolve() == Path(store).resolve()


@contextmanager
def _pipeline_file(path: Path, store: str | None, trusted: bool) -> Iterator[Pipeline]:
    """The pipeline of ``path`` (module docstring); a store directory the load created empty
    is removed when the command is done."""
    since = time.time() - _CLOCK_SLACK
    pipeline = _load(path, store, trusted)
    location = _store_of(pipeline)
    made_now = location is not None and _is_empty(location) and location.stat().st_ctime >= since
    try:
        script = path.suffix != ".json"
        if script and store is not None and not _uses_store(pipeline, store):
            built = getattr(pipeline.pipeline_database, "base_path", None) or "it builds"
            raise fail(
                f"{path}'s pipeline uses the store {built}, not {store} "
                "(--store or ORCAPOD_STORE): a script's pipeline keeps the store it builds, "
                "a relative path resolving against the working directory as under orcapod "
                "run; run this command from the folder you run the script in, or drop "
                "--store (unset ORCAPOD_STORE)"
            )
        yield pipeline
    finally:
        if made_now and location is not None and _is_empty(location):
            location.rmdir()


def _empty_store(pipeline: Pipeline) -> Path | None:
    """The pipeline's store when it holds nothing (no pipeline ever ran there)."""
    location = _store_of(pipeline)
    return location if location is not None and _is_empty(location) else None


def explain_command(
    node: Annotated[str, typer.Argument(help="The function node's label.")],
    pipeline_file: PipelineFileOption,
    store: StoreOption = None,
    trusted: TrustedOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why the node's rows would be (or were) computed, grouped by reason. Read-only."""
    with _pipeline_file(pipeline_file, store, trusted) as pipeline:
        target = function_node(pipeline, node)
        empty = _empty_store(pipeline)
        if empty is not None:
            _notes.print(
                f"note: the store {empty} holds nothing: no pipeline has run there, so every "
                "row would be computed (a relative store path resolves against the working "
                "directory, as under orcapod run)",
                markup=False,
            )
        try:
            explanation = target.explain()
        except OrcapodError as err:
            raise fail(str(err)) from err
    if as_json:
        print(json.dumps(explanation.to_dict(), default=str))
    else:
        console.print(str(explanation), markup=False, highlight=False)


def _lineage_types(view: StoreView, node: str, pipeline: str | None) -> dict[str, Any]:
    """The tag column types of the store's nodes that ``node`` may name (catalog)."""
    found: dict[str, set[str]] = {}
    for info in view.nodes(pipeline):
        if node in (info.label, info.name, info.function):
            for column, name in info.tag_schema.items():
                found.setdefault(column, set()).add(name)
    return catalog_types({c: next(iter(t)) for c, t in found.items() if len(t) == 1})


def _store_function(view: StoreView, node: str, pipeline: str | None) -> tuple[str, str | None]:
    """The function, and its pipeline, of the function node ``node`` names in the store's
    catalog: a node's label or ``PIPELINE.LABEL``, as every command takes it, or its
    function's name (``(function, pipeline)``; fails listing the function nodes)."""
    pipelines = [p.name for p in view.pipelines()]
    if pipeline is not None and pipeline not in pipelines:
        raise fail(f"no pipeline {pipeline!r} in this store; its pipelines: {pipelines}")
    nodes = view.nodes(pipeline)
    functions = sorted({n.name for n in nodes if n.node_type == "function"})
    named = [n for n in nodes if node in (n.label, n.name)]
    if len(named) > 1:
        raise fail(
            f"several pipelines have a node {node!r}: {sorted(n.name for n in named)}; name "
            "one as PIPELINE.LABEL or pass --pipeline"
        )
    if named:
        (info,) = named
        if info.node_type != "function" or info.function is None:
            raise fail(
                f"node {info.name!r} is {'an' if info.node_type == 'operator' else 'a'} "
                f"{info.node_type} node; lineage starts from a function node's row: {functions}"
            )
        return info.function, info.pipeline
    if any(n.function == node for n in nodes):
        return node, pipeline
    raise fail(
        f"the store has no function node {node!r}; its function nodes: {functions or 'none'} "
        "(a node's label, PIPELINE.LABEL or its function's name)"
    )


def lineage_command(
    node: Annotated[
        str,
        typer.Argument(
            help="The function node: its label or PIPELINE.LABEL (or its function's name)."
        ),
    ],
    where: WhereOption = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table or prov (W3C PROV-JSON).")
    ] = "table",
    store: StoreOption = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="The pipeline's name in the store.")
    ] = None,
    pipeline_file: OptionalPipelineFileOption = None,
    trusted: TrustedOption = False,
) -> None:
    """The full upstream path of one output row: functions, operators, source rows."""
    if output_format not in ("table", "prov"):
        raise fail(f"--format must be table or prov, got {output_format!r}")
    parse_where(where)  # COLUMN=VALUE checked before anything is loaded
    if pipeline_file is not None:
        with _pipeline_file(pipeline_file, store, trusted) as loaded:
            target = function_node(loaded, node)
            tag = single_values(parse_where(where, arrow_types(target.output_schema()[0])))
            try:
                lineage = target.lineage(tag)
            except OrcapodError as err:
                raise fail(str(err)) from err
    elif store is None:
        raise fail("lineage reads a store: pass --store STORE or set ORCAPOD_STORE")
    elif not Path(store).is_dir():
        open_store(None, store)  # a store that does not exist fails as for every command
        raise fail(
            f"lineage from the store alone reads a local Delta store directory, and {store} "
            "is not one: pass --pipeline-file (the saved pipeline, or its script) to follow "
            "the lineage through the pipeline's own store"
        )
    else:
        view = open_store(None, store)
        function, pipeline = _store_function(view, node, pipeline)
        tag = single_values(parse_where(where, _lineage_types(view, node, pipeline)))
        try:
            lineage = store_lineage.lineage_from_store(
                store, function, tag, pipeline, view.superseded_entries
            )
        except OrcapodError as err:
            raise fail(str(err)) from err
    if output_format == "prov":
        print(json.dumps(lineage.to_prov(), indent=2, default=str))
        return
    table = rich_table.Table(title=f"lineage of {node} {tag}")
    for name in ("kind", "depth", "name", "id", "code", "git", "executor", "time", "detail"):
        table.add_column(name, overflow="fold")
    for row in lineage.to_table().to_pylist():
        git = (row["git_commit"] or "")[:12]
        if git and row["git_dirty"]:
            git += " (dirty)"
        table.add_row(
            row["kind"],
            "" if row["depth"] is None else str(row["depth"]),
            row["name"] or "",
            row["id"] or "",
            (row["code_hash"] or "").removeprefix("code_v1:")[:12],
            git,
            row["executor"] or "",
            row["time"] or "",
            row["detail"] or "",
        )
    wide = rich_console.Console(width=max(console.width, 160))
    wide.print(table)
    for note in lineage.notes:
        console.print(f"note: {note}", markup=False)


def verify_command(
    node: Annotated[str, typer.Argument(help="The function node's label.")],
    pipeline_file: PipelineFileOption,
    store: StoreOption = None,
    trusted: TrustedOption = False,
    sample: Annotated[
        float | None, typer.Option("--sample", help="Fraction of rows (default 0.01).")
    ] = None,
    where: WhereOption = None,
    rel_tol: Annotated[float, typer.Option("--rel-tol", help="Relative float tolerance.")] = 1e-9,
    abs_tol: Annotated[float, typer.Option("--abs-tol", help="Absolute float tolerance.")] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the sample.")] = None,
) -> None:
    """Recompute a sample of stored rows (nothing stored) and compare; exit 1 on a mismatch
    or when no stored row was checked."""
    if where and sample is not None:
        raise fail("pass either --sample or --where, not both")
    parse_where(where)  # COLUMN=VALUE checked before anything is loaded
    with _pipeline_file(pipeline_file, store, trusted) as pipeline:
        target = function_node(pipeline, node)
        empty = _empty_store(pipeline)
        if empty is not None:
            raise fail(
                f"the store {empty} holds nothing to verify: no pipeline has run there (a "
                "relative store path resolves against the working directory, as under "
                "orcapod run)"
            )
        tags = single_values(parse_where(where, arrow_types(target.output_schema()[0])))
        try:
            report = target.verify(
                sample=None if tags else sample,
                tags=tags or None,
                rel_tol=rel_tol,
                abs_tol=abs_tol,
                seed=seed,
            )
        except OrcapodError as err:
            raise fail(str(err)) from err
    if report.checked == 0:
        chosen = " ".join(f"--where {w}" for w in where or [])
        raise fail(
            f"node {node!r} has no stored row with {chosen}: nothing was verified (rows not "
            "computed yet, failed or filtered have no stored output; see orcapod show / "
            "orcapod logs --failed)"
            if chosen
            else f"node {node!r} has no stored row to verify: run the pipeline first"
        )
    console.print(str(report), markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)
