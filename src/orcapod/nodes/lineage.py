"""``lineage``: the full upstream path of one output row of a function node.

Starting from the row's pipeline record (found by its tag), the walk follows provenance that
the store already holds:

* a record's result (``__packet_id`` → the result row): the function's name, code hash, git
  commit and dirty flag, executor type and options, Python version and the time computed;
* the record's input source info (``_source_<col>``, a list after ``Batch``): a token
  ``<function uri>::<result id>::<col>`` names the upstream function's result that fed the
  column, any other token ``<source id>::<record id>::<col>`` a source row;
* the upstream function's record of that result: first by its computed entry id (the row's
  tags and system tags with the upstream result's input hash - one id look-up, when nothing
  between the two functions changed the tags), else by ``__packet_id`` among the upstream
  records whose system-tag record ids are among the row's (join, semi-join, batch and
  renames change the tags but never drop those values);
* the operators between functions, from the node graph (``node.lineage``); a walk from the
  store alone (``lineage_from_store``) cannot see operators that store nothing.

The result is a ``Lineage``: its steps (one per function application and operator, with their
depth below the row), the source rows (source id, record id, column) that fed the row, a
table (``to_table``) and a W3C PROV-JSON document (``to_prov``): each result is an entity
``wasGeneratedBy`` its function's activity, which ``used`` the upstream entities and
``wasAssociatedWith`` the function (an agent carrying the code hash and git state).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.databases.scoped import ScopedArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions.engine.identify import entry_ids
from orcapod.functions.provenance import CODE_HASH_KEY, source_prefix
from orcapod.hashing.function_identity import value_summary
from orcapod.nodes.operator_node import OperatorNode
from orcapod.types.columns import (
    BLOCK_SEP,
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
    "FunctionStep",
    "FunctionTables",
    "Lineage",
    "OperatorStep",
    "SourceRow",
    "by_ids",
    "by_values",
    "graph_tables",
    "node_lineage",
    "tables_of",
    "trace_lineage",
]


@dataclass(frozen=True)
class FunctionTables:
    """Where one function's records and results are stored."""

    uri: tuple[str, ...]
    pipeline_db: ArrowDatabase
    record_paths: tuple[tuple[str, ...], ...]
    result_db: ArrowDatabase
    result_path: tuple[str, ...]
    label: str | None = None

    @property
    def prefix(self) -> str:
        return source_prefix(self.uri).removesuffix(BLOCK_SEP)


@dataclass(frozen=True)
class FunctionStep:
    """One application of a function to one packet."""

    depth: int
    node: str | None
    function: str
    result_id: str
    code_hash: str
    git_commit: str | None
    git_dirty: bool | None
    executor: str
    executor_options: str
    python_version: str
    computed_at: str
    input_packet_hash: str
    outputs: Mapping[str, str]  #: output column -> value summary
    inputs: tuple[str, ...]  #: the source-info tokens it read


@dataclass(frozen=True)
class OperatorStep:
    """An operator between functions (from the node graph)."""

    depth: int
    node: str
    operator: str


@dataclass(frozen=True)
class SourceRow:
    """A source row (and column) that fed the output row."""

    source_id: str
    record_id: str
    column: str | None


