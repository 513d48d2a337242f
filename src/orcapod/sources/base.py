"""``RootSource``: the shared base of every source — a stream made from outside data.

A source holds the user's table (tag + packet columns only; a user column starting with ``_``
is an error). Every tag and packet column must have an Arrow type orcapod has a Python type
for; one that has not (a column of only nulls, whose type is Arrow's ``null``; a struct; a
list of only nulls) is a ``SchemaError`` when the source is built, naming the column and how
to give it a type (each source kind says it in its own terms: ``DataFrameSource`` names the
polars/pandas cast, ``CSVSource`` its ``schema``), rather than at first use. The source
builds its enriched stream lazily, the first time rows are needed:

* system tags ``_tag_source_id::<schema hash 12>`` (the source id) and
  ``_tag_record_id::<schema hash 12>`` (``row_<i>``, or ``<col>=<value>`` with a
  ``record_id_column``), where the schema hash is the first 12 hex digits of the source's
  pipeline hash;
* source info ``_source_<col>`` = ``<source_id>::<record_id>::<col>`` for every packet column.

All of it is computed with Arrow string kernels, never a Python loop per row.

Identity: the content hash covers the class, the source id, the tag/record-id columns and the
hash of the data itself, so two sources with the same id but different rows never hash equal
(so one can never be served the other's stored results). The pipeline hash covers only
``(tag_schema, packet_schema)``. The default ``source_id`` is the first 20 hex digits of the
data hash; give an explicit ``source_id`` to keep entry ids stable when rows are added.

Options shared by every source:

* ``system_tag_columns``: user columns that are provenance rather than data; they become
  system tags ``_tag_<name>`` (hidden unless ``ColumnConfig(system_tags=True)``) and are
  neither tag nor packet columns.
* ``infer_nullable`` (default True): a column's type is ``T | None`` iff it holds nulls.
  With False the Arrow field's nullability decides. Inferring is the default because
  ``pyarrow`` marks every field nullable unless told otherwise, which would make every
  column optional and every function reject it.
* ``data_context``: the data context the rows are made under (default: the default one).

A source has no ``producer`` and no ``upstreams``. ``resolve_field(record_id, field)``
returns one value by the record id found in provenance (``row_<i>`` or ``<col>=<value>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod._arrow_without_pandas import column_numpy
from orcapod._lazy import pc
from orcapod.contexts import DataContext, resolve_context_key
from orcapod.data.conversion import arrow_to_python_type, column_to_pylist, table_schema
from orcapod.data.timestamps import with_utc_timestamps
from orcapod.databases import ArrowDatabase
from orcapod.errors import FieldNotFoundError, InputValidationError, SchemaError
from orcapod.hashing import hash_object, hash_table
from orcapod.sources.cached import CachedSource
from orcapod.streams.arrow_table_stream import ArrowTableStream, schema_pipeline_hash
from orcapod.streams.base import ColumnsArg, StreamBase, check_slice_rows
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import (
    BLOCK_SEP,
    DATAGRAM_PREFIX,
    SCHEMA_HASH_CHARS,
    SOURCE_ID_HASH_CHARS,
    SOURCE_PREFIX,
    SYSTEM_TAG_PREFIX,
    SYSTEM_TAG_RECORD_ID,
    SYSTEM_TAG_SOURCE_ID,
)

__all__ = ["RootSource"]


def _all_distinct(column: pa.ChunkedArray) -> bool:
    """Are the (non-null) values distinct? Integers: increasing values need no hash set (the
    usual row-number ids), any others are sorted; other types use Arrow's distinct count."""
    if pa.types.is_integer(column.type):
        values = column_numpy(column)
        if len(values) < 2 or bool(np.all(values[1:] > values[:-1])):
            return True
        values = np.sort(values)
        return bool(np.all(values[1:] != values[:-1]))
    return bool(pc.count_distinct(column).as_py() == len(column))


def _check_source_id(source_id: str) -> str:
    if not isinstance(source_id, str) or not source_id:
        raise InputValidationError(f"source_id must be a non-empty string, got {source_id!r}")
    if BLOCK_SEP in source_id:
        raise InputValidationError(
            f"source_id {source_id!r} contains '::', which separates provenance fields; "
            "choose another id"
        )
    return source_id


