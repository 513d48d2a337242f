"""``NodeStore``: what a ``FunctionNode`` has stored, read for its current input only.

Every read starts from the input's distinct entry ids (``InputPlan``) and goes through
``fetch_matching`` (one filtered query for a few ids, one projected scan for many; matched in
numpy), so it never returns rows that other inputs sharing the table recorded, and never
loads a table to answer a question about some rows:

* ``recorded``: the pipeline records of the input's entries (projected);
* ``stored_table``: per input row, in input order, its record joined with its result;
* ``all_records``: per recorded entry, the full record joined with the full result row;
* ``failures``: the latest failure of every entry that failed and is still not recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.data.conversion import schema_to_arrow
from orcapod.databases import ArrowDatabase
from orcapod.databases.id_index import hash_ids
from orcapod.functions import ResultCache
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import string_keys, unique_keys
from orcapod.nodes.records import (
    FILTER_LIMIT,
    failure_table,
    fetch_matching,
    utc_now,
)
from orcapod.types import ColumnConfig, Schema
from orcapod.types.columns import (
    COMPUTED,
    ERROR_TIME,
    FAILURE_ID,
    INPUT_PACKET_HASH,
    META_PREFIX,
    PACKET_ID,
    PIPELINE_ENTRY_ID,
    POD_TS,
    SOURCE_PREFIX,
    source_column,
)

__all__ = ["NodeStore", "output_rows"]

Matched = tuple[pa.Table, np.ndarray]


def _inverse(which: np.ndarray, size: int) -> np.ndarray:
    """``which`` maps returned rows to wanted items; this maps wanted items to rows (-1)."""
    out = np.full(size, -1, dtype=np.int64)
    out[which] = np.arange(len(which), dtype=np.int64)
    return out


@dataclass(frozen=True)
class NodeStore:
    """The databases and paths of one node (see the module docstring)."""

    pipeline_db: ArrowDatabase
    failure_db: ArrowDatabase
    cache: ResultCache
    record_path: tuple[str, ...]
    output_schema: Schema

    def template(self, tag_schema: Schema) -> pa.Table:
        """A zero-row table with the node's visible and hidden columns (``stored_table``'s)."""
        fields = list(schema_to_arrow({**tag_schema, **self.output_schema}))
        fields += [pa.field(source_column(k), pa.large_string()) for k in self.output_schema]
        fields += [
            pa.field(PACKET_ID, pa.large_string()),
            pa.field(COMPUTED, pa.bool_()),
            pa.field(INPUT_PACKET_HASH, pa.large_string()),
            pa.field(POD_TS, pa.timestamp("us", tz="UTC")),
        ]
        return pa.schema(fields).empty_table()

    def recorded(self, plan: InputPlan, columns: Sequence[str] | None) -> Matched | None:
        """Records of the plan's entries; per returned row, its entry index."""
        return fetch_matching(
            self.pipeline_db,
            self.record_path,
            PIPELINE_ENTRY_ID,
            plan.entry_keys,
            lambda: plan.unique_ids,
            columns,
        )

    def results(self, packet_ids: pa.Array, columns: Sequence[str] | None) -> Matched | None:
        """Result rows for ``packet_ids`` (no nulls); per id, the row index (-1: missing)."""
        keys = string_keys(packet_ids)
        codes, first = unique_keys(keys)
        found = fetch_matching(
            self.cache.database,
            self.cache.record_path,
            PACKET_ID,
            keys[first],
            lambda: packet_ids.take(pa.array(first, pa.int64())),
            columns,
        )
        if found is None:
            return None
        table, which = found
        return table, _inverse(which, len(first))[codes]

    def results_exist(self, packet_ids: pa.Array) -> np.ndarray:
        """Per id (no nulls): is a result stored under it? Up to ``FILTER_LIMIT`` ids are one
        filtered query; more are one projected scan of the stored result ids matched by their
        64-bit hashes (vectorised; a collision could only make a missing result look present,
        with odds of about n^2 / 2^64)."""
        if len(packet_ids) <= FILTER_LIMIT:
            got = self.results(packet_ids, [])
            return np.zeros(len(packet_ids), bool) if got is None else got[1] >= 0
        table = self.cache.database.get_records_with_column_value(
            self.cache.record_path, {}, record_id_column=PACKET_ID, columns=[]
        )
        if table is None:
            return np.zeros(len(packet_ids), dtype=bool)
        stored = np.sort(hash_ids(table.column(PACKET_ID)))
        wanted = hash_ids(packet_ids)
        at = np.minimum(np.searchsorted(stored, wanted), max(len(stored) - 1, 0))
        return stored[at] == wanted if len(stored) else np.zeros(len(wanted), dtype=bool)

    def stored_table(self, plan: InputPlan, template: pa.Table) -> pa.Table:
        """The stored result of every recorded input row, in input order, as ``template``."""
        found = self.recorded(plan, [PACKET_ID, COMPUTED])
        if found is None:
            return template
        records, which = found
        has_result = column_numpy(pc.is_valid(records.column(PACKET_ID)))
        row_record = _inverse(which, plan.num_entries)[plan.codes]
        rows = np.flatnonzero(row_record >= 0)
        rows = rows[has_result[row_record[rows]]]
        if len(rows) == 0:
            return template
        record_at = pa.array(row_record[rows])
        packet_ids = records.column(PACKET_ID).take(record_at).combine_chunks()
        outputs = [*self.output_schema, *(source_column(k) for k in self.output_schema)]
        got = self.results(packet_ids, [*outputs, POD_TS])
        if got is None:
            return template
        results, result_at = got
        ok = np.flatnonzero(result_at >= 0)
        rows, at = rows[ok], pa.array(result_at[ok])
        record_at = record_at.take(pa.array(ok, pa.int64()))
        return output_rows(
            plan,
            rows,
            (results, at),
            outputs,
            packet_ids.take(pa.array(ok, pa.int64())),
            records.column(COMPUTED).take(record_at),
            template.schema,
        )

    def all_records(self, plan: InputPlan, config: ColumnConfig) -> pa.Table | None:
        """Records of the input's entries joined with their results, in input order."""
        found = self.recorded(plan, None)
        if found is None:
            return None
        records, which = found
        keep = np.flatnonzero(column_numpy(pc.is_valid(records.column(PACKET_ID))))
        keep = keep[np.argsort(which[keep], kind="stable")]  # entries are in input order
        if len(keep) == 0:
            return None
        records = records.take(pa.array(keep, pa.int64()))
        got = self.results(records.column(PACKET_ID).combine_chunks(), None)
        if got is None:
            return None
        results, result_at = got
        ok = np.flatnonzero(result_at >= 0)
        records = records.take(pa.array(ok, pa.int64()))
        result_part = results.take(pa.array(result_at[ok], pa.int64()))
        result_part = result_part.drop_columns([PACKET_ID, INPUT_PACKET_HASH])
        records = records.drop_columns(
            [c for c in records.column_names if c in set(result_part.column_names)]
        )
        return self._select(plan, config, records, result_part)

    def _select(
        self, plan: InputPlan, config: ColumnConfig, records: pa.Table, results: pa.Table
    ) -> pa.Table:
        """Columns in the documented order, hidden ones only when ``config`` asks."""
        out_keys = list(self.output_schema)
        out_sources = [source_column(k) for k in out_keys]
        record_meta = [c for c in records.column_names if c.startswith(META_PREFIX)]
        input_sources = [c for c in records.column_names if c.startswith(SOURCE_PREFIX)]
        result_meta = [c for c in results.column_names if c.startswith(META_PREFIX) and c != POD_TS]
        context = [
            c
            for c in results.column_names
            if c.startswith("_") and c not in (*out_sources, *result_meta, POD_TS)
        ]
        parts: list[tuple[str, pa.Table]] = [(c, records) for c in plan.tag_columns]
        if config.system_tags:
            parts += [(c, records) for c in plan.system_tag_columns]
        if config.source:
            parts += [(c, records) for c in input_sources]
        parts += [(c, records) for c in record_meta if config.includes_meta(c)]
        parts += [(c, results) for c in result_meta if config.includes_meta(c)]
        parts += [(c, results) for c in out_keys]
        if config.context:
            parts += [(c, results) for c in context]
        if config.source:
            parts += [(c, results) for c in out_sources if c in results.column_names]
        if config.includes_meta(POD_TS) and POD_TS in results.column_names:
            parts += [(POD_TS, results)]
        return pa.table({c: t.column(c) for c, t in parts})

    def failures(self, plan: InputPlan) -> pa.Table:
        """Latest failure of each of the input's entries that is still not recorded."""
        pending = np.ones(plan.num_entries, dtype=bool)
        found = self.recorded(plan, [])
        if found is not None:
            pending[found[1]] = False
        entries = np.flatnonzero(pending)
        stored = None
        if len(entries):
            stored = fetch_matching(
                self.failure_db,
                self.record_path,
                PIPELINE_ENTRY_ID,
                plan.entry_keys[entries],
                lambda: plan.unique_ids.take(pa.array(entries, pa.int64())),
                None,
                id_is_record_id=False,
            )
        if stored is None:
            empty = failure_table(
                plan.tags(np.empty(0, dtype=np.int64)),
                pa.array([], pa.large_string()),
                "",
                None,
                utc_now(),
            )
            return empty.drop_columns([FAILURE_ID])
        table, which = stored
        stamps = column_numpy(table.column(ERROR_TIME).cast(pa.int64()))
        order = np.lexsort((-stamps, which))  # by entry (input order), newest first
        latest = order[np.r_[True, which[order][1:] != which[order][:-1]]]
        table = table.take(pa.array(latest, pa.int64()))
        return table.drop_columns([c for c in (FAILURE_ID,) if c in table.column_names])


def output_rows(
    plan: InputPlan,
    rows: np.ndarray,
    results: tuple[pa.Table, pa.Array],
    outputs: Sequence[str],
    packet_ids: Any,
    computed: Any,
    schema: pa.Schema,
) -> pa.Table:
    """Input ``rows`` of ``plan`` as a node's output rows (``schema``): their tags, the
    ``outputs`` and ``__pod_ts`` of the result rows ``results`` = (table, positions), their
    result ids ``packet_ids`` and ``computed`` flags, and their input hashes."""
    table, at = results
    tags = plan.tags(rows)
    columns: dict[str, Any] = dict(zip(tags.column_names, tags.columns, strict=True))
    for name in outputs:
        columns[name] = table.column(name).take(at)
    columns[PACKET_ID] = packet_ids
    columns[COMPUTED] = computed
    columns[INPUT_PACKET_HASH] = plan.input_hashes(rows)
    columns[POD_TS] = table.column(POD_TS).take(at)
    return pa.table([_cast(columns[f.name], f.type) for f in schema], schema=schema)


def _cast(column: Any, dtype: pa.DataType) -> Any:
    return column if column.type == dtype else column.cast(dtype)
