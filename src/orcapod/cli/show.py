"""``orcapod show NODE`` and ``orcapod logs NODE``: a node's rows, and its captured output.

A node is named by its label, or ``PIPELINE.LABEL`` when several pipelines of the store have
a node of that label. Both read the store only (no user code).

``show`` prints the node's current rows (``StoreView.node_rows``: for a function node, the
newest result per tag; tag columns, then output columns, sorted by tag) as a table, or as
CSV or JSON (a list of row objects) for other programs. A node with no rows (not computed
yet, or forgotten by ``orcapod store``) still shows its columns - tag and output, as the
catalog declares them - in the table and the CSV header. ``--limit N`` keeps the first N.
An array value (a numpy array output) is shown in the table shortened like numpy prints it
(``[0.0, 1.0, ..., 98.0, 99.0] (shape 100)``, on one line) and written in full to CSV (as
JSON text) and to JSON, as nested lists in its shape. The JSON is strict (what ``jq`` and
JavaScript read): a NaN or infinite float is ``null``; bytes are hex text in CSV and JSON alike.

``logs`` prints one block per executed packet, newest first: when, its tags, ok or FAILED
with the duration, then what it wrote to stdout and stderr, its Python log records and, for a
failure, the traceback, without the frames of orcapod's own code (the same in every
failure; ``--full`` keeps them). ``--failed`` keeps failures, ``--run ID`` one run (see
``orcapod runs``), ``--limit N`` (default 20) the newest N.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import pyarrow as pa
import typer

import orcapod
from orcapod.cli.options import (
    StoreOption,
    console,
    fail,
    open_store,
    print_rows,
    run_id,
    short_run,
    text,
)
from orcapod.errors import OrcapodError
from orcapod.hashing.arrow_arrays import arrow_to_arrays, is_array_type

if TYPE_CHECKING:
    from orcapod.pipeline import NodeInfo

__all__ = ["RowFormat", "logs", "show", "user_frames"]

NodeArgument = Annotated[
    str, typer.Argument(help="The node's label, or PIPELINE.LABEL.", show_default=False)
]


class RowFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


_SHOWN_VALUES = 8  # an array of more values is shortened in the table (numpy's summary)


def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however nested, as None (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def show(
    node: NodeArgument,
    store_option: StoreOption = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=0, help="At most N rows.")
    ] = None,
    format: Annotated[
        RowFormat, typer.Option("--format", "-f", help="table, csv or json.")
    ] = RowFormat.TABLE,
) -> None:
    """A node's rows: tag columns, then its output columns."""
    view = open_store(None, store_option)
    try:
        info = view.node(node)
        table = view.rows_of(info, limit=limit)
    except OrcapodError as err:
        raise fail(str(err)) from err
    columns = table.column_names if table.num_rows else _declared_columns(info, table)
    rows = _rows(table)
    if format is RowFormat.JSON:
        text = json.dumps(_finite(rows), default=_json_value, ensure_ascii=False, allow_nan=False)
        console.out(text)
    elif format is RowFormat.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_value(v) for v in row.values()] for row in rows])
        sys.stdout.flush()
    else:
        print_rows(columns, [[_short(v) for v in r.values()] for r in rows])
        console.print(f"{table.num_rows} row(s)")