def _inner_types(arrow_type: pa.DataType) -> Iterator[pa.DataType]:
    """The types nested in ``arrow_type`` (list items, map keys and values, struct fields),
    at every depth."""
    if pa.types.is_map(arrow_type):
        children = [arrow_type.key_type, arrow_type.item_type]
    else:
        children = [arrow_type.field(i).type for i in range(arrow_type.num_fields)]
    for child in children:
        yield child
        yield from _inner_types(child)


def _column_names(owner: str, name: str, value: Any) -> tuple[str, ...]:
    """A column-name argument (one name, or an iterable of names) as a tuple."""
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError as err:
        raise InputValidationError(
            f"{owner}({name}={value!r}): pass a column name, a list of column names, or () for none"
        ) from err
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise InputValidationError(
            f"{owner}({name}={value!r}): column names must be strings, got {bad[0]!r}"
        )
    return names


class RootSource(StreamBase):
    """A stream made from outside data; the root of provenance."""

    def __init__(
        self,
        table: pa.Table,
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        *,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
        infer_nullable: bool = True,
        data_context: str | DataContext | None = None,
    ) -> None:
        tag_columns = _column_names(type(self).__name__, "tag_columns", tag_columns)
        system_tag_columns = _column_names(
            type(self).__name__, "system_tag_columns", system_tag_columns
        )
        table = with_utc_timestamps(table)
        names = table.column_names
        if not names:
            raise InputValidationError(f"{type(self).__name__}: the data has no columns")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise InputValidationError(f"duplicate column names {dupes}; make them unique")
        reserved = [n for n in names if n.startswith(DATAGRAM_PREFIX)]
        if reserved:
            raise InputValidationError(
                f"columns {reserved} start with '_', which is reserved for orcapod's hidden "
                "columns; rename them"
            )
        missing = [c for c in tag_columns if c not in names]
        if missing:
            raise InputValidationError(
                f"tag columns {missing} are not in the data (columns: {names})"
            )
        if len(set(tag_columns)) != len(tag_columns):
            raise InputValidationError(f"tag_columns {list(tag_columns)} repeat a name")
        bad_system = [c for c in system_tag_columns if c not in names or c in tag_columns]
        if bad_system:
            raise InputValidationError(
                f"system_tag_columns {bad_system} must be columns of the data that are not "
                f"tag columns (columns: {names}, tag columns: {list(tag_columns)})"
            )
        if not [n for n in names if n not in tag_columns and n not in system_tag_columns]:
            raise InputValidationError(
                "a source needs at least one packet (non-tag) column; all columns are tags"
            )
        if record_id_column is not None:
            if record_id_column not in names:
                raise InputValidationError(
                    f"record_id_column {record_id_column!r} is not in the data (columns: {names})"
                )
            column = table.column(record_id_column)
            if column.null_count or not _all_distinct(column):
                raise InputValidationError(
                    f"record_id_column {record_id_column!r} must hold unique, non-null values"
                )
        # order: tags first, then packets
        packet_columns = tuple(
            n for n in names if n not in tag_columns and n not in system_tag_columns
        )
        for name in (*tag_columns, *packet_columns):
            arrow_type = table.schema.field(name).type
            try:
                arrow_to_python_type(arrow_type)
            except SchemaError as err:
                raise SchemaError(
                    f"{type(self).__name__}: column {name!r} has Arrow type {arrow_type}, "
                    f"which has no orcapod type; {self._type_fix(name, arrow_type)}"
                ) from err
        self._raw = table.select([*tag_columns, *packet_columns, *system_tag_columns])
        self._tag_columns = tag_columns
        self._packet_columns = packet_columns
        self._system_tag_columns = system_tag_columns
        self._infer_nullable = bool(infer_nullable)
        self._context_key = resolve_context_key(data_context)
        self._record_id_column = record_id_column
        self._data_hash = hash_table(self._raw)
        self._source_id = _check_source_id(
            source_id if source_id is not None else self._data_hash.to_hex(SOURCE_ID_HASH_CHARS)
        )
        self.label = label
        self._schemas: tuple[Schema, Schema] | None = None
        self._stream: ArrowTableStream | None = None
        self._empty: ArrowTableStream | None = None  # (see ``_schema_stream``)
        self._content_hash: ContentHash | None = None

    def _type_fix(self, name: str, arrow_type: pa.DataType) -> str:
        """How to give column ``name``, whose Arrow type has no orcapod type, one that has
        (a source kind may say it in the terms of its input)."""
        if pa.types.is_null(arrow_type):
            return (
                "it holds only nulls, so nothing gives it a type: cast it to the type its "
                "values will have (table.cast(...), with e.g. pa.int64() for this column), or "
                "drop it"
            )
        if pa.types.is_struct(arrow_type):
            return (
                "a struct column has no orcapod type: make each field a column of its own "
                "(table.flatten()), or hold the values as a map (dict[str, T])"
            )
        inner = list(_inner_types(arrow_type))
        if any(pa.types.is_struct(t) for t in inner):
            return "its values hold structs, which have no orcapod type; use maps (dict[str, T])"
        if any(pa.types.is_null(t) for t in inner):
            return (
                "its lists are empty or hold only nulls, so nothing gives their items a type: "
                "cast it to a typed list (e.g. pa.large_list(pa.int64()))"
            )
        return (
            "cast it to a supported type (bool, int, float, str, bytes, date and time types, "
            "Decimal, lists, maps)"
        )

    # Identity ----------------------------------------------------------------------------
    @property
    def source_id(self) -> str:
        return self._source_id

    def identity_structure(self) -> Any:
        options: dict[str, Any] = {}
        if self._system_tag_columns:
            options["system_tag_columns"] = list(self._system_tag_columns)
        if not self._infer_nullable:
            options["infer_nullable"] = False
        return {
            "kind": type(self).__name__,
            "source_id": self._source_id,
            "tag_columns": list(self._tag_columns),
            "record_id_column": self._record_id_column,
            "data": self._data_hash,
            **(
                {"system_tag_columns": list(self._system_tag_columns)}
                if self._system_tag_columns
                else {}
            ),
            **({} if self._infer_nullable else {"infer_nullable": False}),
        }

    def content_hash(self) -> ContentHash:
        if self._content_hash is None:
            self._content_hash = hash_object(self.identity_structure())
        return self._content_hash

    def pipeline_hash(self) -> ContentHash:
        return schema_pipeline_hash(*self._user_schemas())

    def _user_schemas(self) -> tuple[Schema, Schema]:
        if self._schemas is None:
            user = self._raw.select([*self._tag_columns, *self._packet_columns])
            full = table_schema(user, infer_nullable=self._infer_nullable)
            self._schemas = (full.select(*self._tag_columns), full.select(*self._packet_columns))
        return self._schemas

    @property
    def data_context_key(self) -> str:
        return self._context_key

    # The enriched stream -----------------------------------------------------------------
    @property
    def stream(self) -> ArrowTableStream:
        """The source's rows with system tags and source info (built on first use)."""
        if self._stream is None:
            self._stream = self._stream_of(self._enriched_table())
        return self._stream

    def _stream_of(self, table: pa.Table) -> ArrowTableStream:
        return ArrowTableStream(
            table,
            self._tag_columns,
            data_context=self._context_key,
            schemas=self._user_schemas(),
            identity=self.content_hash(),
            pipeline_identity=self.pipeline_hash(),
            label=self.label,
        )

    def _schema_stream(self) -> ArrowTableStream:
        """A stream with the source's columns and no rows: what its schemas and column names
        are read from without enriching every row."""
        if self._stream is not None:
            return self._stream
        if self._empty is None:
            self._empty = self._stream_of(self._enriched_table(0, 0))
        return self._empty

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._schema_stream().keys(columns, all_info)

    def empty_table(self) -> pa.Table:
        """The columns of the source's enriched rows (system tags and source info included),
        with no rows."""
        return self._schema_stream().table.slice(0, 0)

    def iter_slices(
        self, rows: int, columns: ColumnsArg = None, all_info: bool = False
    ) -> Iterator[pa.Table]:
        """``as_table(columns, all_info)`` in consecutive slices of at most ``rows`` rows. A
        source whose rows were not enriched yet enriches each slice on its own, so its system
        tags and source info are never held for every row at once (a function node's run
        over a large source reads it this way)."""
        check_slice_rows(rows)
        config = ColumnConfig.handle_config(columns, all_info)
        if self._stream is not None or config.sort_by_tags:
            return super().iter_slices(rows, config)
        return (
            self._stream_of(self._enriched_table(start, rows)).as_table(config)
            for start in range(0, self._raw.num_rows, rows)
        )

    def record_ids(self, start: int = 0, length: int | None = None) -> pa.Array:
        """The record id of every row (of ``length`` rows from ``start``: all by default)."""
        raw = self._raw if start == 0 and length is None else self._raw.slice(start, length)
        if self._record_id_column is None:
            numbers = np.arange(start, start + raw.num_rows, dtype=np.int64)
            values = pc.cast(pa.array(numbers), pa.large_string())
            prefix = "row_"
        else:
            values = pc.cast(raw.column(self._record_id_column), pa.large_string())
            prefix = f"{self._record_id_column}="
        return pc.binary_join_element_wise(
            pa.scalar(prefix, pa.large_string()), values, pa.scalar("", pa.large_string())
        )

    def _enriched_table(self, start: int = 0, length: int | None = None) -> pa.Table:
        """The rows (``length`` from ``start``: all by default) with system tags and source
        info."""
        table = self._raw if start == 0 and length is None else self._raw.slice(start, length)
        n = table.num_rows
        schema_hash = self.pipeline_hash().to_hex(SCHEMA_HASH_CHARS)
        record_ids = self.record_ids(start, length)
        if isinstance(record_ids, pa.ChunkedArray):
            record_ids = record_ids.combine_chunks()
        source_ids = pa.repeat(pa.scalar(self._source_id, pa.large_string()), n)
        if self._system_tag_columns:
            table = table.rename_columns(
                [
                    SYSTEM_TAG_PREFIX + n if n in self._system_tag_columns else n
                    for n in table.column_names
                ]
            )
        for col in self._packet_columns:
            info = pc.binary_join_element_wise(
                pa.scalar(self._source_id, pa.large_string()),
                record_ids,
                pa.scalar(col, pa.large_string()),
                pa.scalar(BLOCK_SEP, pa.large_string()),
            )
            table = table.append_column(
                pa.field(SOURCE_PREFIX + col, pa.large_string(), False), info
            )
        table = table.append_column(
            pa.field(f"{SYSTEM_TAG_SOURCE_ID}{BLOCK_SEP}{schema_hash}", pa.large_string(), False),
            source_ids,
        )
        return table.append_column(
            pa.field(f"{SYSTEM_TAG_RECORD_ID}{BLOCK_SEP}{schema_hash}", pa.large_string(), False),
            record_ids,
        )

    def resolve_field(self, record_id: str, field_name: str) -> Any:
        """The value of column ``field_name`` in the row whose record id is ``record_id``
        (as found in provenance: ``row_<i>``, or ``<col>=<value>`` with a record id column)."""
        if field_name not in self._raw.column_names:
            raise FieldNotFoundError(
                f"{type(self).__name__} {self._source_id!r} has no column {field_name!r} "
                f"(columns: {self._raw.column_names})"
            )
        matches = pc.indices_nonzero(pc.equal(self.record_ids(), record_id))
        if len(matches) == 0:
            raise FieldNotFoundError(
                f"{type(self).__name__} {self._source_id!r} has no row with record id "
                f"{record_id!r}; record ids look like {self.record_ids()[:3].to_pylist()}"
            )
        column = self._raw.column(field_name).take(matches[:1])
        tp = {**self._user_schemas()[0], **self._user_schemas()[1]}.get(field_name)
        return column_to_pylist(column, tp)[0]

    def cached(
        self,
        cache_database: ArrowDatabase,
        cache_path_prefix: Sequence[str] = (),
        cache_path: Sequence[str] | None = None,
    ) -> CachedSource:
        """A view serving every row this source ever provided, recorded in ``cache_database``
        (under ``cache_path``, or the default path below ``cache_path_prefix``)."""
        return CachedSource(self, cache_database, cache_path_prefix, cache_path)

    # Stream surface (delegated) ------------------------------------------------------------

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        if columns is None and not all_info:
            return self._user_schemas()
        return self._schema_stream().output_schema(columns, all_info)

    @property
    def num_rows(self) -> int:
        return int(self._raw.num_rows)

    def __repr__(self) -> str:
        tags, packets = self._user_schemas()
        return (
            f"{type(self).__name__}(source_id={self._source_id!r}, rows={self.num_rows}, "
            f"tags={tuple(tags)}, packets={tuple(packets)})"
        )
