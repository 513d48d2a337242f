"""Record tables of a ``FunctionNode`` and its reads of them (no Python loop per row).

Row identities (input packet hash, pipeline entry id) are computed by the engine's identify
phase (``orcapod.functions.engine.identify``).

* Pipeline record: the tag, system tags and the input packet's ``_source_*`` columns (never its
  data), ``__packet_id`` (the result record id, null for a filtered row), ``__input_packet_hash``,
  ``__computed`` and ``__recorded_at`` (UTC time of the write); keyed by
  ``__pipeline_entry_id``. A tag whose input changed has a record per input: the newest
  ``__recorded_at`` among the records of a tag (user tags and system tags) is its current one.
* Failure record: one row per failed attempt (tag and system tag columns, entry id, input
  hash, exception type, message, traceback, UTC time), keyed by ``<entry id>@<time µs>``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases import ArrowDatabase
from orcapod.functions.engine.keys import match_keys, string_keys
from orcapod.types.columns import (
    COMPUTED,
    ERROR_MESSAGE,
    ERROR_TIME,
    ERROR_TRACEBACK,
    ERROR_TYPE,
    FAILURE_ID,
    INPUT_PACKET_HASH,
    PACKET_ID,
    PIPELINE_ENTRY_ID,
    RECORDED_AT,
)

__all__ = [
    "FILTER_LIMIT",
    "failure_table",
    "fetch_matching",
    "pipeline_record_table",
    "utc_now",
]


#: id lookups up to this size are pushed-down filtered queries; larger ones projected scans
FILTER_LIMIT = 4096


def pipeline_record_table(
    input_table: pa.Table,
    rows: pa.Array | np.ndarray,
    keep_columns: Sequence[str],
    ids: pa.Array,
    input_hashes: pa.Array,
    packet_ids: pa.Array,
    computed: bool,
) -> pa.Table:
    """Pipeline records for ``rows`` of ``input_table``.

    ``keep_columns`` are the tag, system tag and input ``_source_*`` columns (never data);
    ``ids``, ``input_hashes`` and ``packet_ids`` are already aligned with ``rows``.
    """
    table = input_table.select(list(keep_columns)).take(rows)
    n = table.num_rows
    table = table.append_column(pa.field(PIPELINE_ENTRY_ID, pa.large_string(), nullable=False), ids)
    table = table.append_column(pa.field(PACKET_ID, pa.large_string()), packet_ids)
    table = table.append_column(
        pa.field(INPUT_PACKET_HASH, pa.large_string(), nullable=False), input_hashes
    )
    table = table.append_column(
        pa.field(COMPUTED, pa.bool_(), nullable=False),
        pa.array(np.full(n, computed, dtype=bool), type=pa.bool_()),
    )
    stamp = pa.scalar(utc_now(), pa.timestamp("us", tz="UTC"))
    return table.append_column(pa.field(RECORDED_AT, stamp.type), pa.repeat(stamp, n))


def failure_table(
    tags: pa.Table,
    ids: pa.Array,
    input_hash: str,
    error: BaseException | None,
    when: datetime,
) -> pa.Table:
    """Failure records of the rows of ``tags`` (tag + system tag columns) with entry ids
    ``ids``, which all failed with ``error`` on the packet ``input_hash``."""
    n = tags.num_rows
    string = pa.large_string()
    if error is None:
        kind = message = trace = ""
    else:
        kind = f"{type(error).__module__}.{type(error).__qualname__}"
        message = str(error)
        trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = int(when.timestamp() * 1_000_000)
    failure_ids = pc.binary_join_element_wise(
        ids, pa.scalar(f"@{stamp}", string), pa.scalar("", string)
    )
    columns = {
        **{name: tags.column(name) for name in tags.column_names},
        FAILURE_ID: failure_ids,
        PIPELINE_ENTRY_ID: ids,
        INPUT_PACKET_HASH: pa.array([input_hash] * n, string),
        ERROR_TYPE: pa.array([kind] * n, string),
        ERROR_MESSAGE: pa.array([message] * n, string),
        ERROR_TRACEBACK: pa.array([trace] * n, string),
        ERROR_TIME: pa.array([when] * n, pa.timestamp("us", tz="UTC")),
    }
    return pa.table(columns)


def fetch_matching(
    db: ArrowDatabase,
    path: Sequence[str],
    id_column: str,
    keys: np.ndarray,
    ids: Callable[[], pa.Array],
    columns: Sequence[str] | None,
    *,
    id_is_record_id: bool = True,
) -> tuple[pa.Table, np.ndarray] | None:
    """Stored rows of ``path`` whose ``id_column`` is one of the wanted ids, and per returned
    row the index of its id among the wanted ones; None when no row matches.

    ``keys`` are the wanted ids as keys (``orcapod.functions.engine.keys``); ``ids()`` gives them as
    strings, called only for a pushed-down query. ``id_is_record_id``: ``id_column`` names the
    record id (read back under that name); otherwise it is an ordinary stored column.
    ``columns`` projects the read (None: every column). Up to ``FILTER_LIMIT`` ids are one
    filtered query; more are one projected scan matched in numpy (a huge ``IN`` list is far
    slower than reading the projected columns).
    """
    if len(keys) == 0:
        return None
    record_id_column = id_column if id_is_record_id else None
    projection = None if columns is None else [c for c in columns if c != id_column]
    if projection is not None and not id_is_record_id:
        projection.append(id_column)
    constraints: dict[str, object] = {}
    if len(keys) <= FILTER_LIMIT:
        constraints = {id_column: ids().to_pylist()}
    table = db.get_records_with_column_value(
        path, constraints, record_id_column=record_id_column, columns=projection
    )
    if table is None:
        return None
    which = match_keys(string_keys(table.column(id_column)), keys)
    found = np.flatnonzero(which >= 0)
    if len(found) == 0:
        return None
    if len(found) < table.num_rows:
        table = table.take(pa.array(found, pa.int64()))
    return table, which[found]


def utc_now() -> datetime:
    return datetime.now(UTC)
