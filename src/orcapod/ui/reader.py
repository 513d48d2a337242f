"""``UiStore``: what the web pages show, read from a store without the user's code.

It answers one question per page part and builds on the readers the command line uses:
``StoreView`` (catalog, run history, logs), ``orcapod.ui.rows`` (a page of rows),
``lineage_from_store`` (a row's lineage) and the stored code identities
(``orcapod.functions.identity_store``).

* ``failures(node, limit, offset)``: a page of a function node's failed rows, newest first,
  one per row (its latest attempt; ``failure_count(node)``: how many there are), each
  with its error, traceback, the captured stdout / stderr / logging of that attempt (its
  log row, matched by input packet hash and time) and the source rows its system tags
  name. A failure whose row has since been computed (its newest logged call
  succeeded) is marked ``resolved``; without logs (``run(logs=False)``) it cannot be told.
* ``row(node, entry_id)``: one row by its pipeline entry id (the ``__record_id`` of its
  pipeline record, or the ``__pipeline_entry_id`` of its failure): tags, outputs, how and
  where the result was computed, its captured output, its lineage back to the source rows.
  The lineage is read from the store (``lineage_from_store``: function results and source
  rows); the operators between two functions, which store nothing, are named from the
  catalog's edges (``via``).
* ``source_values(rows)``: the values of source rows, where the store holds them: a cached
  source (``source.cached(store)``) keeps its rows at ``("source", <source id>, ...)``, so a
  file-manifest source's row resolves to its file path. Other sources keep no rows in the
  store; their rows are shown by source id, record id and column.
* ``identity(node)``: the components of the node's code hash, the function's source text
  and what changed since the function's previous code version, when they are stored
  (``_result/_identity``; stores written before source texts were kept show the components
  only).
* ``why(node)``: the reasons the node's last run computed what it did, from the store alone:
  its counts, its failed rows' errors, and the code change since the previous version. The
  full ``explain`` (which hashes the current code) needs the user's functions:
  ``orcapod explain NODE --pipeline-file FILE``.
* ``fingerprint()``: changes whenever a table the pages read gains a commit (a run starts
  or ends, a node flushes rows, failures or logs), so pages poll it to refresh themselves
  while a run goes on. On a local Delta store it hashes the modification times of the
  tables' ``_delta_log`` directories (a commit adds a file there): a few ``stat`` calls,
  cheap enough to poll every second or two. Elsewhere it is the catalog's and run
  history's versions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from orcapod.databases import ArrowDatabase, DeltaTableDatabase
from orcapod.errors import NodeNotFoundError, OrcapodError
from orcapod.functions.identity_store import (
    ComponentChange,
    StoredIdentity,
    diff_identities,
    load_identities,
    stored_source,
)
from orcapod.nodes.lineage import Lineage, SourceRow
from orcapod.nodes.store_lineage import StoreLayout, lineage_from_store
from orcapod.pipeline import NodeInfo, PipelineInfo, RunInfo, StoreView
from orcapod.pipeline.store_layout import CATALOG_PATH, RUNS_PATH
from orcapod.types.columns import (
    ERROR_MESSAGE,
    ERROR_TRACEBACK,
    ERROR_TYPE,
    INPUT_PACKET_HASH,
    PACKET_ID,
    PIPELINE_ENTRY_ID,
    SYSTEM_TAG_PREFIX,
    SYSTEM_TAG_RECORD_ID,
    SYSTEM_TAG_SOURCE_ID,
)
from orcapod.ui.rows import RowsPage, read_page, scan_table

__all__ = ["CodeIdentity", "Failure", "RowDetail", "UiStore", "Why", "operators_between"]

_RECORD_ID = "__record_id"
_FAILED_AT = "__failed_at"
_OLDEST = datetime.min.replace(tzinfo=UTC)
_SOURCE_AREA = "source"
_RESULTS_AREA = "_result"
#: result columns shown as "how it was computed" on a row page
_PROVENANCE = {
    "__pf_var_function_name": "function",
    "__pf_var_function_content_hash": "code hash",
    "__pf_var_git_hash": "git",
    "__pf_exec_executor_type": "executor",
    "__pf_exec_executor_options": "executor options",
    "__pf_exec_python_version": "python",
    "__pod_ts": "computed at",
}


@dataclass(frozen=True)
class Failure:
    """One failed row of a function node (its latest attempt)."""

    entry_id: str
    tags: Mapping[str, Any]
    error_type: str
    message: str
    traceback: str
    failed_at: datetime | None
    input_hash: str
    sources: tuple[SourceRow, ...]
    stdout: str | None = None
    stderr: str | None = None
    logging: str | None = None
    resolved: bool = False


@dataclass(frozen=True)
class RowDetail:
    """One row of a node (see ``UiStore.row``)."""

    node: NodeInfo
    entry_id: str
    tags: Mapping[str, Any]
    system_tags: Mapping[str, Any]
    outputs: Mapping[str, Any]
    provenance: Mapping[str, Any]
    input_hash: str | None
    computed: bool | None
    recorded_at: datetime | None
    failure: Failure | None
    logs: tuple[Mapping[str, Any], ...]
    lineage: Lineage | None
    lineage_error: str | None
    sources: tuple[SourceRow, ...]
    source_values: Mapping[SourceRow, Mapping[str, Any]] = field(default_factory=dict)
    #: function node label -> the operators between it and the nodes it reads (catalog)
    via: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class CodeIdentity:
    """The stored components of a node's code hash and of its previous one."""

    current: StoredIdentity | None
    previous: StoredIdentity | None
    previous_hash: str | None  #: the previous code hash, even when its components are not stored
    source: str | None = None  #: the function's source text, when stored with the code hash


