"""Vectorised identities and record tables of a ``FunctionNode`` (no Python loop per row).

* Input packet hash: ``hash_rows`` over the packet's data columns, written as the
  ``ContentHash`` string ``"arrow_row_v1:<32 hex>"`` — equal to ``packet.content_hash()``
  of the same row (the data layer guarantees ``Packet.content_hash() == hash_rows`` row).
* Pipeline entry id: ``hash_rows`` over the user tag columns, the system tag columns and one
  ``__input_packet_hash`` column holding the input packet hash (its 16-byte digest), written
  the same way. Row ``i`` of the
  vectorised form equals the one-row form (``entry_id_of``) because ``hash_rows`` is
  row-local and logical (column order, string/large_string and integer widths do not matter).
  The entry id never includes a hash of the whole input or of the node's data, so adding rows
  leaves the old ids untouched; it includes the system tags, so identical user tags from
  different sources are different entries.
* Pipeline record: the tag, system tags and the input packet's ``_source_*`` columns (never its
  data), ``__packet_id`` (the result record id, null for a filtered row), ``__input_packet_hash``
  and ``__computed``; keyed by ``__pipeline_entry_id``.
* Failure record: one row per failed attempt (tag and system tag columns, entry id, input
  hash, exception type, message, traceback, UTC time), keyed by ``<entry id>@<time µs>``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD
from orcapod.nodes.keys import match_keys, string_keys
from orcapod.types import ColumnConfig
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
)

__all__ = [
    "FILTER_LIMIT",
    "digest_strings",
    "entry_id_of",
    "entry_ids",
    "failure_table",
    "entry_digests",
    "fetch_matching",
    "input_packet_hashes",
    "pipeline_record_table",
    "utc_now",
]


#: id lookups up to this size are pushed-down filtered queries; larger ones projected scans
FILTER_LIMIT = 4096

_HASH_PREFIX = ROW_HASH_METHOD + ":"
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def digest_strings(digests: pa.Array) -> pa.Array:
    """``"arrow_row_v1:<hex>"`` large strings for 16-byte digests (numpy, no Python loop)."""
    if isinstance(digests, pa.ChunkedArray):
        digests = digests.combine_chunks()
    n = len(digests)
    width = digests.type.byte_width
    raw = np.frombuffer(digests.buffers()[1], dtype=np.uint8)[
        digests.offset * width : (digests.offset + n) * width
    ].reshape(n, width)
    prefix = np.frombuffer(_HASH_PREFIX.encode(), dtype=np.uint8)
    row = len(prefix) + 2 * width
    out = np.empty((n, row), dtype=np.uint8)
    out[:, : len(prefix)] = prefix
    out[:, len(prefix) :: 2] = _HEX[raw >> 4]
    out[:, len(prefix) + 1 :: 2] = _HEX[raw & 0x0F]
    offsets = np.arange(0, (n + 1) * row, row, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes())
    )


def input_packet_hashes(table: pa.Table, packet_columns: Sequence[str]) -> pa.Array:
    """The input packet hash string of every row (data columns only)."""
    return digest_strings(hash_rows(table.select(list(packet_columns))))


def entry_digests(table: pa.Table, tag_columns: Sequence[str], input_digests: pa.Array) -> pa.Array:
    """16-byte pipeline entry id of every row: hash of (tag + system tags + input hash).

    ``tag_columns`` are the user tag columns AND the system tag columns of ``table``;
    ``input_digests`` the rows' 16-byte input packet hashes.
    """
    keyed = table.select(list(tag_columns)).append_column(INPUT_PACKET_HASH, input_digests)
    return hash_rows(keyed)


def entry_ids(table: pa.Table, tag_columns: Sequence[str], input_digests: pa.Array) -> pa.Array:
    """Pipeline entry id strings of every row (see :func:`entry_digests`)."""
    return digest_strings(entry_digests(table, tag_columns, input_digests))


def entry_id_of(tag: Tag, packet: Packet) -> str:
    """The one-row form of :func:`entry_ids` (identical result for the same row)."""
    tag_table = tag.as_table(ColumnConfig(system_tags=True))
    digest = pa.array([packet.content_hash().digest], type=pa.binary(16))
    return str(entry_ids(tag_table, tag_table.column_names, digest)[0].as_py())


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
    return table.append_column(
        pa.field(COMPUTED, pa.bool_(), nullable=False),
        pa.array(np.full(n, computed, dtype=bool), type=pa.bool_()),
    )


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

    ``keys`` are the wanted ids as keys (``orcapod.nodes.keys``); ``ids()`` gives them as
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
        table = table.take(pa.array(found))
    return table, which[found]


def utc_now() -> datetime:
    return datetime.now(UTC)
