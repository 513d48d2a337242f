"""The walk behind ``lineage``: from one output row's pipeline record up to the source rows.

``node_lineage`` walks a live node's graph; ``trace_lineage`` is the walk itself, also used
from the store alone (``store_lineage``). How each step is found is described in
``orcapod.nodes.lineage``, which holds what the walk returns (``Lineage`` and its steps).

Decisions:

* A tag whose input changed has one record per input it ever had. ``node_lineage`` keeps the
  record of the node's CURRENT input (``current_entry_ids``: the entry ids of the current
  input rows with that tag, computed as a run computes them), so it describes the row
  ``node.as_table()`` shows; a tag whose current input has no result (not run yet, or its
  call failed) is an error saying so (with the failure's error, or that the function filtered
  the row out). From the store alone the newest record is taken
  (``orcapod.nodes.store_lineage``).
* Several rows matching the tag is an error naming the tag columns not given; when every
  tag column is given (rows from different source rows sharing their tag values) it names
  the system tag columns, whose values (``node.as_table(all_info=True)``) may be added to
  the tag to pick one row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod._arrow_without_pandas import column_numpy
from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.databases.scoped import ScopedArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions.engine.identify import InputPlan, entry_ids
from orcapod.functions.provenance import CODE_HASH_KEY
from orcapod.hashing.function_identity import value_summary
from orcapod.nodes.function_input import NodeInput
from orcapod.nodes.lineage import (
    FunctionStep,
    FunctionTables,
    Lineage,
    OperatorStep,
    SourceRow,
    graph_tables,
    split_token,
    tables_of,
)
from orcapod.types.columns import (
    ERROR_MESSAGE,
    ERROR_TIME,
    ERROR_TYPE,
    FAILURE_ID,
    INPUT_PACKET_HASH,
    PACKET_ID,
    PF_EXEC_PREFIX,
    PF_VAR_PREFIX,
    PIPELINE_ENTRY_ID,
    POD_TS,
    SOURCE_PREFIX,
    SYSTEM_TAG_PREFIX,
    SYSTEM_TAG_RECORD_ID,
)

__all__ = [
    "by_ids",
    "by_values",
    "current_entry_ids",
    "find_records",
    "node_lineage",
    "trace_lineage",
]


def node_lineage(node: Any, row: Any) -> Lineage:
    """The lineage of one output row of the function node ``node``: ``row`` is the row's tag
    (a dict of tag values or a ``Tag``) or a ``(tag, packet)`` row."""
    if isinstance(row, tuple) and len(row) == 2:
        row = row[0]
    if hasattr(row, "as_dict"):
        row = row.as_dict()
    if not isinstance(row, Mapping):
        raise InputValidationError(
            f"lineage needs a row's tag (a dict such as {{'id': 3}}, a Tag, or a (tag, packet) "
            f"row), got {type(row).__name__}"
        )
    where = {
        k: v
        for k, v in row.items()
        if not str(k).startswith("_") or str(k).startswith(SYSTEM_TAG_PREFIX)
    }
    current = current_entry_ids(node, where)
    functions, operators = graph_tables(node)
    target = tables_of(node)
    found = find_records(target, where)
    mine = [r for r in found if r[1].get(PIPELINE_ENTRY_ID) in current]
    if found and not mine:
        raise InputValidationError(
            f"the current input of the row {where} of node {node.label!r} has no stored "
            f"result (the node holds {len(found)} record(s) of earlier inputs of this tag): "
            "run the pipeline, and if the row still has none, see node.failures()"
        )
    return trace_lineage(node.label, target, where, functions, operators, found=mine)


def current_entry_ids(node: Any, where: Mapping[str, Any]) -> set[str]:
    """The pipeline entry ids of the rows of ``node``'s current input tagged ``where``: the
    records a live node reads (``node.as_table()``), computed as its run computes them."""
    current = NodeInput(node.function_pod, node.upstreams[0])
    table = current.table()
    unknown = [k for k in where if k not in table.column_names]
    if unknown:
        tags = [c for c in table.column_names if c in current.tag_keys()]
        raise InputValidationError(
            f"node {node.label!r} has no tag column {', '.join(map(repr, unknown))}; its tag "
            f"columns are {tags}"
        )
    if where:
        table = table.filter(pa.array(_matching(table, where), pa.bool_()))
    tag_keys, packet_keys = current.read.keys()
    return set(InputPlan.of_table(table, tag_keys, packet_keys).unique_ids.to_pylist())


def _matching(table: pa.Table, where: Mapping[str, Any]) -> np.ndarray:
    """Per row of ``table``: do its columns equal ``where`` (exactly, as ``find_records``)?"""
    mask = np.ones(table.num_rows, dtype=bool)
    for name, value in where.items():
        column = table.column(name)
        if value is None:
            mask &= column_numpy(pc.is_null(column))
            continue
        try:
            equal = pc.fill_null(pc.equal(column, value), False)
            mask &= column_numpy(equal)
        except (pa.ArrowException, TypeError):  # list-valued tags (after a Batch), mixed types
            mask &= np.array([v == value for v in column.to_pylist()], dtype=bool)
    return mask


def find_records(
    tables: FunctionTables, where: Mapping[str, Any]
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Records of ``tables`` whose tags equal ``where`` (each with its record path)."""
    if not where:
        raise InputValidationError(
            "lineage needs the row's tag, e.g. node.lineage({'subject': 'ada'}) or "
            "--where subject=ada"
        )
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    for path in tables.record_paths:
        db = tables.pipeline_db
        try:
            table = by_values(db, path, where, PIPELINE_ENTRY_ID)
            rows = [] if table is None else table.to_pylist()
        except InputValidationError:  # list-valued tags (after a Batch): compared here
            table = db.get_all_records(path, record_id_column=PIPELINE_ENTRY_ID)
            rows = [] if table is None else table.to_pylist()
            rows = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
        found.extend((path, row) for row in rows)
    return found