@dataclass(frozen=True)
class Lineage:
    """The upstream path of one output row (see the module docstring)."""

    node: str
    tag: Mapping[str, Any]
    steps: tuple[FunctionStep | OperatorStep, ...]
    sources: tuple[SourceRow, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def functions(self) -> tuple[FunctionStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, FunctionStep))

    @property
    def operators(self) -> tuple[OperatorStep, ...]:
        return tuple(s for s in self.steps if isinstance(s, OperatorStep))

    def to_table(self) -> pa.Table:
        """One row per step and per source row: kind, depth, name and details."""
        rows: list[dict[str, Any]] = []
        for s in self.steps:
            if isinstance(s, FunctionStep):
                rows.append(
                    {
                        "kind": "function",
                        "depth": s.depth,
                        "name": s.function,
                        "node": s.node,
                        "id": s.result_id,
                        "code_hash": s.code_hash,
                        "git_commit": s.git_commit,
                        "git_dirty": s.git_dirty,
                        "executor": f"{s.executor} {s.executor_options}",
                        "time": s.computed_at,
                        "detail": ", ".join(f"{k}={v}" for k, v in s.outputs.items()),
                    }
                )
            else:
                rows.append(
                    {"kind": "operator", "depth": s.depth, "name": s.operator, "node": s.node}
                )
        for r in self.sources:
            rows.append(
                {"kind": "source", "name": r.source_id, "id": r.record_id, "detail": r.column}
            )
        names = [
            "kind", "depth", "name", "node", "id", "code_hash", "git_commit", "git_dirty",
            "executor", "time", "detail",
        ]  # fmt: skip
        types = {"depth": pa.int64(), "git_dirty": pa.bool_()}
        return pa.table(
            {n: pa.array([r.get(n) for r in rows], types.get(n, pa.string())) for n in names}
        )

    def to_prov(self) -> dict[str, Any]:
        """The lineage as a W3C PROV-JSON document."""
        entity: dict[str, Any] = {}
        activity: dict[str, Any] = {}
        agent: dict[str, Any] = {}
        generated: dict[str, Any] = {}
        used: dict[str, Any] = {}
        associated: dict[str, Any] = {}
        for s in self.functions:
            result = f"orcapod:result/{s.result_id}"
            act = f"orcapod:call/{s.result_id}"
            fn = f"orcapod:function/{s.function}/{s.code_hash}"
            entity[result] = {
                "prov:type": "orcapod:result",
                "prov:label": ", ".join(f"{k}={v}" for k, v in s.outputs.items()),
                "orcapod:input_packet_hash": s.input_packet_hash,
            }
            activity[act] = {
                "prov:type": "orcapod:function_call",
                "prov:label": s.function,
                "prov:endTime": s.computed_at,
                "orcapod:executor": s.executor,
                "orcapod:executor_options": s.executor_options,
                "orcapod:python_version": s.python_version,
            }
            agent[fn] = {
                "prov:type": "prov:SoftwareAgent",
                "prov:label": s.function,
                "orcapod:code_hash": s.code_hash,
                "orcapod:git_commit": s.git_commit,
                "orcapod:git_dirty": s.git_dirty,
            }
            generated[f"_:gen/{s.result_id}"] = {"prov:entity": result, "prov:activity": act}
            associated[f"_:assoc/{s.result_id}"] = {"prov:activity": act, "prov:agent": fn}
            for i, token in enumerate(s.inputs):
                used[f"_:use/{s.result_id}/{i}"] = {
                    "prov:activity": act,
                    "prov:entity": _entity_of(token),
                }
        for r in self.sources:
            entity[f"orcapod:source/{r.source_id}/{r.record_id}"] = {
                "prov:type": "orcapod:source_row",
                "orcapod:source_id": r.source_id,
                "orcapod:record_id": r.record_id,
            }
        for op in self.operators:
            activity[f"orcapod:operator/{op.node}"] = {
                "prov:type": "orcapod:operator",
                "prov:label": op.operator,
            }
        return {
            "prefix": {"orcapod": "https://orcapod.org/ns#"},
            "entity": entity,
            "activity": activity,
            "agent": agent,
            "wasGeneratedBy": generated,
            "used": used,
            "wasAssociatedWith": associated,
        }

    def __str__(self) -> str:
        lines = [f"lineage of {self.node} {dict(self.tag)}:"]
        for s in self.steps:
            pad = "  " * (s.depth + 1)
            if isinstance(s, FunctionStep):
                dirty = " (dirty)" if s.git_dirty else ""
                lines.append(
                    f"{pad}function {s.function} [{s.node or '?'}] code {s.code_hash[:20]}… "
                    f"git {s.git_commit or 'unknown'}{dirty} on {s.executor} at {s.computed_at}"
                    f" → {dict(s.outputs)}"
                )
            else:
                lines.append(f"{pad}operator {s.operator} [{s.node}]")
        lines.append("  source rows:")
        lines.extend(f"    {r.source_id} :: {r.record_id} :: {r.column}" for r in self.sources)
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _entity_of(token: str) -> str:
    prefix, record_id, _ = _split(token)
    if ":" in prefix:  # a function uri
        return f"orcapod:result/{record_id}"
    return f"orcapod:source/{prefix}/{record_id}"


