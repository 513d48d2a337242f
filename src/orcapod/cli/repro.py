"""``orcapod explain``, ``orcapod lineage`` and ``orcapod verify``.

The store is ``--store PATH`` or the ``ORCAPOD_STORE`` environment variable (a local
``DeltaTableDatabase`` directory).

* ``lineage NODE --where k=v [--where k2=v2] [--format table|prov]`` reads the store alone
  (``orcapod.nodes.store_lineage``): NODE is the function's name; ``--pipeline NAME`` picks
  the pipeline when several in the store apply it. With ``--pipeline-file`` the pipeline's
  node graph is used instead, and operators are shown too.
* ``explain NODE`` and ``verify NODE [--sample F | --where k=v] [--rel-tol T]`` need the
  user's functions: ``--pipeline-file FILE`` is a saved pipeline (``.json``, from
  ``Pipeline.save``; its nodes read the store given) or a Python script that builds a
  ``Pipeline`` (run with ``__name__ == "__orcapod__"``, so its ``if __name__ ==
  "__main__":`` block does not run; the pipeline keeps its own databases). NODE is a label.
  ``verify`` exits with status 1 when a row did not reproduce.

``--where`` values are read as JSON when they parse (``3``, ``1.5``, ``true``, ``[1, 2]``),
else as text.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from orcapod import databases
from orcapod._lazy import lazy_module
from orcapod.cli.options import lazy_console
from orcapod.errors import OrcapodError
from orcapod.pipeline import Pipeline

if TYPE_CHECKING:
    from rich import console as rich_console
    from rich import table as rich_table

    from orcapod.nodes import store_lineage
else:
    rich_console = lazy_module("rich.console")
    rich_table = lazy_module("rich.table")
    store_lineage = lazy_module("orcapod.nodes.store_lineage")

__all__ = ["explain_command", "lineage_command", "parse_where", "verify_command"]

console = lazy_console()

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="The store directory (default: $ORCAPOD_STORE)."),
]
PipelineFileOption = Annotated[
    Path | None,
    typer.Option(
        "--pipeline-file",
        help="A saved pipeline (.json) or a Python script that builds a Pipeline.",
    ),
]
WhereOption = Annotated[
    list[str] | None,
    typer.Option("--where", help="A tag value of the row, k=v (repeat for several tags)."),
]


def parse_where(items: list[str] | None) -> dict[str, Any]:
    """``["id=3", "name=ada"]`` -> ``{"id": 3, "name": "ada"}`` (JSON values when they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--where takes k=v, got {item!r}")
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text
    return out


def _store(store: Path | None) -> Path | None:
    if store is not None:
        return store
    env = os.environ.get("ORCAPOD_STORE")
    return Path(env) if env else None


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _load_pipeline(path: Path, store: Path | None) -> Pipeline:
    if not path.exists():
        raise _fail(f"no pipeline file at {str(path)!r}")
    if path.suffix == ".json":
        database = databases.DeltaTableDatabase(store) if store is not None else None
        return Pipeline.load(path, pipeline_database=database)
    namespace = runpy.run_path(str(path), run_name="__orcapod__")
    pipelines = [v for v in namespace.values() if isinstance(v, Pipeline)]
    if len(pipelines) != 1:
        raise _fail(
            f"{str(path)!r} must define exactly one Pipeline at module level, found "
            f"{len(pipelines)}"
        )
    return pipelines[0]


def _node(pipeline: Pipeline, label: str) -> Any:
    nodes = pipeline.nodes
    if label not in nodes:
        raise _fail(f"the pipeline has no node {label!r}; its nodes: {sorted(nodes)}")
    node = nodes[label]
    if not hasattr(node, "explain"):
        raise _fail(f"node {label!r} is not a function node")
    return node


def explain_command(
    node: Annotated[str, typer.Argument(help="The function node's label.")],
    pipeline_file: PipelineFileOption = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Why the node's rows would be (or were) computed, grouped by reason. Read-only."""
    if pipeline_file is None:
        raise _fail("explain needs the user's functions: pass --pipeline-file FILE")
    try:
        explanation = _node(_load_pipeline(pipeline_file, _store(store)), node).explain()
    except OrcapodError as err:
        raise _fail(str(err)) from err
    if as_json:
        print(json.dumps(explanation.to_dict(), default=str))
    else:
        console.print(str(explanation), markup=False, highlight=False)


def lineage_command(
    node: Annotated[
        str,
        typer.Argument(help="The function's name (or, with a pipeline file, the node's label)."),
    ],
    where: WhereOption = None,
    output_format: Annotated[
        str, typer.Option("--format", help="table or prov (W3C PROV-JSON).")
    ] = "table",
    store: StoreOption = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="The pipeline's name in the store.")
    ] = None,
    pipeline_file: PipelineFileOption = None,
) -> None:
    """The full upstream path of one output row: functions, operators, source rows."""
    if output_format not in ("table", "prov"):
        raise _fail(f"--format must be table or prov, got {output_format!r}")
    tag = parse_where(where)
    location = _store(store)
    try:
        if pipeline_file is not None:
            lineage = _node(_load_pipeline(pipeline_file, location), node).lineage(tag)
        elif location is None:
            raise _fail("pass --store PATH or set ORCAPOD_STORE")
        else:
            lineage = store_lineage.lineage_from_store(location, node, tag, pipeline)
    except OrcapodError as err:
        raise _fail(str(err)) from err
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
    pipeline_file: PipelineFileOption = None,
    store: StoreOption = None,
    sample: Annotated[
        float | None, typer.Option("--sample", help="Fraction of rows (default 0.01).")
    ] = None,
    where: WhereOption = None,
    rel_tol: Annotated[float, typer.Option("--rel-tol", help="Relative float tolerance.")] = 1e-9,
    abs_tol: Annotated[float, typer.Option("--abs-tol", help="Absolute float tolerance.")] = 0.0,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the sample.")] = None,
) -> None:
    """Recompute a sample of stored rows (nothing stored) and compare; exit 1 on a mismatch."""
    if pipeline_file is None:
        raise _fail("verify needs the user's functions: pass --pipeline-file FILE")
    tags = parse_where(where) or None
    try:
        report = _node(_load_pipeline(pipeline_file, _store(store)), node).verify(
            sample=None if tags else sample,
            tags=tags,
            rel_tol=rel_tol,
            abs_tol=abs_tol,
            seed=seed,
        )
    except OrcapodError as err:
        raise _fail(str(err)) from err
    console.print(str(report), markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)