def trace_lineage(
    label: str,
    target: FunctionTables,
    where: Mapping[str, Any],
    functions: Mapping[str, FunctionTables],
    operators: Mapping[str, Sequence[OperatorStep]] | None = None,
    locate: Callable[[str, str], FunctionTables | None] | None = None,
    found: list[tuple[tuple[str, ...], dict[str, Any]]] | None = None,
) -> Lineage:
    """The lineage of the row of ``target`` tagged ``where`` (see the module docstring).

    ``functions``: tables of the upstream functions by source-info prefix; ``locate(prefix,
    code_hash)`` finds those not given (a walk from the store alone); ``found``: the row's
    records when the caller already looked them up (``find_records``)."""
    records = find_records(target, where) if found is None else found
    filtered = [r for r in records if r[1].get(PACKET_ID) is None]
    records = [r for r in records if r[1].get(PACKET_ID) is not None]
    if not records:
        raise InputValidationError(_no_output(label, target, where, bool(filtered)))
    if len({r[1][PIPELINE_ENTRY_ID] for r in records}) > 1:
        raise InputValidationError(_ambiguous(label, where, records))
    walk = _Walk(dict(functions), operators or {}, locate)
    walk.record(target, records[0][1], 0)
    return Lineage(label, dict(where), tuple(walk.steps), tuple(walk.sources), tuple(walk.notes))


def _no_output(label: str, tables: FunctionTables, where: Mapping[str, Any], filtered: bool) -> str:
    """Why the row tagged ``where`` has no lineage: its function returned None for it, its
    latest call failed (the newest failure recorded for the tag), or no row has that tag."""
    if filtered:
        return (
            f"the row of node {label!r} with tag {dict(where)} was filtered out: the function "
            "returned None for it, so it has no output to trace"
        )
    failures = []
    for path in tables.record_paths:
        try:
            table = by_values(tables.pipeline_db.at("_failures"), path, where, FAILURE_ID)
        except InputValidationError:  # list-valued tags: no failure look-up by value
            table = None
        if table is not None and table.num_rows:
            failures.extend(table.select([ERROR_TYPE, ERROR_MESSAGE, ERROR_TIME]).to_pylist())
    if failures:
        last = max(failures, key=lambda f: f[ERROR_TIME])
        error = str(last[ERROR_TYPE]).removeprefix("builtins.")
        at = f"{last[ERROR_TIME]:%Y-%m-%d %H:%M:%S} UTC"
        return (
            f"the row of node {label!r} with tag {dict(where)} has no output: its latest call "
            f"failed ({error}: {last[ERROR_MESSAGE]}, at {at}). See "
            "node.failures() or `orcapod logs --failed`; fix the function or the input and "
            "run again"
        )
    return (
        f"node {label!r} has no stored row with tag {dict(where)}; check the tag (values "
        "are compared exactly) and that the node has run"
    )