def _split(token: str) -> tuple[str, str, str]:
    prefix, record_id, column = token.rsplit(BLOCK_SEP, 2)
    return prefix, record_id, column


# -- the node graph ------------------------------------------------------------------------------


def graph_tables(node: Any) -> tuple[dict[str, FunctionTables], dict[str, list[OperatorStep]]]:
    """Function tables by source-info prefix, and per function node label the operators
    between it and the function nodes (or sources) it reads, from the node graph."""
    functions: dict[str, FunctionTables] = {}
    operators: dict[str, list[OperatorStep]] = {}
    stack = [node]
    seen: set[int] = set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _is_function_node(current):
            tables = tables_of(current)
            known = functions.get(tables.prefix)
            if known is not None:  # one function applied by several nodes: search them all
                tables = FunctionTables(
                    known.uri,
                    known.pipeline_db,
                    (*known.record_paths, *tables.record_paths),
                    known.result_db,
                    known.result_path,
                    None,
                )
            functions[tables.prefix] = tables
            ops: list[OperatorStep] = []
            operators[current.label] = ops
            _collect_operators(current.upstreams, ops, 0, stack)
    return functions, operators


def tables_of(node: Any) -> FunctionTables:
    """The tables of one function node."""
    return FunctionTables(
        tuple(node.packet_function.uri),
        node.pipeline_database,
        (tuple(node.record_path),),
        node.result_cache.database,
        tuple(node.result_cache.record_path),
        node.label,
    )


def _is_function_node(obj: Any) -> bool:
    return hasattr(obj, "record_path") and hasattr(obj, "result_cache")


def _collect_operators(
    upstreams: Iterable[Any], out: list[OperatorStep], depth: int, stack: list[Any]
) -> None:
    for up in upstreams:
        if _is_function_node(up):
            stack.append(up)
        elif isinstance(up, OperatorNode):
            out.append(OperatorStep(depth, up.label, repr(up.operator)))
            _collect_operators(up.upstreams, out, depth + 1, stack)
        else:
            _collect_operators(getattr(up, "upstreams", ()), out, depth + 1, stack)


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
    where = {k: v for k, v in row.items() if not str(k).startswith("_")}
    functions, operators = graph_tables(node)
    target = tables_of(node)
    return trace_lineage(node.label, target, where, functions, operators)


# -- the walk ------------------------------------------------------------------------------------


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
    records = [r for r in records if r[1].get(PACKET_ID) is not None]
    if not records:
        raise InputValidationError(
            f"node {label!r} has no stored row with tag {dict(where)}; check the tag (values "
            "are compared exactly) and that the node has run"
        )
    if len({r[1][PIPELINE_ENTRY_ID] for r in records}) > 1:
        raise InputValidationError(
            f"{len(records)} rows of node {label!r} match {dict(where)}; give every tag "
            f"column to name one row ({sorted(k for k in records[0][1] if not k.startswith('_'))})"
        )
    walk = _Walk(dict(functions), operators or {}, locate)
    walk.record(target, records[0][1], 0)
    return Lineage(label, dict(where), tuple(walk.steps), tuple(walk.sources), tuple(walk.notes))


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
            prefix, rid, column = _split(token)
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
                base.take(pa.array(np.zeros(len(digests), dtype=np.int64))),
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
