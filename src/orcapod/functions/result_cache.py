"""``ResultCache``: input packet hash -> output packet, in an Arrow database, with provenance.

One table per ``record_path`` (the cached function's URI, optionally under a prefix). Columns,
in order (plus the database's own ``__record_id``):

``__input_packet_hash`` · ``__pf_var_<k>`` for every variation field (function name, signature
hash, code hash ``function_content_hash``, ``git_hash``) · ``__pf_exec_<k>`` for every execution
field (``executor_type``, ``executor_options``, ``python_version``) · the output columns ·
``_source_<k>`` per output column · ``__pod_ts`` (an Arrow UTC timestamp).

Decisions:

* Record ids are deterministic: ``result_record_id(input hash, code hash, execution data)``
  (``orcapod.functions.provenance``), the same id the output packet's source info carries.
  Writes use ``skip_duplicates=True``: storing the same result again is a no-op, not an error,
  so a retried or concurrent computation never fails on its own earlier write. Storing a
  DIFFERENT output for an input already stored (same code and execution data) is not dropped:
  it gets an id derived from its output values (``output_record_id``) and, being newer, is
  what lookups answer from then on; storing either output again adds nothing. Writes of
  lookup misses (``absent_at``) skip this check: their inputs were not stored.
* A filtered result (the function returned None) is stored too, as a row whose output and
  source columns are null, so it is not recomputed; ``lookup`` returns the ``FILTERED``
  sentinel for it (``None`` means a miss). An *inactive* function's None is never stored.
  A stored output always has source info: a packet without it (e.g. recorded by hand) gets
  ``<uri>::<record id>::<column>`` (``uri`` defaults to the record path).
* Lookups are one filtered query (``__input_packet_hash IN (...)`` plus the match-tier
  constraints) for any number of packets. Several matches for one packet: the newest
  ``__pod_ts`` wins (ties: the larger record id, so the choice is deterministic).
* Match tiers (``match_constraints``): ``CacheMatch.VERSION`` adds nothing (the table is
  already scoped by the URI); ``CODE`` (the default) adds the code hash; ``STRICT`` also adds
  every execution field. Results stored under other code stay in the table, unmatched.
* A hit is a ``Packet`` with the declared output schema (when the cache was given one), the
  stored source info and meta ``__computed=False``, ``__packet_id`` (its record id) and
  ``__pod_ts``.
* ``auto_flush``: every ``store``/``store_many`` call ends with one ``flush()`` (a batch is one
  commit, not one per row). Pass ``flush=False`` to defer it and call ``flush()`` yourself.
* Writes are built column-wise in one pass: record ids, constant provenance columns
  (``pa.repeat``), output columns from the Python values, and ``_source_<k>`` of the cache's
  own computed packets with Arrow string kernels from the record ids (their lazy source info
  would resolve to exactly those tokens). ``own_values`` lets a batching caller keep only the
  values of such packets until the write (fewer live objects per buffered row).
* Verified writes: ``committed_version()`` (the results table's latest version on a versioned
  database such as Delta, else None) taken before a ``lookup_many`` lets ``store_outputs(...,
  absent_at=version)`` store that lookup's misses without the database's duplicate check
  against the rows committed up to that version: a stored row under the same record id would
  carry the same input hash, code hash and execution data, so it would have been found.
* ``get_all_records()`` shows computed results only, as output and ``_source_*`` columns;
  ``include_system_columns=True`` returns every stored row and column, with the record id as
  ``__packet_id``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from orcapod._lazy import pc
from orcapod.data import Packet
from orcapod.data.conversion import column_to_pylist, rows_to_table, table_schema
from orcapod.data.row_block import RowBlock
from orcapod.databases.paths import validate_path
from orcapod.databases.protocol import ArrowDatabase
from orcapod.errors import InputValidationError, PacketFunctionError, SchemaError
from orcapod.functions.provenance import (
    CODE_HASH_KEY,
    OwnValues,
    derivable,
    execution_digest,
    output_record_id,
    result_record_id,
    result_record_id_array,
    result_record_ids,
    source_columns,
    source_prefix,
)
from orcapod.hashing import hash_rows
from orcapod.types import CacheMatch, ContentHash, Schema
from orcapod.types.columns import (
    COMPUTED,
    DATAGRAM_PREFIX,
    INPUT_PACKET_HASH,
    META_PREFIX,
    PACKET_ID,
    PF_EXEC_PREFIX,
    PF_VAR_PREFIX,
    POD_TS,
    RECORD_ID,
    SOURCE_PREFIX,
)

__all__ = ["FILTERED", "Filtered", "ResultCache", "match_constraints"]

_TS_TYPE: Final = pa.timestamp("us", tz="UTC")
_EMPTY: Final[dict[str, Any]] = {}


class Filtered:
    """Type of ``FILTERED``: a stored result saying "the function filtered this packet out"."""

    _instance: Filtered | None = None

    def __new__(cls) -> Filtered:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "FILTERED"


FILTERED: Final = Filtered()

CacheResult = Packet | Filtered | None


def match_constraints(
    cache_match: CacheMatch | str, code_hash: str, execution: Mapping[str, str]
) -> dict[str, str]:
    """``additional_constraints`` implementing a ``CacheMatch`` tier."""
    tier = CacheMatch(cache_match)
    if tier is CacheMatch.VERSION:
        return {}
    constraints = {PF_VAR_PREFIX + CODE_HASH_KEY: code_hash}
    if tier is CacheMatch.STRICT:
        constraints.update({PF_EXEC_PREFIX + k: v for k, v in execution.items()})
    return constraints


def _hash_text(value: ContentHash | str) -> str:
    return value.to_string() if isinstance(value, ContentHash) else value


class ResultCache:
    """Stores and finds results of one packet function (see the module docstring)."""

    def __init__(
        self,
        result_database: ArrowDatabase,
        record_path: Sequence[str],
        auto_flush: bool = True,
        *,
        output_schema: Schema | None = None,
        uri: Sequence[str] | None = None,
    ) -> None:
        if not isinstance(result_database, ArrowDatabase):
            raise InputValidationError(
                f"result_database must be an ArrowDatabase (e.g. InMemoryArrowDatabase, "
                f"DeltaTableDatabase), got {type(result_database).__name__}"
            )
        self._db = result_database
        self._path = validate_path(record_path)
        self._auto_flush = bool(auto_flush)
        self._output_schema = output_schema
        self._source_prefix = source_prefix(tuple(uri) if uri is not None else self._path)

    @property
    def database(self) -> ArrowDatabase:
        return self._db

    @property
    def record_path(self) -> tuple[str, ...]:
        return self._path

    @property
    def auto_flush(self) -> bool:
        return self._auto_flush

    def set_auto_flush(self, on: bool = True) -> None:
        self._auto_flush = bool(on)

    def flush(self) -> None:
        self._db.flush()

    def committed_version(self) -> int | None:
        """The results table's latest committed version (-1: none yet), or None when the
        database keeps no versions; see ``store_outputs(absent_at=...)``."""
        return self._db.committed_version(self._path)

    # -- lookups -------------------------------------------------------------------------

    def lookup(
        self, input_packet: Packet, additional_constraints: Mapping[str, Any] | None = None
    ) -> CacheResult:
        """The stored result for ``input_packet``: a Packet, ``FILTERED``, or None (a miss)."""
        return self.lookup_many([input_packet.content_hash()], additional_constraints)[0]

    @property
    def output_schema(self) -> Schema | None:
        """The declared output schema of the cached function (None: taken from the data)."""
        return self._output_schema

    def lookup_table(
        self,
        input_hashes: Sequence[ContentHash | str] | pa.Array,
        additional_constraints: Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table | None:
        """The stored rows answering ``input_hashes`` with ONE query: per hash found, its
        newest matching row (``__record_id``, ``__input_packet_hash``, ``__pod_ts`` and
        ``columns``, or every column when None); None when nothing matches. An Arrow array
        is taken as it is (repeated values only repeat an ``IN`` list entry)."""
        if isinstance(input_hashes, pa.Array | pa.ChunkedArray):
            wanted: Any = input_hashes
        else:
            wanted = sorted({_hash_text(h) for h in input_hashes})
        if not wanted:
            return None
        constraints: dict[str, Any] = {INPUT_PACKET_HASH: wanted}
        constraints.update(additional_constraints or {})
        projection = None if columns is None else [INPUT_PACKET_HASH, POD_TS, *columns]
        table = self._db.get_records_with_column_value(
            self._path, constraints, record_id_column=RECORD_ID, columns=projection
        )
        if table is None or table.num_rows == 0:
            return None
        return _newest_per_hash(table)

    def lookup_many(
        self,
        input_hashes: Sequence[ContentHash | str],
        additional_constraints: Mapping[str, Any] | None = None,
    ) -> list[CacheResult]:
        """Results for many input packet hashes with ONE query, aligned with ``input_hashes``."""
        wanted = [_hash_text(h) for h in input_hashes]
        if not wanted:
            return []
        table = self.lookup_table(wanted, additional_constraints)
        if table is None:
            return [None] * len(wanted)
        rows = {h: i for i, h in enumerate(table.column(INPUT_PACKET_HASH).to_pylist())}
        packets = self._packets(table)
        return [packets[rows[h]] if h in rows else None for h in wanted]

    def _packets(self, table: pa.Table) -> list[CacheResult]:
        schema = self._output_schema
        if schema is None:
            names = [n for n in table.column_names if not n.startswith(DATAGRAM_PREFIX)]
            schema = table_schema(table.select(names))
        keys = [k for k in schema if k in table.column_names]
        if len(keys) != len(schema):
            schema = schema.select(*keys)
        n = table.num_rows
        if not keys:
            return [FILTERED] * n
        sources = [SOURCE_PREFIX + k for k in keys]
        columns: dict[str, list[Any]] = {
            k: column_to_pylist(table.column(k), schema[k]) for k in keys
        }
        stored = None  # a filtered result is a row whose every output source column is null
        for name in sources:
            if name in table.column_names:
                columns[name] = table.column(name).to_pylist()
                valid = pc.is_valid(table.column(name))
                stored = valid if stored is None else pc.or_(stored, valid)
            else:
                columns[name] = [None] * n
        is_output = [False] * n if stored is None else stored.to_pylist()
        # block-backed packets: values and source info are read from the block when needed
        block = RowBlock(
            columns,
            table=table.select(keys),
            source_info_columns=dict(zip(keys, sources, strict=True)),
        )
        make_row = Packet._make_row
        ids = table.column(RECORD_ID).to_pylist()
        stamps = table.column(POD_TS).to_pylist()
        return [
            make_row(block, i, schema, {COMPUTED: False, PACKET_ID: rid, POD_TS: ts})
            if output
            else FILTERED
            for i, (output, rid, ts) in enumerate(zip(is_output, ids, stamps, strict=True))
        ]

    # -- stores --------------------------------------------------------------------------

    def record_id(
        self,
        input_hash: ContentHash | str,
        variation: Mapping[str, str],
        execution: Mapping[str, str],
    ) -> str:
        """The record id a result of ``input_hash`` is stored under."""
        return result_record_id(
            _hash_text(input_hash), execution_digest(variation.get(CODE_HASH_KEY, ""), execution)
        )

    def record_ids(
        self,
        input_hashes: Sequence[ContentHash | str],
        variation: Mapping[str, str],
        execution: Mapping[str, str],
    ) -> list[str]:
        """``record_id`` of many input hashes (vectorised)."""
        suffix = execution_digest(variation.get(CODE_HASH_KEY, ""), execution)
        return result_record_ids([_hash_text(h) for h in input_hashes], suffix)

    def store(
        self,
        input_packet: Packet,
        output_packet: Packet | None,
        variation: Mapping[str, str],
        execution: Mapping[str, str],
        *,
        flush: bool | None = None,
    ) -> str:
        """Store one result (None: filtered out); returns its record id."""
        return self.store_many(
            [(input_packet.content_hash(), output_packet)], variation, execution, flush=flush
        )[0]

    def store_many(
        self,
        entries: Sequence[tuple[ContentHash | str, Packet | OwnValues | None]],
        variation: Mapping[str, str],
        execution: Mapping[str, str],
        *,
        flush: bool | None = None,
        pod_ts: dt.datetime | Sequence[dt.datetime] | None = None,
        record_ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Store ``(input hash, output packet or None)`` results in one write; their ids.

        An output may also be a plain ``dict`` of values, as ``own_values`` gives it: a result
        of this cache's own function whose source info is this cache's own tokens.
        ``pod_ts`` (default: now) is the stored ``__pod_ts`` of every row, or one per entry.
        ``record_ids``, when the caller already computed them with ``record_id``, skips that.
        """
        return self.store_outputs(
            [h for h, _ in entries],
            [p for _, p in entries],
            variation,
            execution,
            flush=flush,
            pod_ts=pod_ts,
            record_ids=record_ids,
        )

    def store_outputs(
        self,
        input_hashes: Sequence[ContentHash | str],
        outputs: Sequence[Packet | OwnValues | None],
        variation: Mapping[str, str],
        execution: Mapping[str, str],
        *,
        flush: bool | None = None,
        pod_ts: dt.datetime | Sequence[dt.datetime] | None = None,
        record_ids: Sequence[str] | None = None,
        absent_at: int | None = None,
    ) -> list[str]:
        """``store_many`` given as two aligned lists (no per-row tuples to build).

        ``absent_at``: every input hash was a miss of a ``lookup_many`` made after
        ``committed_version()`` returned this version (the write skips the database's duplicate
        check against the rows committed up to it; later rows are still checked).
        """
        if not outputs:
            return []
        table = self.store_outputs_table(
            input_hashes,
            outputs,
            variation,
            execution,
            flush=flush,
            pod_ts=pod_ts,
            record_ids=record_ids,
            absent_at=absent_at,
        )
        ids: list[str] = table.column(RECORD_ID).to_pylist()
        return ids

    def store_outputs_table(
        self,
        input_hashes: Sequence[ContentHash | str] | pa.Array,
        outputs: Sequence[Packet | OwnValues | None],
        variation: Mapping[str, str],
        execution: Mapping[str, str],
        *,
        flush: bool | None = None,
        pod_ts: dt.datetime | Sequence[dt.datetime] | None = None,
        record_ids: Sequence[str] | None = None,
        absent_at: int | None = None,
    ) -> pa.Table:
        """``store_outputs``, returning the rows written (every stored column, in order)."""
        hash_array: pa.Array | None = None
        hashes: list[str] = []
        if isinstance(input_hashes, pa.Array | pa.ChunkedArray):  # kept as the stored column
            hash_array = input_hashes.cast(pa.large_string())
            count = len(hash_array)
        else:
            hashes = [_hash_text(h) for h in input_hashes]
            count = len(hashes)
        if count != len(outputs):
            raise InputValidationError(
                f"got {count} input hashes for {len(outputs)} outputs; pass one "
                "input hash per output"
            )
        suffix = execution_digest(variation.get(CODE_HASH_KEY, ""), execution)
        large = pa.large_string()
        if record_ids is not None:
            id_array = pa.array(list(record_ids), type=large)
        elif hash_array is not None:
            id_array = result_record_id_array(hash_array, suffix)
        else:
            id_array = pa.array(result_record_ids(hashes, suffix), type=large)
        packets = outputs
        schema = self._output_schema
        if schema is None:
            first = next((p for p in packets if isinstance(p, Packet)), None)
            if first is None and any(type(p) is dict for p in packets):
                raise InputValidationError(
                    "results given as plain values need a cache with an output schema; "
                    "create the ResultCache with output_schema=..."
                )
            schema = first.schema() if first is not None else Schema()
        nullable = Schema({k: tp | None for k, tp in schema.items()})
        n = len(packets)
        values = rows_to_table([_values(p) for p in packets], nullable)
        if absent_at is None:  # not known to be new: an input stored before keeps its output
            ids = self._settle_conflicts(id_array.to_pylist(), values)
            id_array = pa.array(ids, type=large)
        columns: dict[str, pa.Array] = {
            RECORD_ID: id_array,
            INPUT_PACKET_HASH: pa.array(hashes, type=large) if hash_array is None else hash_array,
        }
        for k, v in variation.items():
            columns[PF_VAR_PREFIX + k] = pa.repeat(pa.scalar(v, type=large), n)
        for k, v in execution.items():
            columns[PF_EXEC_PREFIX + k] = pa.repeat(pa.scalar(v, type=large), n)
        for k in nullable:
            columns[k] = values.column(k)
        columns.update(
            source_columns(self._source_prefix, packets, id_array, tuple(nullable), suffix)
        )
        if pod_ts is None:
            pod_ts = dt.datetime.now(dt.UTC)
        if isinstance(pod_ts, dt.datetime):
            columns[POD_TS] = pa.repeat(pa.scalar(pod_ts, type=_TS_TYPE), n)
        else:
            columns[POD_TS] = pa.array(list(pod_ts), type=_TS_TYPE)
        table = pa.table(columns)
        self._db.add_records(
            self._path, table, RECORD_ID, skip_duplicates=True, absent_at=absent_at
        )
        if self._auto_flush if flush is None else flush:
            self._db.flush()
        return table

    def unstorable(
        self, outputs: Sequence[Packet | OwnValues | None]
    ) -> dict[int, PacketFunctionError]:
        """The outputs (by position) whose values this cache cannot store, each with the
        reason; converts row by row, so call it only after a batch failed to convert."""
        schema = self._output_schema
        bad: dict[int, PacketFunctionError] = {}
        for i, output in enumerate(outputs):
            if output is None:
                continue
            row_schema = schema if schema is not None else output.schema()  # type: ignore[union-attr]
            nullable = Schema({k: tp | None for k, tp in row_schema.items()})
            try:
                rows_to_table([_values(output)], nullable)
            except SchemaError as err:
                bad[i] = PacketFunctionError(
                    f"the function's output cannot be stored: {err}. Return values the "
                    "declared output type can hold (e.g. ints within int64, valid unicode "
                    "strings, decimals of at most 38 digits)"
                )
                bad[i].__cause__ = err
        return bad

    def _settle_conflicts(self, ids: list[str], values: pa.Table) -> list[str]:
        """``ids`` with each id already stored under a DIFFERENT output replaced by an id
        derived from the new output (so the new result is stored too, and is newer); an
        output identical to the stored one keeps its id (the write then adds nothing)."""
        stored = self._db.get_records_by_ids(self._path, ids, record_id_column=RECORD_ID)
        if stored is None:
            return ids
        keys = values.column_names
        new_digests = hash_rows(values).to_pylist()
        if all(k in stored.column_names for k in keys):
            old = pa.table([stored.column(k).cast(values.schema.field(k).type) for k in keys], keys)
            old_digests = hash_rows(old).to_pylist()
        else:  # a column the stored row lacks: the outputs differ
            old_digests = [None] * stored.num_rows
        position = {rid: i for i, rid in reversed(list(enumerate(ids)))}
        out = list(ids)
        for rid, old_digest in zip(stored.column(RECORD_ID).to_pylist(), old_digests, strict=True):
            i = position[rid]
            if new_digests[i] != old_digest:
                out[i] = output_record_id(rid, new_digests[i])
        return out

    def own_values(
        self,
        outputs: Sequence[Packet | OwnValues | None],
        variation: Mapping[str, str],
        execution: Mapping[str, str],
    ) -> list[Packet | OwnValues | None]:
        """``outputs`` with every packet whose (unresolved) source info would be this cache's
        own tokens replaced by its value dict: what ``store_many`` needs of it, without
        keeping the packet, its source info and its input alive until the write."""
        suffix = execution_digest(variation.get(CODE_HASH_KEY, ""), execution)
        derived = derivable(self._source_prefix, outputs, suffix)
        return [
            p._dict() if d and isinstance(p, Packet) else p
            for p, d in zip(outputs, derived, strict=True)
        ]

    # -- reading everything ----------------------------------------------------------------

    def get_all_records(self, include_system_columns: bool = False) -> pa.Table | None:
        """Every stored result (see the module docstring); None when there is none."""
        if include_system_columns:
            return self._db.get_all_records(self._path, record_id_column=PACKET_ID)
        table = self._db.get_all_records(self._path)
        if table is None:
            return None
        sources = [n for n in table.column_names if n.startswith(SOURCE_PREFIX)]
        if sources:
            computed = pc.is_valid(table.column(sources[0]))
            for s in sources[1:]:
                computed = pc.or_(computed, pc.is_valid(table.column(s)))
            table = table.filter(computed)
        names = [n for n in table.column_names if not n.startswith(META_PREFIX)]
        table = table.select(names)
        return table if table.num_rows else None


def _values(output: Packet | OwnValues | None) -> Mapping[str, Any]:
    if output is None:
        return _EMPTY
    return output if type(output) is dict else output._dict()  # type: ignore[union-attr]


def _newest_per_hash(table: pa.Table) -> pa.Table:
    """One row per input hash: the newest ``__pod_ts`` (ties: the larger record id)."""
    table = table.sort_by(
        [(INPUT_PACKET_HASH, "ascending"), (POD_TS, "descending"), (RECORD_ID, "descending")]
    )
    hashes = table.column(INPUT_PACKET_HASH).combine_chunks()
    if len(hashes) < 2:
        return table
    changed = pc.not_equal(hashes.slice(1), hashes.slice(0, len(hashes) - 1))
    return table.filter(pa.concat_arrays([pa.array([True], pa.bool_()), changed]))
