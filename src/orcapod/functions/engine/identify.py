"""Identify: the engine's first phase - who each input row is, for the whole input at once.

* Input packet hash: ``hash_rows`` over the packet's data columns (the input already projected
  onto the function's parameters), written as the ``ContentHash`` string
  ``"arrow_row_v1:<32 hex>"`` — equal to ``packet.content_hash()`` of the same row (the data
  layer guarantees ``Packet.content_hash() == hash_rows`` row).
* Pipeline entry id: ``hash_rows`` over the user tag columns, the system tag columns and one
  ``__input_packet_hash`` column holding the input packet hash (its 16-byte digest), written
  the same way. Row ``i`` of the vectorised form equals the one-row form (``entry_id_of``)
  because ``hash_rows`` is row-local and logical (column order, string/large_string and
  integer widths do not matter). The entry id never includes a hash of the whole input or of
  the node's data, so adding rows leaves the old ids untouched; it includes the system tags,
  so identical user tags from different sources are different entries.

An input may have no user tag columns (the default of most sources): its entries differ by
their system tags, and ``InputPlan.tags`` then gives a table with no columns and one row per
row asked for (``take_columns``; Arrow's own ``take`` of a table with no columns has no rows),
so callers that add columns to it (the logs table) need no special case.

``InputPlan`` holds them for one input table (tags, system tags, packet columns and their
``_source_*`` columns), with the distinct entries (``codes`` / ``first_rows``, via
``orcapod.functions.engine.keys``). Id strings are made only for the rows that need them
(queries, records to write), never for the whole input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.data.conversion import column_to_pylist
from orcapod.data.row_block import RowBlock
from orcapod.functions.engine.keys import digest_keys, unique_keys_ordered
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD
from orcapod.types import ColumnConfig, Schema
from orcapod.types.columns import INPUT_PACKET_HASH, SYSTEM_TAG_PREFIX, source_column

__all__ = [
    "InputPlan",
    "PacketGroups",
    "digest_strings",
    "entry_digests",
    "entry_id_of",
    "entry_ids",
    "input_packet_hashes",
    "take_columns",
]

_HASH_PREFIX = ROW_HASH_METHOD + ":"
#: byte value -> its two hex digits as the little-endian uint16 of their ASCII codes
_HEX_PAIRS = np.array(
    [b"0123456789abcdef"[i >> 4] | (b"0123456789abcdef"[i & 15] << 8) for i in range(256)],
    dtype="<u2",
)


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
    out[:, len(prefix) :] = _HEX_PAIRS[raw].view(np.uint8)
    offsets = np.arange(0, (n + 1) * row, row, dtype=np.int64)
    # the numpy buffers are handed to Arrow as they are (no copy)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


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


_SLICE_ROWS = 16_384


class InputPlan:
    """Identity of every row of one input stream (see the module docstring)."""

    def __init__(self, stream: Any) -> None:
        tag_keys, packet_keys = stream.keys()
        table = stream.as_table(ColumnConfig(system_tags=True, source=True))
        self._identify(table, tag_keys, packet_keys)

    @classmethod
    def of_table(
        cls, table: pa.Table, tag_keys: Sequence[str], packet_keys: Sequence[str]
    ) -> InputPlan:
        """The plan of ``table`` (tags, system tags, packet columns and their ``_source_*``
        columns, as ``stream.as_table(ColumnConfig(system_tags=True, source=True))`` gives):
        e.g. one chunk of a larger input."""
        plan = cls.__new__(cls)
        plan._identify(table, tag_keys, packet_keys)
        return plan

    def _identify(
        self, table: pa.Table, tag_keys: Sequence[str], packet_keys: Sequence[str]
    ) -> None:
        names = table.column_names
        self.table: pa.Table = table
        self.tag_columns: tuple[str, ...] = tuple(tag_keys)
        self.system_tag_columns = tuple(c for c in names if c.startswith(SYSTEM_TAG_PREFIX))
        self.packet_columns: tuple[str, ...] = tuple(packet_keys)
        sources = tuple(source_column(c) for c in packet_keys if source_column(c) in names)
        #: what a pipeline record keeps of the input: tags, system tags, input source info
        self.record_columns = (*self.tag_columns, *self.system_tag_columns, *sources)
        self.input_digests: pa.Array = hash_rows(table.select(list(packet_keys)))
        self.entry_digests: pa.Array = entry_digests(
            table, (*self.tag_columns, *self.system_tag_columns), self.input_digests
        )
        #: per row: index of its distinct entry; per distinct entry: its first row; when
        #: every row is a distinct entry, the order sorting ``entry_keys`` on their first lane
        self.codes, self.first_rows, self.entry_order = unique_keys_ordered(
            digest_keys(self.entry_digests)
        )
        self._unique_ids: pa.Array | None = None

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def num_entries(self) -> int:
        return len(self.first_rows)

    @property
    def entry_keys(self) -> np.ndarray:
        """Keys of the distinct entries (aligned with ``first_rows``)."""
        return digest_keys(self.entry_digests.take(pa.array(self.first_rows, pa.int64())))

    @property
    def unique_ids(self) -> pa.Array:
        """Entry id strings of the distinct entries (aligned with ``first_rows``)."""
        if self._unique_ids is None:
            self._unique_ids = self.entry_ids(self.first_rows)
        return self._unique_ids

    def entry_ids(self, rows: np.ndarray | pa.Array) -> pa.Array:
        return digest_strings(self.entry_digests.take(_indices(rows)))

    def input_hashes(self, rows: np.ndarray | pa.Array) -> pa.Array:
        return digest_strings(self.input_digests.take(_indices(rows)))

    def tags(self, rows: np.ndarray | pa.Array, user_only: bool = False) -> pa.Table:
        """Tag (and, unless ``user_only``, system tag) columns of ``rows``."""
        names: Sequence[str] = self.tag_columns
        if not user_only:
            names = (*self.tag_columns, *self.system_tag_columns)
        return take_columns(self.table, names, _indices(rows))

    def packets(self, rows: np.ndarray, packet_schema: Schema) -> Iterator[Packet]:
        """Input packets of ``rows`` (data columns only), built a slice at a time.

        Each slice's values are converted column by column into one ``RowBlock`` and the
        packets are block-backed rows of it (a function reads its arguments straight from the
        block's columns). Their content hashes are not attached: the function does not need
        them and the output source info they would feed is built by the result cache from the
        stored record ids (``ResultCache.store_many``).
        """
        names = [c for c in self.packet_columns if c in packet_schema]
        schema = packet_schema.select(*names)
        make = Packet._make_row
        for columns, n in self.column_slices(rows, packet_schema):
            block = RowBlock(columns)
            for row in range(n):
                yield make(block, row, schema)

    def column_slices(
        self, rows: np.ndarray, packet_schema: Schema
    ) -> Iterator[tuple[dict[str, list[Any]], int]]:
        """The values of ``rows`` (data columns only) a slice at a time, as ``(column ->
        Python values, number of rows)``: what ``packets`` builds its packets from, for a
        caller that reads the values without a packet per row."""
        names = [c for c in self.packet_columns if c in packet_schema]
        schema = packet_schema.select(*names)
        for start in range(0, len(rows), _SLICE_ROWS):
            part = pa.array(rows[start : start + _SLICE_ROWS], pa.int64())
            sub = self.table.select(names).take(part)
            yield {c: column_to_pylist(sub.column(c), schema[c]) for c in names}, len(part)


class PacketGroups:
    """Entries grouped by their distinct input packet (``codes[i]``: packet of entry ``i``)."""

    def __init__(self, entries: np.ndarray, codes: np.ndarray, num_packets: int) -> None:
        self.entries = entries
        self.codes = codes
        self.num_packets = num_packets
        self._order = np.argsort(codes, kind="stable")
        self._bounds = np.searchsorted(codes[self._order], np.arange(num_packets + 1))

    def first_entries(self, packets: np.ndarray) -> np.ndarray:
        """One entry (the first) of each packet in ``packets``."""
        return self.entries[self._order[self._bounds[packets]]]

    def members(self, packets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every entry of the ``packets`` and, per entry, its position in ``packets``."""
        starts = self._bounds[packets]
        sizes = self._bounds[packets + 1] - starts
        if np.all(sizes == 1):
            return self.entries[self._order[starts]], np.arange(len(packets))
        owner = np.repeat(np.arange(len(packets)), sizes)
        within = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        return self.entries[self._order[starts[owner] + within]], owner


def take_columns(table: pa.Table, names: Sequence[str], rows: pa.Array) -> pa.Table:
    """The ``names`` columns of ``table`` at ``rows``: one row per index, also when ``names``
    is empty (Arrow's ``take`` of a table with no columns has no rows). Arrow's ``slice`` of
    a table with no columns does not clip its length: slice such a table within its rows."""
    if not names:
        return pa.table([pa.nulls(len(rows))], names=["_"]).drop_columns("_")
    return table.select(list(names)).take(rows)


def _indices(rows: np.ndarray | pa.Array) -> pa.Array:
    return rows if isinstance(rows, pa.Array) else pa.array(rows, type=pa.int64())
