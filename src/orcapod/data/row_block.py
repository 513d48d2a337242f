"""``RowBlock``: the values of a run of rows, column by column, shared by their datagrams.

Streams yield one ``Tag`` and one ``Packet`` per row, and users and caches keep millions of
them. Every object a row keeps alive is one more object CPython's cyclic garbage collector
scans on each full collection (and full collections come more often the more objects
survive), so a row built from five small dicts costs several times its own construction in
collector time. A block-backed datagram instead holds only ``(block, row)``: its value dict,
system tags and source info are built from the block's column lists on first access (and
kept), and a packet's content hash comes from one vectorised ``hash_rows`` of the block's Arrow
slice, computed the first time any row of the block needs it.

A block covers one slice of a stream's table: ``columns`` maps stored column names to Python
values (as ``column_to_pylist`` gives them, so types match the declared schema), ``table`` is
the Arrow slice itself (used only for vectorised hashing), ``system_tag_columns`` lists the
``_tag_*`` columns and ``source_info_columns`` maps each packet column to its
``_source_<col>`` column. A block without an Arrow slice (a function pod's computed outputs)
gives ``schema`` instead and is hashed from its columns with the same conversion as a single
row (``columns_to_table``). Such a block may grow (rows are appended as they are computed):
hashes are computed for the rows not hashed yet and appended — a row's hash does not depend on
the other rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from orcapod.data.conversion import columns_to_table
from orcapod.hashing import hash_rows
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD
from orcapod.types import ContentHash, Schema

__all__ = ["BlockMeta", "RowBlock"]


class RowBlock:
    """Column-wise values of consecutive rows (see the module docstring)."""

    __slots__ = (
        "_digests",
        "_meta_values",
        "columns",
        "meta_columns",
        "schema",
        "source_info_columns",
        "system_tag_columns",
        "table",
    )

    def __init__(
        self,
        columns: Mapping[str, Sequence[Any]],
        *,
        table: pa.Table | None = None,
        schema: Schema | None = None,
        system_tag_columns: Sequence[str] = (),
        source_info_columns: Mapping[str, str] | None = None,
        meta_columns: Sequence[str] = (),
    ) -> None:
        self.columns = columns
        self.table = table
        self.schema = schema
        self.system_tag_columns = tuple(system_tag_columns)
        self.source_info_columns = dict(source_info_columns or {})
        self._digests: dict[tuple[str, ...], list[bytes]] = {}
        #: meta (``__*``) columns of ``table``, converted to Python on first access
        self.meta_columns = tuple(meta_columns)
        self._meta_values: dict[str, list[Any]] = {}

    def meta_value(self, name: str, row: int) -> Any:
        """Meta column ``name`` of ``row`` (the whole column is converted once, when a row of
        the block first asks for it)."""
        values = self._meta_values.get(name)
        if values is None:
            assert self.table is not None
            values = self._meta_values[name] = self.table.column(name).to_pylist()
        return values[row]

    def values(self, names: Any, row: int) -> dict[str, Any]:
        """``{name: value}`` of ``row`` for the data columns ``names``."""
        columns = self.columns
        return {n: columns[n][row] for n in names}

    def system_tags(self, row: int) -> dict[str, Any]:
        """System-tag columns of ``row`` by full name (``_tag_…``)."""
        columns = self.columns
        return {n: columns[n][row] for n in self.system_tag_columns}

    def source_info(self, row: int) -> dict[str, Any]:
        """``{packet column: source info}`` of ``row`` (columns with stored source info)."""
        columns = self.columns
        return {k: columns[c][row] for k, c in self.source_info_columns.items()}

    def content_hash(self, names: tuple[str, ...], row: int) -> ContentHash | None:
        """Hash of ``row``'s data columns ``names`` (equal to hashing that row alone), from one
        vectorised hash of the block's rows not hashed yet; None when the block can't say
        (no Arrow slice and no schema covering ``names``)."""
        digests = self._digests.get(names)
        if digests is None or row >= len(digests):
            part = self._arrow(names, 0 if digests is None else len(digests))
            if part is None:
                return None
            if digests is None:
                digests = self._digests[names] = []
            digests.extend(hash_rows(part).to_pylist())  # in place: a growing block stays O(n)
        return ContentHash(ROW_HASH_METHOD, digests[row])

    def _arrow(self, names: tuple[str, ...], start: int) -> pa.Table | None:
        if self.table is not None:
            return self.table.select(list(names)).slice(start)
        schema = self.schema
        if schema is None or any(n not in schema for n in names):
            return None
        columns = self.columns
        return columns_to_table({n: columns[n][start:] for n in names}, schema.select(*names))


class BlockMeta(Mapping[str, Any]):
    """The meta values of one row of a block, read from the block when first asked for: a
    row whose meta nobody reads costs one small object, not a dict of converted values."""

    __slots__ = ("_block", "_row")

    def __init__(self, block: RowBlock, row: int) -> None:
        self._block = block
        self._row = row

    def __getitem__(self, name: str) -> Any:
        if name not in self._block.meta_columns:
            raise KeyError(name)
        return self._block.meta_value(name, self._row)

    def __iter__(self) -> Iterator[str]:
        return iter(self._block.meta_columns)

    def __len__(self) -> int:
        return len(self._block.meta_columns)