def _declared_columns(info: NodeInfo, table: pa.Table) -> list[str]:
    """The columns of a node that has no rows: its tag and output columns as the catalog
    declares them (a table read from an empty store lacks the output columns)."""
    return list(dict.fromkeys([*info.tag_schema, *info.packet_schema, *table.column_names]))


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    """``table``'s rows as dicts; an array column's values as numpy arrays in their shape
    (``to_pylist`` would give a fixed-shape array's values flat, and a variable-shape one as
    its storage struct)."""
    columns = {
        field.name: arrow_to_arrays(column) if is_array_type(field.type) else column.to_pylist()
        for field, column in zip(table.schema, table.columns, strict=True)
    }
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _short(value: Any) -> Any:
    """A table cell: an array on one line, shortened when it has many values."""
    if not isinstance(value, np.ndarray):
        return value
    shown = np.array2string(
        value,
        threshold=_SHOWN_VALUES,
        edgeitems=2,
        separator=", ",
        max_line_width=sys.maxsize,
        formatter={"all": str},
    ).replace("\n", "")
    if value.size > _SHOWN_VALUES:
        shape = " x ".join(map(str, value.shape))
        shown = f"{shown} (shape {shape})"
    return shown


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, np.ndarray):
        return json.dumps(value.tolist())
    if isinstance(value, bytes):
        return value.hex()
    return value


_ORCAPOD_DIR = str(Path(orcapod.__file__).resolve().parent)
_FRAME = re.compile(r'^(\s*)File "([^"]+)", line \d+')


def user_frames(traceback: str) -> str:
    """``traceback`` without the frames of files inside the orcapod package."""
    kept: list[str] = []
    skipping: int | None = None  # the indent of a dropped frame's "File" line
    for line in traceback.splitlines():
        indent = len(line) - len(line.lstrip())
        if skipping is not None and indent > skipping:
            continue
        skipping = None
        frame = _FRAME.match(line)
        if frame and str(Path(frame[2]).resolve()).startswith(_ORCAPOD_DIR):
            skipping = len(frame[1])
            continue
        kept.append(line)
    return "\n".join(kept)


_SECTIONS = (("__stdout", "stdout"), ("__stderr", "stderr"), ("__python_logs", "logging"))


def _log_block(row: dict[str, Any], tag_columns: list[str], full: bool) -> None:
    tags = ", ".join(f"{c}={row[c]}" for c in tag_columns)
    outcome = "ok" if row.get("__success") else "[red]FAILED[/]"
    duration = row.get("__duration")
    took = f" in {duration:.3f}s" if isinstance(duration, float) else ""
    console.print(
        f"[bold]{text(row.get('__timestamp'))}[/]  {tags}  {outcome}{took}  "
        f"(run {short_run(row.get('__run_id'))})"
    )
    for column, name in _SECTIONS:
        value = row.get(column)
        if value:
            console.print(f"  {name}:")
            console.out("\n".join(f"    {line}" for line in str(value).rstrip().splitlines()))
    if row.get("__traceback"):
        console.print("  traceback:")
        shown = str(row["__traceback"]) if full else user_frames(str(row["__traceback"]))
        console.out("\n".join(f"    {line}" for line in shown.rstrip().splitlines()))


def logs(
    node: NodeArgument,
    store_option: StoreOption = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed calls.")] = False,
    run: Annotated[
        str | None,
        typer.Option("--run", help="Only this run's calls: its id or a prefix (orcapod runs)."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=0, help="At most N entries.")] = 20,
    full: Annotated[
        bool, typer.Option("--full", help="Keep orcapod's own frames in tracebacks.")
    ] = False,
) -> None:
    """Captured stdout, stderr, logging and tracebacks of a node's calls, newest first."""
    view = open_store(None, store_option)
    try:
        info = view.node(node)
        if run is not None:
            run = run_id(view, run)
        table: pa.Table = view.logs(node, failed=failed, run_id=run)
    except OrcapodError as err:
        raise fail(str(err)) from err
    if table.num_rows == 0:
        what = "failed calls" if failed else "calls"
        where = f" in run {short_run(run)}" if run else ""
        console.print(f"no logged {what} of {info.name}{where}")
        return
    tag_columns = [c for c in info.tag_schema if c in table.column_names]
    for row in table.slice(0, limit).to_pylist():
        _log_block(row, tag_columns, full)
    if table.num_rows > limit:
        console.print(f"... {table.num_rows - limit} older entries (--limit N to see them)")
    else:
        console.print(f"{table.num_rows} entr{'y' if table.num_rows == 1 else 'ies'}")
