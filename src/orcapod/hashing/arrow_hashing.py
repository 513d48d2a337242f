"""Logical hashing of Arrow tables: one digest per table and one digest per row.

Both hashers work on the canonical form from :mod:`orcapod.hashing.arrow_canonical` (read its
docstring for what counts as "the same values": chunking, large/view/dictionary/fixed-size
variants, integer and float widths and column order do not matter; names, logical types, row
order, nulls do; ``-0.0 == 0.0``; every NaN is equal). Columns are taken sorted by name;
duplicate column names are an error.

``hash_table`` (method ``arrow_v1``)
    Streams into one ``xxh3_128`` state: a version tag, a JSON header with the row count and the
    sorted ``[name, logical type]`` list, then per column its canonical buffers — a validity
    flag (plus the bit-packed mask when there are nulls), fixed-width values as little-endian
    64-bit words, offsets (from 0) and data bytes for strings/binary, offsets then the child
    for lists, the sorted fields for structs. Given the header every buffer length is
    determined, so the stream is unambiguous. ``xxh3_128`` rather than BLAKE2/SHA-256 because
    it hashes at memory speed (the canonical buffers are the whole table) and the digest is an
    identity for honest data, not a defence against crafted collisions; its 128 bits keep
    accidental collisions out of reach at any realistic number of tables.

``hash_rows`` (method ``arrow_row_v1``)
    One 16-byte digest per row: two independent 64-bit lanes (lane 0 then lane 1, each
    little-endian) computed with numpy over the canonical buffers, no Python loop per row. The
    algorithm (splitmix64 mixing, name/type-derived seeds, position-seeded sums for strings and
    lists, order-free sums over name-seeded columns) is documented in
    :mod:`orcapod.hashing.row_kernels`. Row ``i`` of ``hash_rows(t)`` equals
    ``hash_rows(t.slice(i, 1))[0]``, and ``row_hash`` wraps a one-row table's digest as a
    ``ContentHash``.

A ``pathlib.Path`` column (``PATH_STRUCT_TYPE``) is hashed by file content (see
``arrow_canonical``); a missing file raises ``HashingError``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash
from numpy.typing import NDArray

from orcapod.errors import HashingError, InputValidationError
from orcapod.hashing.arrow_canonical import (
    PATH_STRUCT_TYPE,
    Canon,
    canonical_column,
    column_descriptor,
    is_path_struct,
)
from orcapod.hashing.row_kernels import lanes, mix_rows, node_rows
from orcapod.types import ContentHash

__all__ = [
    "PATH_STRUCT_TYPE",
    "ROW_HASH_METHOD",
    "TABLE_HASH_METHOD",
    "digests_to_hex",
    "hash_rows",
    "hash_table",
    "is_path_struct",
    "row_hash",
]

TABLE_HASH_METHOD = "arrow_v1"
ROW_HASH_METHOD = "arrow_row_v1"


def _as_table(table: pa.Table | pa.RecordBatch) -> pa.Table:
    if isinstance(table, pa.Table):
        return table
    if isinstance(table, pa.RecordBatch):
        return pa.Table.from_batches([table])
    raise HashingError(
        f"expected a pyarrow Table or RecordBatch, got {type(table).__qualname__}; "
        "convert the data with pyarrow.table(...) first"
    )


def _sorted_names(table: pa.Table) -> list[str]:
    names: list[str] = list(table.column_names)
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise HashingError(
            f"cannot hash a table with duplicate column names {dupes}; rename the columns so "
            "each name is unique"
        )
    return sorted(names)


def _schema_header(table: pa.Table, names: list[str]) -> tuple[list[Any], bytes]:
    columns = [[name, column_descriptor(table.schema.field(name).type, name)] for name in names]
    text = json.dumps(
        {"rows": table.num_rows, "columns": columns},
        separators=(",", ":"),
        ensure_ascii=True,
        sort_keys=True,
    )
    return columns, text.encode("ascii")


# --- hash_table -------------------------------------------------------------------------------


def hash_table(table: pa.Table | pa.RecordBatch) -> ContentHash:
    """Logical content hash of a whole table (method ``arrow_v1``); see the module docstring."""
    t = _as_table(table)
    names = _sorted_names(t)
    _, header = _schema_header(t, names)
    hasher = xxhash.xxh3_128()
    hasher.update(b"orcapod.arrow_v1\0")
    hasher.update(len(header).to_bytes(8, "little"))
    hasher.update(header)
    for name in names:
        _feed(hasher, canonical_column(t.column(name), name))
    return ContentHash(TABLE_HASH_METHOD, hasher.digest())


def _le_bytes(a: NDArray[Any]) -> memoryview:
    little = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).reshape(-1)
    return little.view(np.uint8).data


def _feed(hasher: Any, c: Canon) -> None:
    if c.valid is None:
        hasher.update(b"\0")
    else:
        hasher.update(b"\1")
        hasher.update(np.packbits(c.valid, bitorder="little").tobytes())
    if c.kind == "fixed":
        assert c.words is not None
        hasher.update(_le_bytes(c.words))
    elif c.kind == "bytes":
        assert c.offsets is not None and c.data is not None
        hasher.update(_le_bytes(c.offsets))
        hasher.update(np.ascontiguousarray(c.data).data)
    elif c.kind == "list":
        assert c.offsets is not None
        hasher.update(_le_bytes(c.offsets))
        _feed(hasher, c.children[0][1])
    elif c.kind == "struct":
        for _, child in c.children:
            _feed(hasher, child)


# --- hash_rows --------------------------------------------------------------------------------


def hash_rows(table: pa.Table | pa.RecordBatch) -> pa.FixedSizeBinaryArray:
    """One 16-byte logical digest per row (method ``arrow_row_v1``), vectorised over buffers."""
    t = _as_table(table)
    n = t.num_rows
    names = _sorted_names(t)
    _, header = _schema_header(t.slice(0, 0), names)  # row count excluded: per-row identity
    if n == 0:
        return pa.array([], type=pa.binary(16))
    acc = np.zeros((2, n), dtype=np.uint64)
    for name in names:
        column = t.column(name)
        descriptor = json.dumps([name, column_descriptor(column.type, name)], ensure_ascii=True)
        seed = xxhash.xxh3_128(b"orcapod.arrow_row_v1.column\0" + descriptor.encode()).digest()
        acc += node_rows(canonical_column(column, name), seed)
    acc ^= lanes(xxhash.xxh3_128(b"orcapod.arrow_row_v1.table\0" + header).digest())
    mix_rows(acc)
    digests = np.ascontiguousarray(acc.T, dtype="<u8")  # row-major: lane 0, lane 1 per row
    return pa.Array.from_buffers(pa.binary(16), n, [None, pa.py_buffer(digests)])


def row_hash(table: pa.Table | pa.RecordBatch) -> ContentHash:
    """``ContentHash(ROW_HASH_METHOD, …)`` of a one-row table; equals its ``hash_rows`` entry."""
    t = _as_table(table)
    if t.num_rows != 1:
        raise InputValidationError(
            f"row_hash needs a table with exactly one row, got {t.num_rows}; use hash_rows "
            "for many rows"
        )
    return ContentHash(ROW_HASH_METHOD, hash_rows(t)[0].as_py())


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def digests_to_hex(digests: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Lower-case hex strings (``large_string``) of fixed-size binary digests, vectorised."""
    if isinstance(digests, pa.ChunkedArray):
        digests = digests.combine_chunks()
    n = len(digests)
    width = digests.type.byte_width
    buffer = digests.buffers()[1]
    raw = np.frombuffer(buffer, dtype=np.uint8) if buffer is not None else np.empty(0, np.uint8)
    raw = raw[digests.offset * width : (digests.offset + n) * width]
    out = np.empty(raw.size * 2, dtype=np.uint8)
    out[0::2] = _HEX_DIGITS[raw >> 4]
    out[1::2] = _HEX_DIGITS[raw & 0x0F]
    offsets = np.arange(0, (n + 1) * 2 * width, 2 * width, dtype=np.int64)
    return pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes())
    )
