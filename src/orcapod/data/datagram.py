"""``Datagram``: one immutable row, as a dict or an Arrow table (``Tag`` and ``Packet``, in
``orcapod.data.tag`` and ``orcapod.data.packet``, are its two roles).

A datagram holds *data* columns (the user's) plus hidden columns: meta (``__*``), the data
context (``_context_key``) and, for ``Tag``, system tags (``_tag_*``) and for ``Packet``,
source info (``_source_<col>``). It is built from a dict or a one-row Arrow table/batch; the
other form is made lazily and kept. ``content_hash()`` covers the data columns only (never
meta, context, source info or system tags) and equals the vectorised row hash of the same row
(``orcapod.hashing.hash_rows``), so a packet hashed alone and the same row hashed in bulk by a
node agree.

Constructors: ``Datagram(data, python_schema, meta_info, *, data_context)``,
``Tag(data, system_tags, meta_info, python_schema, *, data_context)`` and
``Packet(data, meta_info, source_info, python_schema, *, data_context)``; ``data`` is a dict
or a one-row Arrow table / record batch (string, binary and list columns are normalised to
their large forms; at least one data column). ``data_context`` (a version, a context key or a
``DataContext``) is validated; a ``_context_key`` found in the data is kept as it is. A
``None`` value in a dict, with no type given for it, is typed ``str | None``.

Every ``with_…``/``select``/``drop``/``rename``/``update`` returns a new object. Naming a
column that is not there raises ``FieldNotFoundError`` (both a ``KeyError`` and a
``ValueError``); adding one that exists with ``with_columns`` is an ``InputValidationError``.

Streams build millions of these, so the private ``_make`` constructor skips validation and
inference when the caller already holds a checked schema, and ``_make_row`` builds a row backed
by a shared ``RowBlock`` (``orcapod.data.row_block``): values, system tags / source info and
the content hash are read from the block when first needed. A derived row (``select``,
``rename``, ``update``, …) holds its own values and hidden columns and no longer refers to the
block for them; a tag's system tags read from a block are not cached on it, so ``_hidden is
None`` marks an untouched block row (one a consumer can rebuild from the block, see
``_block_row``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Self

import pyarrow as pa

from orcapod.contexts import DataContext, resolve_context, resolve_context_key
from orcapod.data.conversion import (
    column_to_pylist,
    infer_schema,
    rows_to_table,
    table_schema,
    with_large_types,
)
from orcapod.data.row_block import RowBlock
from orcapod.errors import FieldNotFoundError, InputValidationError
from orcapod.hashing.arrow_hashing import row_hash
from orcapod.types import ColumnConfig, ContentHash, Schema
from orcapod.types.columns import (
    CONTEXT_KEY,
    DATAGRAM_PREFIX,
    DEFAULT_CONTEXT_KEY,
    META_PREFIX,
)

__all__ = ["Datagram"]

_EMPTY: Mapping[str, Any] = {}


def _meta_key(key: str) -> str:
    return key if key.startswith(META_PREFIX) else META_PREFIX + key


def _none_as_str(
    values: Mapping[str, Any] | None, schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``schema`` plus ``str | None`` for every None value it does not type: one row's
    ``None`` says nothing about its column's type, and a row must still be buildable."""
    types = dict(schema or {})
    for name, value in (values or {}).items():
        if value is None and name not in types:
            types[name] = str | None
    return types


def _hidden_array(value: Any) -> pa.Array:
    if isinstance(value, str):
        return pa.array([value], type=pa.large_string())
    return pa.array([value])


