"""``lineage_from_store``: the lineage of a row read from a local Delta Lake store alone.

No pipeline object and none of the user's code is needed: the store's directories say where
each function's records and results are (``<pipeline>/<function uri>/schema:…/code:…`` and
``_result/<function uri>``), and the records and results carry the provenance
(``orcapod.nodes.lineage``). Operators that store nothing are not visible this way.

Decisions:

* A node is named by its function name (its default label); ``pipeline`` narrows the search
  when several pipelines in the store apply that function.
* Every code version's records are searched: a row recorded under several versions (an edit
  recomputed it) is answered from the newest result.
* A row whose input changed has one record per input it had. Records the node's last
  complete run found superseded (its input no longer held them: ``superseded``, read from
  the store's catalog by the caller, ``StoreView.superseded_entries``;
  ``orcapod.nodes.membership``) are left out; of the others, the record with the newest
  ``__recorded_at`` among those sharing the row's tag and system tag values is taken as the
  current one, and a note on the ``Lineage`` counts the earlier records (its history).
  Without membership (an older store, no ``superseded`` given) a tag whose input changed
  BACK to an earlier value reuses its older record, so the newer one is taken.
  ``node.lineage`` on a live node is exact: it keeps the record of the node's current input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.errors import InputValidationError
from orcapod.nodes.lineage import FunctionTables, Lineage
from orcapod.nodes.lineage_walk import find_records, trace_lineage
from orcapod.types.columns import (
    PIPELINE_ENTRY_ID,
    RECORDED_AT,
    SYSTEM_TAG_PREFIX,
)

__all__ = ["StoreLayout", "Superseded", "lineage_from_store", "newest_records"]

#: a function: store path of a records table -> the entry ids of its superseded records
#: (None: unknown)
Superseded = Callable[[tuple[str, ...]], pa.Array | None]

_ESCAPED = re.compile(r"(?:~[0-9A-F]{2})+")
_DELTA_LOG = "_delta_log"
_RESULTS = "_result"
#: segments of a record table path below the pipeline: name, schema hash, version, type,
#: schema:<hash>, code:<hash>
_RECORD_DEPTH = 6
_NEVER = datetime.min.replace(tzinfo=UTC)  # a record without a time is the oldest


def decode_segment(name: str) -> str:
    """The path segment of a directory name (inverse of ``paths.segment_dirname``)."""
    return _ESCAPED.sub(
        lambda m: bytes(int(h, 16) for h in m.group(0).split("~")[1:]).decode("utf-8"), name
    )


class StoreLayout:
    """The record and result tables of a local Delta store, found by listing directories."""

    def __init__(self, base: str | Path) -> None:
        self.base = Path(base)
        if not self.base.is_dir():
            raise InputValidationError(
                f"no store at {str(self.base)!r}; pass --store PATH (or set ORCAPOD_STORE) to "
                "the directory of a DeltaTableDatabase"
            )
        self.database = DeltaTableDatabase(self.base)
        self._tables: list[tuple[str, ...]] | None = None

    def tables(self) -> list[tuple[str, ...]]:
        """Paths of every Delta table in the store (directories holding ``_delta_log``)."""
        if self._tables is None:
            found: list[tuple[str, ...]] = []
            stack: list[tuple[Path, tuple[str, ...]]] = [(self.base, ())]
            while stack:
                directory, path = stack.pop()
                try:
                    entries = [e for e in os.scandir(directory) if e.is_dir()]
                except OSError:
                    continue
                names = {e.name for e in entries}
                if _DELTA_LOG in names:
                    found.append(path)
                    continue
                for entry in entries:
                    if not entry.name.startswith("_"):  # Delta and index directories
                        stack.append((Path(entry.path), (*path, decode_segment(entry.name))))
            self._tables = sorted(found)
        return self._tables

    def function_tables(self, name: str, pipeline: str | None = None) -> list[FunctionTables]:
        """Tables of the function ``name`` (one per pipeline applying it)."""
        groups: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[str, ...]]] = {}
        for path in self.tables():
            if len(path) <= _RECORD_DEPTH or path[0] in (_RESULTS,) or path[0].startswith("_"):
                continue
            scope, rest = path[:-_RECORD_DEPTH], path[-_RECORD_DEPTH:]
            if rest[0] != name or not rest[4].startswith("schema:"):
                continue
            if not rest[5].startswith("code:") or any(s.startswith("_") for s in scope):
                continue
            if pipeline is not None and scope != tuple(pipeline.split(".")):
                continue
            groups.setdefault((scope, rest[:4]), []).append(rest[4:])
        out = []
        for (scope, uri), tails in sorted(groups.items()):
            out.append(
                FunctionTables(
                    uri=uri,
                    pipeline_db=self.database.at(*scope),
                    record_paths=tuple((*uri, *tail) for tail in sorted(tails)),
                    result_db=self.database.at(_RESULTS),
                    result_path=uri,
                    label=uri[0],
                )
            )
        return out

    def locate(self, scope_db: Any, prefix: str) -> FunctionTables | None:
        """The tables of the function whose source-info prefix is ``prefix``."""
        parts = prefix.split(":")
        if len(parts) < 5:
            return None
        uri = (parts[0], f"{parts[1]}:{parts[2]}", parts[3], ":".join(parts[4:]))
        for tables in self.function_tables(uri[0]):
            if tables.uri == uri and _same_scope(tables.pipeline_db, scope_db):
                return tables
        return None


def _same_scope(a: Any, b: Any) -> bool:
    return getattr(a, "prefix", None) == getattr(b, "prefix", None)


def lineage_from_store(
    store: str | Path,
    node: str,
    where: Mapping[str, Any],
    pipeline: str | None = None,
    superseded: Superseded | None = None,
) -> Lineage:
    """The lineage of the row of function ``node`` tagged ``where``, from the store alone.

    ``superseded(records_path)``: the entry ids of the records at that store path that the
    node's last complete run found superseded (``StoreView.superseded_entries``; None:
    unknown); they are never taken as the row's current record (module docstring)."""
    layout = StoreLayout(store)
    candidates = layout.function_tables(node, pipeline)
    if not candidates:
        raise InputValidationError(
            f"the store {str(store)!r} holds no records of a function {node!r}; name a "
            "function node by its function name (see the store's directories)"
        )
    if len(candidates) > 1:
        scopes = sorted(".".join(getattr(c.pipeline_db, "prefix", ())) for c in candidates)
        raise InputValidationError(
            f"several pipelines apply {node!r}: {scopes}; choose one with --pipeline NAME"
        )
    (target,) = candidates
    target, found = _newest_version(target, where, superseded)

    def locate(prefix: str, code_hash: str) -> FunctionTables | None:
        found = layout.locate(target.pipeline_db, prefix)
        if found is None or not code_hash:
            return found
        paths = tuple(p for p in found.record_paths if p[-1] == f"code:{code_hash}")
        return FunctionTables(
            found.uri,
            found.pipeline_db,
            paths or found.record_paths,
            found.result_db,
            found.result_path,
            found.label,
        )

    found, earlier = newest_records(found)
    lineage = trace_lineage(node, target, where, {}, None, locate, found)
    notes = list(lineage.notes)
    if earlier:
        notes.append(
            f"the tag {dict(where)} has {earlier} earlier record(s) of {node!r} (its input "
            "changed); this is the newest, taken as current"
        )
    notes.append("operators are not stored; run lineage on the pipeline's node to see them")
    return Lineage(lineage.node, lineage.tag, lineage.steps, lineage.sources, tuple(notes))


