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

The walk itself is in ``orcapod.nodes.lineage_walk``; this module holds what it returns and
where a graph's functions store their tables.

The result is a ``Lineage``: its steps (one per function application and operator, with their
depth below the row), the source rows (source id, record id, column) that fed the row, a
table (``to_table``) and a W3C PROV-JSON document (``to_prov``): each result is an entity
``wasGeneratedBy`` its function's activity, which ``used`` the upstream entities and
``wasAssociatedWith`` the function (an agent carrying the code hash and git state).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from orcapod.databases import ArrowDatabase
from orcapod.functions.provenance import source_prefix
from orcapod.nodes.operator_node import OperatorNode
from orcapod.types.columns import (
    BLOCK_SEP,
)

__all__ = [
    "FunctionStep",
    "FunctionTables",
    "Lineage",
    "OperatorStep",
    "SourceRow",
    "graph_tables",
    "split_token",
    "tables_of",
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
    prefix, record_id, _ = split_token(token)
    if ":" in prefix:  # a function uri
        return f"orcapod:result/{record_id}"
    return f"orcapod:source/{prefix}/{record_id}"


def split_token(token: str) -> tuple[str, str, str]:
    """``(prefix, record id, column)`` of a source-info token ``<prefix>::<id>::<col>``."""
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
