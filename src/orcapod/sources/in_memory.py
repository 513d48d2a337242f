"""Sources over in-memory data: Arrow tables, lists of dicts, plain lists, data frames.

Types come from the data unless a schema is given (see ``orcapod.data.conversion``); a column
of Python objects that is not one of the supported types is a ``SchemaError`` naming it. A
schema (Python types or a ``pa.Schema``) checks the values, it never converts them: ``2.5`` in
an ``int`` column is a ``SchemaError`` naming the column and row, not ``2``. A pandas object
column Arrow cannot convert (e.g. ints mixed with strs) is a ``SchemaError`` naming it, as for
``DictSource``. A frame column orcapod has no type for (all nulls, which Arrow types
``null``; a polars struct) is a ``SchemaError`` when the source is built, naming the cast,
``schema=`` or ``unnest`` that fixes it.
``system_tag_columns``, ``infer_nullable`` and ``data_context`` are described in
``orcapod.sources.base``.

``ListSource``'s identity includes its tag function according to ``tag_function_hash_mode``:
``"content"`` (the default: the function's normalised code, so editing it changes the
source's identity), ``"signature"`` (its name and signature) or ``"name"`` (its qualified name
only; an edited function keeps the old identity, so use it only for functions that never
change meaning).

``DataFrameSource`` imports polars when it is built (not when this module is imported, so
importing orcapod stays fast) and recognises a pandas frame only when pandas is already
imported (a pandas frame cannot exist otherwise), so it never imports pandas itself.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from orcapod.contexts import DataContext
from orcapod.data.conversion import (
    arrow_to_python_type,
    infer_schema,
    needs_python_values,
    rows_to_table,
    schema_to_arrow,
    with_large_types,
)
from orcapod.data.frames import from_pandas, from_polars
from orcapod.data.value_types import check_values
from orcapod.errors import InputValidationError, SchemaError
from orcapod.hashing.function_identity import function_code_hash, function_signature_hash
from orcapod.sources.base import RootSource
from orcapod.types import ContentHash

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["ArrowTableSource", "DataFrameSource", "DictSource", "ListSource"]


class ArrowTableSource(RootSource):
    """A source over a ``pyarrow.Table`` (or RecordBatch)."""

    def __init__(
        self,
        table: pa.Table | pa.RecordBatch,
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        record_id_column: str | None = None,
        infer_nullable: bool = True,
        *,
        source_id: str | None = None,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise InputValidationError(
                f"ArrowTableSource needs a pyarrow Table, got {type(table).__name__}"
            )
        super().__init__(
            table,
            tag_columns,
            system_tag_columns,
            source_id=source_id,
            record_id_column=record_id_column,
            label=label,
            infer_nullable=infer_nullable,
            data_context=data_context,
        )

    @property
    def table(self) -> pa.Table:
        """The source's rows with system tags and source info (every column)."""
        return self.stream.table