def newest_records(
    found: list[tuple[tuple[str, ...], dict[str, Any]]],
) -> tuple[list[tuple[tuple[str, ...], dict[str, Any]]], int]:
    """Of the records ``found``, the newest (``__recorded_at``) per row - its tag and system
    tag values - and how many older ones were left out. A filtered record (no result: the
    function returned None) counts too, so a row whose current input is filtered is told as
    filtered, not traced through an older input's result."""
    newest: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
    for path, record in found:
        key = repr(
            sorted(
                (k, v)
                for k, v in record.items()
                if not k.startswith("_") or k.startswith(SYSTEM_TAG_PREFIX)
            )
        )
        kept = newest.get(key)
        if kept is None or _recorded_at(record) > _recorded_at(kept[1]):
            newest[key] = (path, record)
    return list(newest.values()), len(found) - len(newest)


def _current_members(
    found: list[tuple[tuple[str, ...], dict[str, Any]]],
    tables: FunctionTables,
    superseded: Superseded,
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """``found`` without the records its table's membership says are superseded."""
    scope = tuple(getattr(tables.pipeline_db, "prefix", ()))
    dropped: dict[tuple[str, ...], set[str]] = {}
    for path in {path for path, _ in found}:
        ids = superseded((*scope, *path))
        dropped[path] = set() if ids is None else set(ids.to_pylist())
    return [r for r in found if r[1].get(PIPELINE_ENTRY_ID) not in dropped[r[0]]]


def _recorded_at(record: Mapping[str, Any]) -> datetime:
    stamp = record.get(RECORDED_AT)
    return stamp if isinstance(stamp, datetime) else _NEVER


def _newest_version(
    tables: FunctionTables, where: Mapping[str, Any], superseded: Superseded | None = None
) -> tuple[FunctionTables, list[tuple[tuple[str, ...], dict[str, Any]]]]:
    """``tables`` restricted to the code version whose record of the row is newest
    (``__recorded_at``; filtered records too), and the row's records there (superseded ones
    left out)."""
    found = find_records(tables, where)
    if superseded is not None:
        found = _current_members(found, tables, superseded)
    if len({path for path, _ in found}) <= 1:
        paths = tuple({path for path, _ in found}) or tables.record_paths
    else:
        paths = (max(found, key=lambda r: _recorded_at(r[1]))[0],)
    chosen = FunctionTables(
        tables.uri, tables.pipeline_db, paths, tables.result_db, tables.result_path, tables.label
    )
    return chosen, [r for r in found if r[0] in paths]