def _ambiguous(
    label: str, where: Mapping[str, Any], records: list[tuple[tuple[str, ...], dict[str, Any]]]
) -> str:
    """Why several rows match ``where``: tag columns not given, or rows that share every tag
    value and differ in their system tags (the same tags from different source rows)."""
    rows = len({r[1][PIPELINE_ENTRY_ID] for r in records})
    tags = [k for k in records[0][1] if not k.startswith("_")]
    missing = [k for k in tags if k not in where]
    if missing:
        return (
            f"{rows} rows of node {label!r} match {dict(where)}; give every tag column to name "
            f"one row: missing {missing} (tag columns: {tags})"
        )
    system = sorted(
        {k for _, row in records for k in row if k.startswith(SYSTEM_TAG_PREFIX)} - set(where)
    )
    return (
        f"{rows} rows of node {label!r} have the tag {dict(where)}: they come from different "
        f"source rows; name one by adding its system tag values to the tag ({system}, see "
        "node.as_table(all_info=True))"
    )


class _Walk:
    def __init__(
        self,
        functions: dict[str, FunctionTables],
        operators: Mapping[str, Sequence[OperatorStep]],
        locate: Callable[[str, str], FunctionTables | None] | None,
    ) -> None:
        self.functions = functions
        self.operators = operators
        self.locate = locate
        self.steps: list[FunctionStep | OperatorStep] = []
        self.sources: list[SourceRow] = []
        self.notes: list[str] = []
        self._seen_sources: set[SourceRow] = set()
        self._seen_results: set[str] = set()
        self._seen_nodes: set[str] = set()

    def record(
        self,
        tables: FunctionTables,
        record: dict[str, Any],
        depth: int,
        result: pa.Table | None = None,
    ) -> None:
        result_id = str(record[PACKET_ID])
        if result_id in self._seen_results:
            return
        self._seen_results.add(result_id)
        if result is None:  # the upstream walk passes the result it already read
            result = by_ids(tables.result_db, tables.result_path, [result_id], PACKET_ID)
        tokens = [
            t
            for column, value in record.items()
            if column.startswith(SOURCE_PREFIX)
            for t in (value if isinstance(value, list) else [value])
            if t is not None
        ]
        self.steps.append(_function_step(tables, record, result, tokens, depth))
        if tables.label is not None and tables.label not in self._seen_nodes:
            self._seen_nodes.add(tables.label)
            for op in self.operators.get(tables.label, ()):
                self.steps.append(OperatorStep(depth + 1 + op.depth, op.node, op.operator))
        upstream: dict[str, list[str]] = {}
        for token in tokens:
            prefix, rid, column = split_token(token)
            if prefix in self.functions or (self.locate is not None and ":" in prefix):
                upstream.setdefault(prefix, []).append(rid)
            else:
                row = SourceRow(prefix, rid, column)
                if row not in self._seen_sources:
                    self._seen_sources.add(row)
                    self.sources.append(row)
        for prefix, ids in upstream.items():
            self._upstream(prefix, ids, record, result, depth + 1)

    def _upstream(
        self,
        prefix: str,
        result_ids: list[str],
        record: dict[str, Any],
        result: pa.Table | None,
        depth: int,
    ) -> None:
        tables = self.functions.get(prefix)
        results = None
        if tables is not None:
            results = by_ids(
                tables.result_db, tables.result_path, sorted(set(result_ids)), PACKET_ID
            )
        elif self.locate is not None:
            code = None
            located = self.locate(prefix, "")
            if located is not None:
                results = by_ids(
                    located.result_db, located.result_path, sorted(set(result_ids)), PACKET_ID
                )
                if results is not None and results.num_rows:
                    code = results.column(PF_VAR_PREFIX + CODE_HASH_KEY)[0].as_py()
                    tables = self.locate(prefix, str(code))
        if tables is None or results is None:
            self.notes.append(f"the records of {prefix} were not found")
            return
        records = self._records_of(tables, results, record)
        for rid in dict.fromkeys(result_ids):
            row = records.get(rid)
            if row is None:
                self.notes.append(f"no record of {prefix} points at result {rid}")
                continue
            mine = results.filter(pc.equal(results.column(PACKET_ID), rid))
            self.record(tables, row, depth, mine)

    def _records_of(
        self, tables: FunctionTables, results: pa.Table, record: dict[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """The upstream record of each result (by computed entry id, else by ``__packet_id``
        among records sharing the row's source record ids)."""
        wanted = results.column(PACKET_ID).to_pylist()
        hashes = results.column(INPUT_PACKET_HASH).to_pylist()
        out: dict[str, dict[str, Any]] = {}
        tag_cols = [c for c in record if not c.startswith("_")]
        sys_cols = [c for c in record if c.startswith(SYSTEM_TAG_PREFIX)]
        if not any(isinstance(record[c], list) for c in (*tag_cols, *sys_cols)):
            base = pa.Table.from_pylist([{c: record[c] for c in (*tag_cols, *sys_cols)}])
            digests = [bytes.fromhex(h.partition(":")[2]) for h in hashes]
            candidates = entry_ids(
                base.take(pa.array(np.zeros(len(digests), dtype=np.int64), pa.int64())),
                base.column_names,
                pa.array(digests, pa.binary(16)),
            ).to_pylist()
            for path in tables.record_paths:
                got = by_ids(tables.pipeline_db, path, candidates, PIPELINE_ENTRY_ID)
                if got is not None:
                    for row in got.to_pylist():
                        out.setdefault(row[PACKET_ID], row)
        missing = [w for w in wanted if w not in out]
        if not missing:
            return out
        ours = _record_ids(record)
        for path in tables.record_paths:
            got = tables.pipeline_db.get_records_with_column_value(
                path, {PACKET_ID: missing}, record_id_column=PIPELINE_ENTRY_ID
            )
            if got is None:
                continue
            for row in got.to_pylist():
                if row[PACKET_ID] not in out and _record_ids(row) <= ours:
                    out[row[PACKET_ID]] = row
        return out


def by_ids(
    db: ArrowDatabase, path: Sequence[str], ids: Sequence[str], record_id_column: str
) -> pa.Table | None:
    """``db.get_records_by_ids``; on a Delta store through its record-id locator, so one id
    costs a row-group read instead of a query over every data file (``id_locator``)."""
    backend, full = db, tuple(path)
    if isinstance(db, ScopedArrowDatabase):
        backend, full = db.backend, (*db.prefix, *path)
    if isinstance(backend, DeltaTableDatabase):
        return backend.get_records_by_ids(full, ids, record_id_column, locate=True)
    return db.get_records_by_ids(path, ids, record_id_column)


def by_values(
    db: ArrowDatabase, path: Sequence[str], where: Mapping[str, Any], record_id_column: str
) -> pa.Table | None:
    """``db.get_records_with_column_value``; on a Delta store read by the data files' row-group
    statistics, so a fresh process does not start a query engine for one row (``stats_scan``)."""
    backend, full = db, tuple(path)
    if isinstance(db, ScopedArrowDatabase):
        backend, full = db.backend, (*db.prefix, *path)
    if isinstance(backend, DeltaTableDatabase):
        return backend.get_records_with_column_value(
            full, dict(where), record_id_column=record_id_column, statistics=True
        )
    return db.get_records_with_column_value(path, dict(where), record_id_column=record_id_column)


def _record_ids(record: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for column, value in record.items():
        if column.startswith(SYSTEM_TAG_RECORD_ID) and value is not None:
            out.update(value if isinstance(value, list) else [value])
    return out


def _function_step(
    tables: FunctionTables,
    record: Mapping[str, Any],
    result: pa.Table | None,
    tokens: list[str],
    depth: int,
) -> FunctionStep:
    row: dict[str, Any] = {} if result is None or result.num_rows == 0 else result.to_pylist()[0]
    git = str(row.get(PF_VAR_PREFIX + "git_hash") or "unknown")
    commit: str | None = None if git == "unknown" else git.removesuffix("-dirty")
    dirty: bool | None = None if commit is None else git.endswith("-dirty")
    outputs = {k: value_summary(v) for k, v in row.items() if not k.startswith("_")}
    stamp = row.get(POD_TS)
    return FunctionStep(
        depth=depth,
        node=tables.label,
        function=str(row.get(PF_VAR_PREFIX + "function_name") or tables.uri[0]),
        result_id=str(record[PACKET_ID]),
        code_hash=str(row.get(PF_VAR_PREFIX + CODE_HASH_KEY) or ""),
        git_commit=commit,
        git_dirty=dirty,
        executor=str(row.get(PF_EXEC_PREFIX + "executor_type") or ""),
        executor_options=str(row.get(PF_EXEC_PREFIX + "executor_options") or ""),
        python_version=str(row.get(PF_EXEC_PREFIX + "python_version") or ""),
        computed_at="" if stamp is None else stamp.isoformat(),
        input_packet_hash=str(record.get(INPUT_PACKET_HASH) or ""),
        outputs=outputs,
        inputs=tuple(tokens),
    )