class DictSource(RootSource):
    """A source over a collection of row dicts.

    ``data_schema`` (a mapping of Python types, or a ``pa.Schema``) fixes column types; it is
    required when ``data`` is empty or a column holds only ``None``.
    """

    def __init__(
        self,
        data: Collection[Mapping[str, Any]],
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        data_schema: Mapping[str, Any] | pa.Schema | None = None,
        source_id: str | None = None,
        *,
        record_id_column: str | None = None,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        rows = list(data)
        if any(not isinstance(r, Mapping) for r in rows):
            raise InputValidationError(
                "DictSource data must be a collection of dicts (one per row)"
            )
        if isinstance(data_schema, pa.Schema):
            table = _rows_to_arrow_schema(rows, data_schema)
        else:
            if not rows and not data_schema:
                raise InputValidationError(
                    "DictSource got no rows and no data_schema, so it has no columns; pass "
                    "data_schema={'col': type, ...} for an empty source"
                )
            schema = infer_schema(rows, overrides=data_schema)
            table = rows_to_table(rows, schema) if rows else schema_to_arrow(schema).empty_table()
        super().__init__(
            table,
            tag_columns,
            system_tag_columns,
            source_id=source_id,
            record_id_column=record_id_column,
            label=label,
            infer_nullable=data_schema is None,
            data_context=data_context,
        )


def _rows_to_arrow_schema(rows: list[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """The rows as a table of ``schema``, values checked as a Python schema's are (no silent
    truncation of floats into int columns)."""
    for field in schema:
        if not needs_python_values(field.type):
            try:
                tp = arrow_to_python_type(field.type)
            except SchemaError:
                continue  # a type orcapod has no Python type for: Arrow checks it
            check_values([row.get(field.name) for row in rows], tp, field.name)
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as err:
        raise SchemaError(
            f"DictSource: the rows do not fit data_schema ({err}); fix the values or the schema"
        ) from err


class ListSource(RootSource):
    """A source over a plain list: each element becomes the packet ``{name: element}``.

    The tag is ``{"element_index": i}`` unless ``tag_function(element, i) -> dict`` is given;
    ``expected_tag_keys`` names the keys it must return (checked on every element).
    ``data_schema`` fixes column types (e.g. ``{name: float}``).
    """

    def __init__(
        self,
        name: str,
        data: Sequence[Any],
        tag_function: Callable[[Any, int], Mapping[str, Any]] | None = None,
        expected_tag_keys: Collection[str] | None = None,
        tag_function_hash_mode: Literal["content", "signature", "name"] = "content",
        data_schema: Mapping[str, Any] | None = None,
        source_id: str | None = None,
        *,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        if tag_function is None and name == "element_index":
            raise InputValidationError(
                "ListSource: the name 'element_index' is the default tag column, which numbers "
                "the elements; name the packet column otherwise, or pass a tag_function that "
                "returns other tag keys"
            )
        expected = None if expected_tag_keys is None else set(expected_tag_keys)
        rows: list[dict[str, Any]] = []
        for i, element in enumerate(data):
            tag = dict(tag_function(element, i)) if tag_function else {"element_index": i}
            if name in tag:
                raise InputValidationError(
                    f"tag_function returned the key {name!r}, which is the packet column name; "
                    "return other tag keys, or name the packet column otherwise"
                )
            if expected is not None and set(tag) != expected:
                raise InputValidationError(
                    f"tag_function returned keys {sorted(tag)} for element {i}, expected "
                    f"{sorted(expected)}; make it return exactly expected_tag_keys"
                )
            rows.append({**tag, name: element})
        if not rows:
            raise InputValidationError("ListSource needs at least one element")
        tag_columns = [k for k in rows[0] if k != name]
        self._tag_function_hash = (
            _tag_function_identity(tag_function, tag_function_hash_mode) if tag_function else None
        )
        super().__init__(
            rows_to_table(rows, infer_schema(rows, overrides=data_schema)),
            tag_columns,
            source_id=source_id,
            label=label,
            data_context=data_context,
        )

    def identity_structure(self) -> Any:
        return {**super().identity_structure(), "tag_function": self._tag_function_hash}


def _tag_function_identity(fn: Callable[..., Any], mode: str) -> ContentHash | str:
    if mode == "content":
        return function_code_hash(fn)
    if mode == "signature":
        return function_signature_hash(fn)
    if mode == "name":
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    raise InputValidationError(
        f"tag_function_hash_mode must be 'content', 'signature' or 'name', not {mode!r}"
    )


def _pandas_error(frame: pd.DataFrame, err: Exception) -> SchemaError:
    """The error for a pandas frame Arrow cannot convert, naming the object column whose
    values ``DictSource`` would refuse too (missing values taken as ``None``)."""
    pandas = sys.modules["pandas"]
    for name in frame.columns:
        if frame[name].dtype == object:
            values = [
                None if pandas.api.types.is_scalar(v) and pandas.isna(v) else v for v in frame[name]
            ]
            try:
                infer_schema([{str(name): v} for v in values])
            except SchemaError:
                kinds = sorted({type(v).__name__ for v in values if v is not None})
                return SchemaError(
                    f"DataFrameSource: column {str(name)!r} holds values of types {kinds}, "
                    "which cannot make one column type; convert them to one type first, e.g. "
                    f"df[{name!r}].astype(str), or drop the bad rows"
                )
    return SchemaError(
        f"DataFrameSource cannot convert the pandas frame to Arrow ({err}); make every column "
        "hold values of one type"
    )


class DataFrameSource(RootSource):
    """A source over a pandas or polars DataFrame (object columns of Paths or numpy arrays and
    polars ``Array`` columns included, see ``orcapod.data.frames``), or anything
    ``polars.DataFrame`` accepts (a dict of columns, a list of row dicts). ``schema`` (a
    ``pa.Schema``) fixes the column types and nullability."""

    def __init__(
        self,
        data: pd.DataFrame | pl.DataFrame | Any,
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        source_id: str | None = None,
        schema: pa.Schema | None = None,
        *,
        record_id_column: str | None = None,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        import polars as pl

        pandas = sys.modules.get("pandas")
        if isinstance(data, dict | list):
            try:
                data = pl.DataFrame(data)
            except (TypeError, ValueError, pl.exceptions.PolarsError) as err:
                raise InputValidationError(
                    f"DataFrameSource cannot make a DataFrame of the given data: {err}"
                ) from err
        if isinstance(data, pl.DataFrame):
            table = from_polars(data)
        elif pandas is not None and isinstance(data, pandas.DataFrame):
            try:
                table = from_pandas(data)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
                raise _pandas_error(data, err) from err
        else:
            raise InputValidationError(
                f"DataFrameSource needs a pandas or polars DataFrame, got {type(data).__name__}"
            )
        if schema is not None:
            try:
                table = table.select(schema.names).cast(schema)
            except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
                raise InputValidationError(
                    f"DataFrameSource: the data does not fit schema {schema}: {err}"
                ) from err
        super().__init__(
            with_large_types(table),
            tag_columns,
            system_tag_columns,
            source_id=source_id,
            record_id_column=record_id_column,
            label=label,
            infer_nullable=schema is None,
            data_context=data_context,
        )

    def _type_fix(self, name: str, arrow_type: pa.DataType) -> str:
        if pa.types.is_null(arrow_type):
            return (
                "it holds only nulls, so nothing gives it a type: cast it to the type its "
                f"values will have (polars: df.with_columns(pl.col({name!r}).cast(pl.Int64)); "
                f"pandas: df[{name!r}].astype('Int64')), pass schema=pa.schema([...]) naming "
                "its type, or drop it"
            )
        if pa.types.is_struct(arrow_type):
            return (
                "a struct column has no orcapod type: make each field a column of its own "
                f"(polars: df.unnest({name!r})), or hold the values as a map (dict[str, T])"
            )
        return super()._type_fix(name, arrow_type)