class Datagram:
    """One immutable row of named, typed values plus hidden meta/context columns."""

    __slots__ = (
        "_block",
        "_context_key",
        "_data",
        "_hash",
        "_hidden",  # Tag: system tags; Packet: source info (None: read from the block)
        "_meta",
        "_row",
        "_schema",
        "_table",
    )

    _hidden_prefix: ClassVar[str | None] = None

    def __init__(
        self,
        data: Mapping[str, Any] | pa.Table | pa.RecordBatch,
        python_schema: Mapping[str, Any] | None = None,
        meta_info: Mapping[str, Any] | None = None,
        *,
        data_context: str | DataContext | None = None,
        **hidden: Mapping[str, Any] | None,
    ) -> None:
        schema, meta = python_schema, meta_info
        context_key = None if data_context is None else resolve_context_key(data_context)
        table: pa.Table | None = None
        hidden_found: dict[str, Any] = {}
        meta_found: dict[str, Any] = {}
        values: dict[str, Any] | None = None
        if isinstance(data, (pa.Table, pa.RecordBatch)):
            if isinstance(data, pa.RecordBatch):
                data = pa.Table.from_batches([data])
            if data.num_rows != 1:
                raise InputValidationError(
                    f"a {type(self).__name__} is one row; got a table with {data.num_rows} rows "
                    "(iterate a stream over the table instead)"
                )
            data = with_large_types(data)
            data_names = []
            for name in data.column_names:
                if name.startswith(DATAGRAM_PREFIX):
                    value = data.column(name)[0].as_py()
                    self._route_hidden(name, value, meta_found, hidden_found)
                    if name == CONTEXT_KEY and context_key is None:
                        context_key = value
                else:
                    data_names.append(name)
            if not data_names:
                raise InputValidationError(
                    f"a {type(self).__name__} needs at least one data column; the table has only "
                    f"hidden columns {data.column_names}"
                )
            table = data.select(data_names)
        else:
            values = {}
            for name, value in data.items():
                if not isinstance(name, str):
                    raise InputValidationError(f"column names must be str, got {name!r}")
                if name.startswith(DATAGRAM_PREFIX):
                    self._route_hidden(name, value, meta_found, hidden_found)
                    if name == CONTEXT_KEY and context_key is None:
                        context_key = value
                else:
                    values[name] = value
        if schema is not None:
            names = table.column_names if table is not None else list(values or {})
            extra = set(schema) - set(names)
            if extra and table is not None:
                raise InputValidationError(f"schema names columns {sorted(extra)} not in the data")
            if table is not None:
                final_schema = Schema({n: schema[n] for n in names if n in schema}).merge(
                    table_schema(table.select([n for n in names if n not in schema]))
                )
            else:
                final_schema = infer_schema([values or {}], overrides=_none_as_str(values, schema))
        elif table is not None:
            final_schema = table_schema(table)
        else:
            final_schema = infer_schema([values or {}], overrides=_none_as_str(values, None))
        meta_found.update({_meta_key(k): v for k, v in (meta or {}).items()})
        self._data: dict[str, Any] | None = values
        self._table: pa.Table | None = table
        self._schema: Schema = final_schema
        self._meta: Mapping[str, Any] = meta_found
        self._context_key = context_key or DEFAULT_CONTEXT_KEY
        self._hash: ContentHash | None = None
        self._block: RowBlock | None = None
        self._row = 0
        self._init_hidden(hidden_found, hidden)

    def _route_hidden(
        self, name: str, value: Any, meta: dict[str, Any], hidden: dict[str, Any]
    ) -> None:
        if name == CONTEXT_KEY:
            return
        if name.startswith(META_PREFIX):
            meta[name] = value
        elif self._hidden_prefix is not None and name.startswith(self._hidden_prefix):
            hidden[name[len(self._hidden_prefix) :]] = value
        else:
            raise InputValidationError(
                f"column {name!r} starts with '_', which is reserved for orcapod's hidden "
                "columns; rename it"
            )

    def _init_hidden(self, found: dict[str, Any], explicit: Mapping[str, Any]) -> None:
        if found or explicit:
            raise InputValidationError(
                f"{type(self).__name__} takes no hidden columns {sorted({*found, *explicit})}"
            )
        self._hidden: Mapping[str, Any] | None = None

    @classmethod
    def _make(
        cls,
        data: dict[str, Any],
        schema: Schema,
        meta: Mapping[str, Any] = _EMPTY,
        context_key: str = DEFAULT_CONTEXT_KEY,
        hidden: Mapping[str, Any] = _EMPTY,
        content_hash: ContentHash | None = None,
    ) -> Self:
        """Trusted fast constructor: no validation, no inference, no copies."""
        obj = cls.__new__(cls)
        obj._data = data
        obj._table = None
        obj._schema = schema
        obj._meta = meta
        obj._context_key = context_key
        obj._hash = content_hash
        obj._block = None
        obj._row = 0
        obj._hidden = hidden
        return obj

    @classmethod
    def _make_row(
        cls,
        block: RowBlock,
        row: int,
        schema: Schema,
        meta: Mapping[str, Any] = _EMPTY,
        context_key: str = DEFAULT_CONTEXT_KEY,
    ) -> Self:
        """Trusted fast constructor of a block-backed row: values, hidden columns and the
        content hash come from ``block`` on first access (see ``orcapod.data.row_block``)."""
        obj = cls.__new__(cls)
        obj._data = None
        obj._table = None
        obj._schema = schema
        obj._meta = meta
        obj._context_key = context_key
        obj._hash = None
        obj._block = block
        obj._row = row
        obj._hidden = None
        return obj

    def _copy(self, **changes: Any) -> Self:
        obj = type(self).__new__(type(self))
        for cls in type(self).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                setattr(obj, slot, changes.get(slot, getattr(self, slot)))
        return obj

    # Data access -------------------------------------------------------------------------
    def _dict(self) -> dict[str, Any]:
        if self._data is None:
            if self._block is not None:
                self._data = self._block.values(self._schema, self._row)
                return self._data
            assert self._table is not None
            self._data = {
                n: column_to_pylist(self._table.column(n), self._schema[n])[0]
                for n in self._table.column_names
            }
        return self._data

    def _data_table(self) -> pa.Table:
        if self._table is None:
            self._table = rows_to_table([self._dict()], self._schema)
        return self._table

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._schema

    def __iter__(self) -> Iterator[str]:
        return iter(self._schema)

    def __len__(self) -> int:
        return len(self._schema)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Datagram)
        return self._schema == other._schema and self._dict() == other._dict()

    __hash__ = None  # type: ignore[assignment]  # rows compare by value; use content_hash()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._dict()!r})"

    # Views -------------------------------------------------------------------------------
    def keys(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> tuple[str, ...]:
        return tuple(self.as_dict(columns, all_info))

    def schema(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> Schema:
        config = ColumnConfig.handle_config(columns, all_info)
        if config == ColumnConfig():
            return self._schema
        hidden = {
            n: type(v) if v is not None else str | None
            for n, v in self._hidden_dict(config).items()
        }
        return self._schema.with_values(hidden)

    def arrow_schema(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> pa.Schema:
        return self.as_table(columns, all_info).schema

    def as_dict(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> dict[str, Any]:
        config = ColumnConfig.handle_config(columns, all_info)
        out = dict(self._dict())
        out.update(self._hidden_dict(config))
        return out

    def as_arrow_compatible_dict(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> dict[str, Any]:
        """Like ``as_dict``, with values as Arrow holds them (a ``Path`` is its struct)."""
        return self.as_table(columns, all_info).to_pylist()[0]

    def as_table(
        self, columns: ColumnConfig | Mapping[str, Any] | None = None, all_info: bool = False
    ) -> pa.Table:
        config = ColumnConfig.handle_config(columns, all_info)
        table = self._data_table()
        for name, value in self._hidden_dict(config).items():
            table = table.append_column(name, _hidden_array(value))
        return table

    def _hidden_dict(self, config: ColumnConfig) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out.update(self._extra_hidden(config))
        if config.meta:
            out.update({k: v for k, v in self._meta.items() if config.includes_meta(k)})
        if config.context:
            out[CONTEXT_KEY] = self._context_key
        hash_col = config.content_hash_column()
        if hash_col is not None:
            out[hash_col] = self.content_hash().to_string()
        return out

    def _extra_hidden(self, config: ColumnConfig) -> dict[str, Any]:
        return {}

    # Identity ----------------------------------------------------------------------------
    def content_hash(self) -> ContentHash:
        """Hash of the data columns only (equal to ``hash_rows`` of the same row)."""
        if self._hash is None:
            block = self._block
            if block is not None:
                self._hash = block.content_hash(tuple(self._schema), self._row)
            if self._hash is None:
                self._hash = row_hash(self._data_table())
        return self._hash

    def _hash_ready(self) -> bool:
        """True when ``content_hash()`` needs no per-row Arrow work: it is known, or comes
        from its block's one vectorised hash."""
        return self._hash is not None or self._block is not None

    @property
    def context_key(self) -> str:
        return self._context_key

    @property
    def data_context_key(self) -> str:
        """The key of the data context this row was made under (``context_key``)."""
        return self._context_key

    @property
    def data_context(self) -> DataContext:
        return resolve_context(self._context_key)

    @property
    def meta_columns(self) -> tuple[str, ...]:
        """Names of the meta columns (with their ``__`` prefix)."""
        return tuple(self._meta)

    # Meta ----------------------------------------------------------------------------------
    def get_meta_value(self, key: str, default: Any = None) -> Any:
        return self._meta.get(_meta_key(key), default)

    def get_meta_info(self) -> dict[str, Any]:
        return dict(self._meta)

    def with_meta_columns(self, **values: Any) -> Self:
        meta = dict(self._meta)
        meta.update({_meta_key(k): v for k, v in values.items()})
        return self._copy(_meta=meta)

    def drop_meta_columns(self, *keys: str, ignore_missing: bool = False) -> Self:
        names = {_meta_key(k) for k in keys}
        missing = names - self._meta.keys()
        if missing and not ignore_missing:
            raise FieldNotFoundError(
                f"no meta columns {sorted(missing)} to drop (meta columns: {list(self._meta)}); "
                "pass ignore_missing=True to skip absent ones"
            )
        return self._copy(_meta={k: v for k, v in self._meta.items() if k not in names})

    def with_context_key(self, new_context_key: str) -> Self:
        return self._copy(_context_key=new_context_key)

    def copy(self, include_cache: bool = True, preserve_id: bool = True) -> Self:
        """A copy (rows are immutable, so this is rarely needed); ``include_cache=False``
        drops the cached Arrow form and hash, which are rebuilt on demand. Rows have no
        separate id, so ``preserve_id`` has no effect."""
        if include_cache:
            return self._copy()
        data = self._dict()
        return self._copy(
            _data=dict(data), _table=None, _hash=None, _block=None, **self._detached()
        )

    # Data operations -------------------------------------------------------------------------
    def _check_known(self, names: Any, action: str) -> None:
        missing = [n for n in names if n not in self._schema]
        if missing:
            raise FieldNotFoundError(
                f"cannot {action} {missing}: no such columns (columns: {list(self._schema)})"
            )

    def select(self, *names: str) -> Self:
        self._check_known(names, "select")
        data = self._dict()
        return self._derive({n: data[n] for n in names}, self._schema.select(*names))

    def drop(self, *names: str, ignore_missing: bool = False) -> Self:
        if not ignore_missing:
            self._check_known(names, "drop")
        keep = [n for n in self._schema if n not in names]
        data = self._dict()
        return self._derive({n: data[n] for n in keep}, self._schema.select(*keep))

    def rename(self, column_mapping: Mapping[str, str]) -> Self:
        self._check_known(column_mapping, "rename")
        data = {column_mapping.get(k, k): v for k, v in self._dict().items()}
        return self._derive(data, self._schema.rename(column_mapping), renames=column_mapping)

    def update(self, **values: Any) -> Self:
        """Replace values of existing columns (types must still match the schema)."""
        self._check_known(values, "update")
        data = {**self._dict(), **values}
        rows_to_table([data], self._schema)  # validates the new values against the schema
        return self._derive(data, self._schema, updated=values.keys())

    def with_columns(self, column_types: Mapping[str, Any] | None = None, **values: Any) -> Self:
        """Add new columns (an existing name is an error; use ``update``)."""
        clash = [k for k in values if k in self._schema]
        if clash:
            raise InputValidationError(f"columns {clash} already exist; use update() instead")
        new_schema = infer_schema([values], overrides=column_types)
        return self._derive({**self._dict(), **values}, self._schema.merge(new_schema))

    def _derive(
        self,
        data: dict[str, Any],
        schema: Schema,
        renames: Mapping[str, str] | None = None,
        updated: Any = (),
    ) -> Self:
        return self._copy(
            _data=data, _schema=schema, _table=None, _hash=None, _block=None, **self._detached()
        )

    def _detached(self) -> dict[str, Any]:
        """Slot values that a copy no longer backed by the block must hold itself."""
        return {}
