"""``ComputedColumns``: a function pod stream's computed outputs, kept column by column.

A lazy pod caches every computed row by position. Kept as objects (an output ``Packet`` and
its lazy source info per row) that cache is several objects per row that CPython's cyclic
garbage collector scans again on every full collection, which at 100k rows costs more than
the pod itself. Kept here instead as one Python list per output column (plain values: ints,
floats and strings are not tracked by the collector) plus, per row, a reference to where its
input came from; the stream makes a block-backed ``Packet`` (``orcapod.data.row_block``) when
a row is read, and a consumer that does not keep the rows leaves nothing behind per row.

Source info (``_source_<key>``) is resolved lazily and in bulk: the first read of a source
column hashes the inputs of every row not resolved yet — one vectorised ``hash_rows`` per input
block when the input rows are block-backed (a source's stream), else each input packet's own
hash — and turns them into record ids and tokens exactly as ``LazySourceInfo`` does (so the
two paths give the same provenance). Inputs are released once their row is resolved.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orcapod.data import Packet
from orcapod.data.row_block import RowBlock
from orcapod.functions.provenance import RecordIdMaker, result_record_ids
from orcapod.types import Schema
from orcapod.types.columns import BLOCK_SEP, SOURCE_PREFIX

__all__ = ["ComputedColumns"]


class ComputedColumns(Mapping[str, list[Any]]):
    """Output values (and lazily resolved source info) of computed rows (see the docstring)."""

    def __init__(self, schema: Schema, maker: RecordIdMaker) -> None:
        self.schema = schema
        self._keys = tuple(schema)
        self._values: dict[str, list[Any]] = {k: [] for k in self._keys}
        self._sources: dict[str, list[str]] = {SOURCE_PREFIX + k: [] for k in self._keys}
        self._maker = maker
        # per row: the input's block and row (or the input packet itself and -1); the input
        # schema of the first row, and of any row whose input has another one
        self._inputs: list[RowBlock | Packet | None] = []
        self._input_rows: list[int] = []
        self._input_schema: Schema | None = None
        self._other_schemas: dict[int, Schema] = {}
        self._appenders = [(k, self._values[k].append) for k in self._keys]
        self._resolved = 0
        self.contexts: list[str] = []
        self.block = RowBlock(
            self, schema=schema, source_info_columns={k: SOURCE_PREFIX + k for k in self._keys}
        )

    def append(self, data: Mapping[str, Any], packet: Packet) -> int:
        """Record the output ``data`` computed from input ``packet``; returns its row."""
        contexts = self.contexts
        row = len(contexts)
        for key, append in self._appenders:
            append(data[key])
        block = packet._block  # trusted fast paths of the data layer
        if block is not None:
            self._inputs.append(block)
            self._input_rows.append(packet._row)
        else:
            self._inputs.append(packet)
            self._input_rows.append(-1)
        schema = packet._schema
        if schema is not self._input_schema:
            if self._input_schema is None:
                self._input_schema = schema
            else:
                self._other_schemas[row] = schema
        contexts.append(packet._context_key)
        return row

    def packet(self, row: int) -> Packet:
        """The output packet of ``row`` (block-backed: values read on first access)."""
        return Packet._make_row(self.block, row, self.schema, context_key=self.contexts[row])

    @property
    def num_rows(self) -> int:
        return len(self.contexts)

    # Mapping of column name -> values (what the row block reads) -------------------------

    def __getitem__(self, name: str) -> list[Any]:
        column = self._values.get(name)
        if column is not None:
            return column
        sources = self._sources[name]
        if self._resolved < len(self.contexts):
            self._resolve()
        return sources

    def __iter__(self) -> Iterator[str]:
        yield from self._values
        yield from self._sources

    def __len__(self) -> int:
        return len(self._values) + len(self._sources)

    def _resolve(self) -> None:
        start, stop = self._resolved, len(self.contexts)
        names_of: dict[int, tuple[str, ...]] = {}
        hashes: list[str] = []
        for j in range(start, stop):
            source = self._inputs[j]
            if isinstance(source, RowBlock):
                schema = self._other_schemas.get(j, self._input_schema)
                assert schema is not None
                names = names_of.get(id(schema))
                if names is None:
                    names = names_of[id(schema)] = tuple(schema)
                digest = source.content_hash(names, self._input_rows[j])
                if digest is None:  # a block that cannot hash: the row's own hash
                    digest = Packet._make_row(source, self._input_rows[j], schema).content_hash()
            else:
                assert source is not None
                digest = source.content_hash()
            hashes.append(digest.to_string())
            self._inputs[j] = None  # no longer needed
        ids = result_record_ids(hashes, self._maker.suffix)
        prefix = self._maker.prefix
        for key in self._keys:
            tail = BLOCK_SEP + key
            self._sources[SOURCE_PREFIX + key].extend(prefix + rid + tail for rid in ids)
        self._resolved = stop