@dataclass(frozen=True)
class Why:
    """The store's answer to "why did this node compute what it did" (module docstring)."""

    lines: tuple[str, ...]
    changes: tuple[ComponentChange, ...]


class UiStore:
    """The web view's reader of one store (see the module docstring)."""

    def __init__(self, store: str | os.PathLike[str] | ArrowDatabase) -> None:
        self.view = StoreView(store)
        self.database = self.view.database

    @property
    def location(self) -> str:
        db = self.database
        return db.base_path if isinstance(db, DeltaTableDatabase) else repr(db)

    # -- catalog and runs ----------------------------------------------------------------------

    def pipelines(self) -> list[PipelineInfo]:
        return self.view.pipelines()

    def nodes(self, pipeline: str | None = None) -> list[NodeInfo]:
        return self.view.nodes(pipeline)

    def runs(self, pipeline: str | None = None) -> list[RunInfo]:
        return self.view.runs(pipeline)

    def node(self, pipeline: str, label: str) -> NodeInfo:
        for node in self.view.nodes(pipeline):
            if node.label == label:
                return node
        raise NodeNotFoundError(
            f"no node {label!r} in pipeline {pipeline!r} of this store; see the graph page"
        )

    def node_runs(
        self, node: NodeInfo, runs: Sequence[RunInfo] | None = None
    ) -> list[tuple[RunInfo, Mapping[str, Any]]]:
        """The runs of the node's pipeline that included it, newest first, with its counts
        (``runs``: the run history when the caller has read it)."""
        out = []
        for run in self.view.runs(node.pipeline) if runs is None else runs:
            if run.pipeline != node.pipeline:
                continue
            entry = run.nodes.get(node.label)
            if entry is not None:
                out.append((run, entry))
        return out

    def fingerprint(self) -> str:
        """Changes whenever a table the pages read gains a commit (module docstring)."""
        db = self.database
        if isinstance(db, DeltaTableDatabase) and "://" not in db.base_path:
            paths = [CATALOG_PATH, RUNS_PATH]
            for node in self.view.nodes():
                paths.extend(node.tables.values())
            stamps = []
            for path in dict.fromkeys(tuple(p) for p in paths):
                try:
                    stat = os.stat(Path(db.table_uri(path)) / "_delta_log")
                except OSError:  # not written yet
                    continue
                stamps.append(f"{stat.st_mtime_ns}.{stat.st_size}")
            digest = hashlib.blake2b(" ".join(stamps).encode(), digest_size=8)
            return digest.hexdigest()
        if isinstance(db, DeltaTableDatabase):
            return ":".join(str(db.committed_version(p)) for p in (CATALOG_PATH, RUNS_PATH))
        runs = self.view.runs()
        return f"{len(runs)}:{runs[0].status if runs else ''}"

    # -- rows ----------------------------------------------------------------------------------

    def rows(
        self,
        node: NodeInfo,
        offset: int = 0,
        limit: int = 50,
        sort: str | None = None,
        descending: bool = False,
    ) -> RowsPage:
        records = node.tables.get("records")
        superseded = None
        if node.node_type == "function" and records is not None:
            superseded = self.view.superseded_entries(records, node.pipeline, node.label)
        return read_page(self.database, node, offset, limit, sort, descending, superseded)

    # -- failures ------------------------------------------------------------------------------

    def failures(
        self,
        node: NodeInfo,
        limit: int = 20,
        entry_id: str | None = None,
        with_logs: bool = True,
        offset: int = 0,
    ) -> list[Failure]:
        """``limit`` of the node's failed rows from ``offset``, newest first (module
        docstring); ``entry_id``: only the failure of that row; ``with_logs=False``: without
        their captured output (nor whether they were computed since)."""
        path = node.tables.get("failures")
        if path is None:
            return []
        lazy = scan_table(self.database, path)
        if lazy is not None:
            if entry_id is not None:
                lazy = lazy.filter(pl.col(PIPELINE_ENTRY_ID) == entry_id)
            rows = (
                lazy.sort(_FAILED_AT, descending=True)
                .unique(subset=[PIPELINE_ENTRY_ID], keep="first", maintain_order=True)
                .slice(offset, limit)
                .collect()
                .to_dicts()
            )
        else:
            table = self.database.get_all_records(path)
            rows = [] if table is None else table.to_pylist()
            if entry_id is not None:
                rows = [r for r in rows if r[PIPELINE_ENTRY_ID] == entry_id]
            rows.sort(key=lambda r: r.get(_FAILED_AT) or _OLDEST, reverse=True)
            newest: dict[str, dict[str, Any]] = {}
            for r in rows:
                newest.setdefault(r[PIPELINE_ENTRY_ID], r)
            rows = list(newest.values())[offset : offset + limit]
        if not rows:
            return []
        logs = self._logs_of(node, [r[INPUT_PACKET_HASH] for r in rows]) if with_logs else {}
        out = []
        for row in rows:
            failed_at = row.get(_FAILED_AT)
            calls = logs.get(row[INPUT_PACKET_HASH], [])
            log = next((c for c in calls if not c.get("__success")), {})
            newest = calls[0] if calls else {}
            resolved = bool(newest.get("__success")) and (
                failed_at is None or (newest.get("__timestamp") or _OLDEST) >= failed_at
            )
            out.append(
                Failure(
                    entry_id=row[PIPELINE_ENTRY_ID],
                    tags={c: row.get(c) for c in node.tag_schema if c in row},
                    error_type=str(row.get(ERROR_TYPE) or ""),
                    message=str(row.get(ERROR_MESSAGE) or ""),
                    traceback=str(row.get(ERROR_TRACEBACK) or ""),
                    failed_at=failed_at,
                    input_hash=row[INPUT_PACKET_HASH],
                    sources=_sources_of_tags(row),
                    stdout=log.get("__stdout"),
                    stderr=log.get("__stderr"),
                    logging=log.get("__python_logs"),
                    resolved=resolved,
                )
            )
        return out

    def failure_count(self, node: NodeInfo) -> int:
        """How many of the node's rows have a failure (each counted once, however many
        times it failed)."""
        path = node.tables.get("failures")
        if path is None:
            return 0
        lazy = scan_table(self.database, path)
        if lazy is not None:
            counted = lazy.select(pl.col(PIPELINE_ENTRY_ID).n_unique()).collect()
            return int(counted.item())
        table = self.database.get_all_records(path)
        if table is None:
            return 0
        return len(set(table.column(PIPELINE_ENTRY_ID).to_pylist()))

    def _logs_of(
        self, node: NodeInfo, input_hashes: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Input hash -> its log rows (executed calls), newest first: one query."""
        out: dict[str, list[dict[str, Any]]] = {}
        wanted = sorted(set(input_hashes))
        if not wanted:
            return out
        for path in self._log_paths(node):
            for row in self._log_rows(path, {INPUT_PACKET_HASH: wanted}):
                out.setdefault(row[INPUT_PACKET_HASH], []).append(row)
        return out

    def _log_paths(self, node: NodeInfo) -> list[tuple[str, ...]]:
        path = node.tables.get("logs")
        return [] if path is None else [tuple(path)]

    def _log_rows(self, path: Sequence[str], where: Mapping[str, Any]) -> list[dict[str, Any]]:
        try:
            table = self.database.get_records_with_column_value(path, dict(where))
        except OrcapodError:
            return []
        if table is None:
            return []
        rows = table.to_pylist()
        rows.sort(key=lambda r: r.get("__timestamp") or _OLDEST, reverse=True)
        return rows

    # -- one row -------------------------------------------------------------------------------

    def row(self, node: NodeInfo, entry_id: str) -> RowDetail:
        """The row of ``node`` whose pipeline entry id is ``entry_id``."""
        record = self._record(node, entry_id)
        failure = next(iter(self.failures(node, limit=1, entry_id=entry_id, with_logs=False)), None)
        if record is None and failure is None:
            raise NodeNotFoundError(
                f"node {node.name!r} has no row {entry_id!r}; open the node's page to list its rows"
            )
        source = record if record is not None else {}
        tags = {c: source.get(c) for c in node.tag_schema if c in source}
        if failure is not None and not tags:
            tags = dict(failure.tags)
        system_tags = {k: v for k, v in source.items() if k.startswith(SYSTEM_TAG_PREFIX)}
        outputs: dict[str, Any] = {}
        provenance: dict[str, Any] = {}
        packet_id = source.get(PACKET_ID)
        results_path = node.tables.get("results")
        if packet_id is not None and results_path is not None:
            result = self.database.get_records_by_ids(results_path, [packet_id])
            if result is not None and result.num_rows:
                values = result.to_pylist()[0]
                outputs = {c: values.get(c) for c in node.packet_schema if c in values}
                provenance = {name: values[c] for c, name in _PROVENANCE.items() if c in values}
        input_hash = source.get(INPUT_PACKET_HASH) or (failure.input_hash if failure else None)
        logs = [] if input_hash is None else self._logs_of(node, [input_hash]).get(input_hash, [])
        if failure is not None:
            log = next((c for c in logs if not c.get("__success")), {})
            newest = logs[0] if logs else {}
            failure = replace(
                failure,
                stdout=log.get("__stdout"),
                stderr=log.get("__stderr"),
                logging=log.get("__python_logs"),
                resolved=packet_id is not None or bool(newest.get("__success")),
            )
        lineage, lineage_error = None, None
        if packet_id is not None and node.node_type == "function":
            lineage, lineage_error = self._lineage(node, {**tags, **system_tags})
        sources: tuple[SourceRow, ...]
        if lineage is not None:
            sources = lineage.sources
        elif failure is not None:
            sources = failure.sources
        else:
            sources = _sources_of_tags(source)
        return RowDetail(
            node=node,
            entry_id=entry_id,
            tags=tags,
            system_tags=system_tags,
            outputs=outputs,
            provenance=provenance,
            input_hash=input_hash,
            computed=source.get("__computed"),
            recorded_at=source.get("__recorded_at"),
            failure=failure,
            logs=tuple(logs),
            lineage=lineage,
            lineage_error=lineage_error,
            sources=sources,
            source_values=self.source_values(sources),
            via=operators_between(self.view.nodes(node.pipeline)),
        )

    def _record(self, node: NodeInfo, entry_id: str) -> dict[str, Any] | None:
        path = node.tables.get("records")
        if path is None:
            return None
        table = self.database.get_records_by_ids(path, [entry_id])
        if table is None or table.num_rows == 0:
            return None
        rows = table.to_pylist()
        return rows[-1]

    def _lineage(
        self, node: NodeInfo, where: Mapping[str, Any]
    ) -> tuple[Lineage | None, str | None]:
        db = self.database
        if not isinstance(db, DeltaTableDatabase) or "://" in db.base_path:
            return None, "lineage is read from a local Delta Lake store only"
        if node.function is None:
            return None, "the node's function is not recorded in the catalog"
        try:
            lineage = lineage_from_store(
                db.base_path, node.function, where, node.pipeline, self.view.superseded_entries
            )
            return lineage, None
        except OrcapodError as err:
            return None, str(err)

    # -- sources -------------------------------------------------------------------------------

    def source_values(self, rows: Iterable[SourceRow]) -> dict[SourceRow, Mapping[str, Any]]:
        """The stored values of source rows held by cached sources (module docstring)."""
        wanted = list(dict.fromkeys(rows))
        if not wanted or not isinstance(self.database, DeltaTableDatabase):
            return {}
        base = self.database.base_path
        if "://" in base or not (Path(base) / _SOURCE_AREA).is_dir():
            return {}  # no cached source in this store: nothing to walk
        tables = [p for p in StoreLayout(base).tables() if p[0] == _SOURCE_AREA]
        out: dict[SourceRow, Mapping[str, Any]] = {}
        for row in wanted:
            for path in tables:
                if len(path) < 2 or path[1] != row.source_id:
                    continue
                values = self._source_row(path, row)
                if values is not None:
                    out[row] = values
                    break
        return out

    def _source_row(self, path: Sequence[str], row: SourceRow) -> Mapping[str, Any] | None:
        lazy = scan_table(self.database, path)
        if lazy is None:
            return None
        names = lazy.collect_schema().names()
        ids = [c for c in names if c.startswith(SYSTEM_TAG_RECORD_ID)]
        sids = [c for c in names if c.startswith(SYSTEM_TAG_SOURCE_ID)]
        if not ids or not sids:
            return None
        found = (
            lazy.filter((pl.col(ids[0]) == row.record_id) & (pl.col(sids[0]) == row.source_id))
            .head(1)
            .collect()
            .to_dicts()
        )
        if not found:
            return None
        return {k: v for k, v in found[0].items() if not k.startswith("_")}

    # -- code identity -------------------------------------------------------------------------

    def identity(self, node: NodeInfo, runs: Sequence[RunInfo] | None = None) -> CodeIdentity:
        """The stored identity of the node's code hash, and of the function's previous one
        (the newest run of its pipeline that had another code hash; ``runs``: that run
        history when the caller has read it)."""
        if node.code_hash is None:
            return CodeIdentity(None, None, None)
        history = self.view.runs(node.pipeline) if runs is None else runs
        previous_hash = None
        for run in history:
            if run.pipeline != node.pipeline:
                continue
            code = run.code.get(node.label)
            if code is not None and code != node.code_hash:
                previous_hash = code
                break
        wanted = [node.code_hash] + ([previous_hash] if previous_hash else [])
        results = self.database.at(_RESULTS_AREA)
        stored = load_identities(results, wanted)
        return CodeIdentity(
            stored.get(node.code_hash),
            None if previous_hash is None else stored.get(previous_hash),
            previous_hash,
            stored_source(results, node.code_hash),
        )

    def why(self, node: NodeInfo, identity: CodeIdentity | None = None) -> Why:
        """Why the node's last run computed what it did (module docstring)."""
        if node.node_type != "function":
            return Why((), ())
        lines = []
        if node.last_run is None:
            lines.append("the node has not run yet")
        else:
            lines.append(
                f"last run: {node.computed} computed, {node.reused} reused (already stored), "
                f"{node.filtered} filtered, {node.failed} failed"
            )
        identity = self.identity(node) if identity is None else identity
        changes: tuple[ComponentChange, ...] = ()
        if identity.current is not None and identity.previous is not None:
            changes = tuple(diff_identities(identity.previous, identity.current))
            if changes:
                lines.append(
                    "code changed since the previous version: "
                    + "; ".join(c.describe() for c in changes)
                )
        elif identity.previous_hash is not None:
            lines.append("code changed since the previous version (components not recorded)")
        if node.failed:
            lines.append(
                f"{node.failed} row(s) failed: the next run retries them (see the failures)"
            )
        return Why(tuple(lines), changes)


def operators_between(nodes: Sequence[NodeInfo]) -> dict[str, tuple[str, ...]]:
    """Function node label -> the operator nodes between it and the function and source
    nodes it reads, nearest first (a row's lineage read from the store skips operators,
    which store nothing; the catalog's edges name them)."""
    by_label = {n.label: n for n in nodes}
    out: dict[str, tuple[str, ...]] = {}
    for node in nodes:
        if node.node_type != "function":
            continue
        found: list[str] = []
        queue = list(node.upstreams)
        while queue:
            label = queue.pop(0)
            upstream = by_label.get(label)
            if upstream is None or upstream.node_type != "operator" or label in found:
                continue
            found.append(label)
            queue.extend(upstream.upstreams)
        out[node.label] = tuple(found)
    return out


def _sources_of_tags(row: Mapping[str, Any]) -> tuple[SourceRow, ...]:
    """The source rows named by a row's system tags (``_tag_source_id::X`` paired with
    ``_tag_record_id::X``)."""
    out = []
    for column, value in row.items():
        if not column.startswith(SYSTEM_TAG_SOURCE_ID) or value is None:
            continue
        suffix = column[len(SYSTEM_TAG_SOURCE_ID) :]
        record = row.get(SYSTEM_TAG_RECORD_ID + suffix)
        if record is not None:
            out.append(SourceRow(str(value), str(record), None))
    return tuple(out)
