"""``InputPlan``: a node's current input, identified row by row, computed once.

Built vectorised from the input table (tags, system tags, packet columns and their
``_source_*`` columns): the 16-byte input packet hash and pipeline entry id of every row (see
``orcapod.nodes.records``), the distinct entries (``codes`` / ``first_rows``, via
``orcapod.nodes.keys``). Id strings are made only for the rows that need them (queries,
records to write), never for the whole input.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data import Packet
from orcapod.data.conversion import column_to_pylist
from orcapod.hashing import hash_rows
from orcapod.nodes.keys import digest_keys, unique_keys
from orcapod.nodes.records import digest_strings, entry_digests
from orcapod.types import ColumnConfig, Schema
from orcapod.types.columns import SYSTEM_TAG_PREFIX, source_column

__all__ = ["InputPlan", "PacketGroups"]

_SLICE_ROWS = 16_384


class InputPlan:
    """Identity of every row of one input stream (see the module docstring)."""

    def __init__(self, stream: Any) -> None:
        tag_keys, packet_keys = stream.keys()
        table = stream.as_table(ColumnConfig(system_tags=True, source=True))
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
        #: per row: index of its distinct entry; per distinct entry: its first row
        self.codes, self.first_rows = unique_keys(digest_keys(self.entry_digests))
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
        return digest_keys(self.entry_digests.take(pa.array(self.first_rows)))

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
        return self.table.select(list(names)).take(_indices(rows))

    def packets(self, rows: np.ndarray, packet_schema: Schema) -> Iterator[Packet]:
        """Input packets of ``rows`` (data columns only), built a slice at a time.

        Their content hashes are not attached: the function does not need them and the output
        source info they would feed is built by the result cache from the stored record ids
        (``ResultCache.store_many``), so a per-row hash object would be pure overhead.
        """
        names = [c for c in self.packet_columns if c in packet_schema]
        schema = packet_schema.select(*names)
        make = Packet._make
        for start in range(0, len(rows), _SLICE_ROWS):
            part = pa.array(rows[start : start + _SLICE_ROWS])
            sub = self.table.select(names).take(part)
            columns = [column_to_pylist(sub.column(c), schema[c]) for c in names]
            if len(names) == 1:
                (name,) = names
                for value in columns[0]:
                    yield make({name: value}, schema)
            else:
                for values in zip(*columns, strict=True):
                    yield make(dict(zip(names, values, strict=True)), schema)


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


def _indices(rows: np.ndarray | pa.Array) -> pa.Array:
    return rows if isinstance(rows, pa.Array) else pa.array(rows, type=pa.int64())
