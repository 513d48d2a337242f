"""``ArrowTableStream``: an immutable stream over one Arrow table.

The table holds every column of the stream: user tag columns, system tags (``_tag_*``),
packet columns, their source info (``_source_<col>``), packet meta columns (``__*``) and
optionally ``_context_key``. Views choose which hidden columns to show (``ColumnConfig``).

Iteration converts the table to Python a slice at a time (global row offsets, so multi-chunk
tables are handled correctly) into one ``RowBlock`` per slice, and yields block-backed
``Tag``/``Packet`` objects (shared schemas; values, system tags, source info and packet hashes
are read from the block when first needed — see ``orcapod.data.row_block``: a row keeps two
small objects alive, not five dicts). Nothing per row is cached by the stream, so
re-iteration is always correct and the stream itself holds no rows.

Identity without a producer: the content hash covers the whole table (hidden columns
included) and the tag columns; the pipeline hash covers only ``(tag_schema, packet_schema)``.
Streams made by operators pass their own identity (``identity=``/``pipeline_identity=``).
With a ``producer`` (and ``upstreams``) and no explicit identity, the stream is identified as
that producer applied to those upstreams: the content hash combines the producer's and the
upstreams' content hashes (in order), the pipeline hash their pipeline hashes.

``source_info={col: token}`` sets the provenance of packet column ``col`` to the constant
``token`` on every row (a ``None`` token leaves the column's provenance as it is).
``data_context`` is the context rows are made under when the table has no ``_context_key``
column (default: the default context).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import repeat
from types import MappingProxyType
from typing import Any

import pyarrow as pa

from orcapod._lazy import pc
from orcapod.contexts import DataContext, resolve_context_key
from orcapod.data import Packet, Tag
from orcapod.data.conversion import column_to_pylist, table_schema
from orcapod.data.row_block import BlockMeta, RowBlock
from orcapod.errors import InputValidationError
from orcapod.hashing import hash_object, hash_rows, hash_table
from orcapod.hashing.arrow_hashing import ROW_HASH_METHOD, digests_to_hex
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import (
    CONTEXT_KEY,
    DATAGRAM_PREFIX,
    DEFAULT_CONTEXT_KEY,
    META_PREFIX,
    SOURCE_PREFIX,
    SYSTEM_TAG_PREFIX,
)

__all__ = ["ArrowTableStream"]

_SLICE_ROWS = 16_384
_NO_META: Mapping[str, Any] = MappingProxyType({})


class ArrowTableStream(StreamBase):
    """A stream backed by one Arrow table.

    ``tag_columns`` name the user tag columns; every other non-hidden column is a packet
    column. ``system_tag_columns`` are renamed to ``_tag_<name>``. ``schemas`` fixes the
    (tag, packet) Python schemas when the producer knows them better than the data can tell
    (e.g. an operator's predicted ``T | None`` for a column whose nulls were all filtered out).
    """

    def __init__(
        self,
        table: pa.Table | pa.RecordBatch,
        tag_columns: Iterable[str] = (),
        system_tag_columns: Iterable[str] = (),
        source_info: Mapping[str, str | None] | None = None,
        producer: Any = None,
        upstreams: Iterable[Any] = (),
        *,
        data_context: str | DataContext | None = None,
        identity: ContentHash | None = None,
        pipeline_identity: ContentHash | None = None,
        label: str | None = None,
        schemas: tuple[Schema, Schema] | None = None,
    ) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise InputValidationError(
                f"ArrowTableStream needs a pyarrow Table, got {type(table).__name__}"
            )
        names = table.column_names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputValidationError(f"duplicate column names {dupes}; make them unique")
        tag_columns = [tag_columns] if isinstance(tag_columns, str) else list(tag_columns)
        missing = [c for c in tag_columns if c not in names]
        if missing:
            raise InputValidationError(
                f"tag columns {missing} are not in the table (columns: {names})"
            )
        renames = {c: SYSTEM_TAG_PREFIX + c for c in system_tag_columns}
        if renames:
            table = table.rename_columns([renames.get(n, n) for n in names])
            names = table.column_names
        self._table = table
        self._tag_cols = tuple(tag_columns)
        self._sys_cols = tuple(n for n in names if n.startswith(SYSTEM_TAG_PREFIX))
        self._meta_cols = tuple(n for n in names if n.startswith(META_PREFIX))
        self._has_context = CONTEXT_KEY in names
        source_cols = {n[len(SOURCE_PREFIX) :]: n for n in names if n.startswith(SOURCE_PREFIX)}
        self._packet_cols = tuple(
            n for n in names if not n.startswith(DATAGRAM_PREFIX) and n not in self._tag_cols
        )
        bad = [
            n
            for n in names
            if n.startswith(DATAGRAM_PREFIX)
            and n not in self._sys_cols
            and n not in self._meta_cols
            and n != CONTEXT_KEY
            and not n.startswith(SOURCE_PREFIX)
        ]
        bad += [n for n in self._tag_cols if n.startswith(DATAGRAM_PREFIX)]
        if bad:
            raise InputValidationError(
                f"columns {bad} start with '_', which is reserved for orcapod's hidden "
                "columns; rename them"
            )
        stray = [s for c, s in source_cols.items() if c not in self._packet_cols]
        if stray:
            raise InputValidationError(f"source-info columns {stray} have no packet column")
        if not self._packet_cols:
            raise InputValidationError(
                "a stream needs at least one packet (non-tag) column; "
                f"all columns {list(self._tag_cols)} are tags"
            )
        if source_info:
            table, source_cols = _with_source_info(table, source_info, self._packet_cols)
            self._table = table
        self._source_cols = {c: source_cols[c] for c in self._packet_cols if c in source_cols}
        self._producer = producer
        self._upstreams = tuple(upstreams)
        self._context_key = (
            DEFAULT_CONTEXT_KEY if data_context is None else resolve_context_key(data_context)
        )
        self._identity = identity
        self._pipeline_identity = pipeline_identity
        self.label = label
        self._schemas: tuple[Schema, Schema] | None = schemas
        self._content_hash: ContentHash | None = None
        self._pipeline_hash: ContentHash | None = None
        self._row_hashes: pa.Array | None = None

    # Provenance of the stream object --------------------------------------------------------
    @property
    def producer(self) -> Any:
        return self._producer

    @property
    def upstreams(self) -> tuple[Any, ...]:
        return self._upstreams

    @property
    def data_context_key(self) -> str:
        return self._context_key

    # Shape ---------------------------------------------------------------------------------
    @property
    def num_rows(self) -> int:
        return int(self._table.num_rows)

    def __len__(self) -> int:
        return self.num_rows

    def __repr__(self) -> str:
        tags, packets = self.keys()
        return f"ArrowTableStream(rows={self.num_rows}, tags={tags}, packets={packets})"

    def _user_schemas(self) -> tuple[Schema, Schema]:
        if self._schemas is None:
            full = table_schema(self._table.select([*self._tag_cols, *self._packet_cols]))
            self._schemas = (full.select(*self._tag_cols), full.select(*self._packet_cols))
        return self._schemas

    def _hidden_tag_cols(self, config: ColumnConfig) -> list[str]:
        return list(self._sys_cols) if config.system_tags else []

    def _hidden_packet_cols(self, config: ColumnConfig) -> list[str]:
        cols: list[str] = []
        if config.source:
            cols += [self._source_cols[c] for c in self._packet_cols if c in self._source_cols]
        if config.meta:
            cols += [c for c in self._meta_cols if config.includes_meta(c)]
        if config.context and self._has_context:
            cols.append(CONTEXT_KEY)
        return cols

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        config = ColumnConfig.handle_config(columns, all_info)
        tags = (*self._tag_cols, *self._hidden_tag_cols(config))
        packets = [*self._packet_cols, *self._hidden_packet_cols(config)]
        if config.source:  # every packet column has source info, even if unknown (null)
            packets += [SOURCE_PREFIX + c for c in self._packet_cols if c not in self._source_cols]
        if config.context and not self._has_context:
            packets.append(CONTEXT_KEY)
        hash_col = config.content_hash_column()
        if hash_col is not None:
            packets.append(hash_col)
        return tags, tuple(packets)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        """Tag and packet schemas; hidden columns are typed from the table's schema, never by
        computing them (the content-hash column is ``str``)."""
        config = ColumnConfig.handle_config(columns, all_info)
        tag_schema, packet_schema = self._user_schemas()
        if config == ColumnConfig():
            return tag_schema, packet_schema
        tag_keys, packet_keys = self.keys(config)
        stored = [
            n
            for n in (*tag_keys, *packet_keys)
            if n in self._table.column_names and n not in tag_schema and n not in packet_schema
        ]  # (the user columns' types are known: only the hidden ones are read from the data)
        hidden = table_schema(self._table.select(stored))

        def typed(keys: tuple[str, ...], user: Schema) -> Schema:
            fields: dict[str, Any] = {}
            for k in keys:
                if k in user:
                    fields[k] = user[k]
                elif k in hidden:
                    fields[k] = hidden[k]
                elif k.startswith(SOURCE_PREFIX):
                    fields[k] = str | None  # unknown provenance of a column without source info
                else:
                    fields[k] = str  # the context key / content-hash columns
            return Schema(fields)

        return typed(tag_keys, tag_schema), typed(packet_keys, packet_schema)

    # Data ----------------------------------------------------------------------------------
    @property
    def table(self) -> pa.Table:
        """The underlying table with every column (hidden ones included)."""
        return self._table

    def packet_hashes(self) -> pa.Array:
        """Vectorised content hash of every row's packet data columns (16-byte digests)."""
        if self._row_hashes is None:
            self._row_hashes = hash_rows(self._table.select(list(self._packet_cols)))
        return self._row_hashes

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        config = ColumnConfig.handle_config(columns, all_info)
        names = [
            *self._tag_cols,
            *self._hidden_tag_cols(config),
            *self._packet_cols,
            *self._hidden_packet_cols(config),
        ]
        table = self._table.select(names)
        n = table.num_rows
        if config.source:
            for c in self._packet_cols:
                if c not in self._source_cols:
                    table = table.append_column(
                        SOURCE_PREFIX + c, pa.nulls(n, type=pa.large_string())
                    )
        if config.context and not self._has_context:
            table = table.append_column(
                CONTEXT_KEY, pa.array([self._context_key] * n, type=pa.large_string())
            )
        hash_col = config.content_hash_column()
        if hash_col is not None:
            hexes = pc.binary_join_element_wise(
                pa.scalar(ROW_HASH_METHOD + ":", pa.large_string()),
                digests_to_hex(self.packet_hashes()),
                pa.scalar("", pa.large_string()),
            )
            table = table.append_column(hash_col, hexes)
        if config.sort_by_tags and self._tag_cols:
            try:
                table = table.sort_by([(c, "ascending") for c in self._tag_cols])
            except (pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
                types = {c: str(self._table.schema.field(c).type) for c in self._tag_cols}
                raise InputValidationError(
                    f"cannot sort by tag columns {types}: {err}; sort_by_tags needs orderable "
                    "tag types (not lists, structs or maps) - leave sort_by_tags off"
                ) from err
        return table

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        tag_schema, packet_schema = self._user_schemas()
        table = self._table
        tag_cols, sys_cols, pkt_cols = self._tag_cols, self._sys_cols, self._packet_cols
        source_cols = self._source_cols
        meta_cols = self._meta_cols
        make_tag, make_packet = Tag._make_row, Packet._make_row
        for start in range(0, table.num_rows, _SLICE_ROWS):
            part = table.slice(start, _SLICE_ROWS)
            n = part.num_rows
            columns: dict[str, list[Any]] = {}
            for c in tag_cols:
                columns[c] = column_to_pylist(part.column(c), tag_schema[c])
            for c in pkt_cols:
                columns[c] = column_to_pylist(part.column(c), packet_schema[c])
            for c in (*sys_cols, *source_cols.values()):
                columns[c] = part.column(c).to_pylist()
            block = RowBlock(
                columns,
                table=part,
                system_tag_columns=sys_cols,
                source_info_columns=source_cols,
                meta_columns=meta_cols,
            )
            # meta values are converted from the block when a row's meta is first read
            metas: Iterable[Mapping[str, Any]] = (
                map(BlockMeta, repeat(block, n), range(n)) if meta_cols else repeat(_NO_META, n)
            )
            contexts = (
                part.column(CONTEXT_KEY).to_pylist()
                if self._has_context
                else repeat(self._context_key, n)
            )
            for row, meta, ctx in zip(range(n), metas, contexts, strict=True):
                yield (
                    make_tag(block, row, tag_schema, _NO_META, ctx),
                    make_packet(block, row, packet_schema, meta, ctx),
                )

    # Identity ------------------------------------------------------------------------------
    def content_hash(self) -> ContentHash:
        if self._identity is not None:
            return self._identity
        if self._content_hash is None and self._producer is not None:
            self._content_hash = hash_object(
                {
                    "kind": "ArrowTableStream",
                    "producer": self._producer.content_hash(),
                    "upstreams": [u.content_hash() for u in self._upstreams],
                }
            )
        if self._content_hash is None:
            self._content_hash = hash_object(
                {
                    "kind": "ArrowTableStream",
                    "tag_columns": list(self._tag_cols),
                    "table": hash_table(self._table),
                }
            )
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        if self._pipeline_identity is not None:
            return self._pipeline_identity
        if self._pipeline_hash is None and self._producer is not None:
            producer_hash = getattr(self._producer, "pipeline_hash", self._producer.content_hash)
            self._pipeline_hash = hash_object(
                {
                    "kind": "ArrowTableStream",
                    "producer": producer_hash(),
                    "upstreams": [u.pipeline_hash() for u in self._upstreams],
                }
            )
        if self._pipeline_hash is None:
            self._pipeline_hash = schema_pipeline_hash(*self._user_schemas())
        return self._pipeline_hash


def schema_pipeline_hash(
    tag_schema: Mapping[str, Any], packet_schema: Mapping[str, Any]
) -> ContentHash:
    """Pipeline identity of a root stream: its tag and packet schemas only."""
    return hash_object((Schema(tag_schema), Schema(packet_schema)))


def _with_source_info(
    table: pa.Table, source_info: Mapping[str, str | None], packet_cols: tuple[str, ...]
) -> tuple[pa.Table, dict[str, str]]:
    """``table`` with ``_source_<col>`` set to the constant token of every non-None entry."""
    unknown = [c for c in source_info if c not in packet_cols]
    if unknown:
        raise InputValidationError(
            f"source_info names {unknown}, which are not packet columns (packet columns: "
            f"{list(packet_cols)})"
        )
    for col, token in source_info.items():
        if token is None:
            continue
        name = SOURCE_PREFIX + col
        values = pa.array([token] * table.num_rows, type=pa.large_string())
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    names = table.column_names
    return table, {n[len(SOURCE_PREFIX) :]: n for n in names if n.startswith(SOURCE_PREFIX)}
