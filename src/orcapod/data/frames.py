"""pandas and polars views of orcapod tables, with orcapod's Python values restored.

Arrow's own conversions show orcapod's storage layouts rather than the values a packet holds:
a ``Path`` is a ``{'path': ...}`` dict, a ``dict[str, T]`` is a list of key/value pairs and a
fixed-shape array comes out flattened. These conversions fix that, column by column
(vectorised for every other column):

* ``to_pandas``: ``Path`` values are ``pathlib.Path``, dicts are ``dict``, numpy arrays are
  numpy arrays of their dtype and shape (an ``object`` column; read-only arrays), also inside
  lists and dicts; every other column is what ``pyarrow.Table.to_pandas`` gives.
* ``to_polars``: a fixed-shape array column is a native ``pl.Array(<dtype>, shape)`` column
  (``series.to_numpy()`` gives the ``(rows, *shape)`` block); an array column whose shape
  varies is an ``Object`` column of numpy arrays, lists of arrays an ``Object`` column of
  lists of them; ``Path`` values are an ``Object`` column of ``pathlib.Path``; every other
  column (dicts included: polars' ``Map``) is what ``pl.from_arrow`` gives.

The inverse conversions (``from_pandas``, ``from_polars``, used by ``DataFrameSource``) accept
those frames back. A pandas frame's named index (what ``set_index`` and ``groupby`` give; each
named level of a ``MultiIndex``) becomes leading columns, as ``pyarrow.Table.from_pandas``
keeps it, so ``DataFrameSource(df.set_index("subject"), tag_columns="subject")`` works; an
unnamed index (pandas' row numbers) is dropped, and an index named like a column is a
``SchemaError``. Columns: a pandas or polars ``object`` column holding ``Path`` values or
numpy arrays (``None``/NaN for missing values) is typed from its values like any Python data
(``orcapod.data.conversion.infer_schema``), and a polars ``pl.Array`` column becomes a
fixed-shape array column of its dtype and shape. Every other column is converted by Arrow
(a pandas ``object`` column mixing naive and time-zone-aware datetimes, which Arrow would
take, is a ``SchemaError``: ``orcapod.data.timestamps.check_time_zones``).

polars is imported inside the functions that use it, so that importing orcapod does not import
it (pandas is never imported here: ``pyarrow`` does that when converting).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from orcapod.data.conversion import (
    arrow_to_python_type,
    column_to_pylist,
    columns_to_table,
    infer_schema,
    needs_python_values,
)
from orcapod.data.timestamps import check_time_zones
from orcapod.errors import SchemaError
from orcapod.hashing.arrow_arrays import array_type_of, arrow_to_arrays, holds_arrays
from orcapod.hashing.arrow_hashing import is_path_struct
from orcapod.types import ArrayType

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl

__all__ = ["from_pandas", "from_polars", "to_pandas", "to_polars"]


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table.to_pandas()`` with Paths, dicts and numpy arrays restored (module docstring)."""
    special = [
        name for name in table.column_names if needs_python_values(table.schema.field(name).type)
    ]
    df = table.drop_columns(special).to_pandas() if special else table.to_pandas()
    if not special:
        return df
    for name in special:
        values = column_to_pylist(table.column(name))
        series = np.empty(len(values), dtype=object)
        series[:] = values
        df[name] = series
    return df[table.column_names]


def _polars_series(name: str, column: pa.ChunkedArray) -> pl.Series:
    import polars as pl

    t = column.type
    array_type = array_type_of(t)
    if array_type is None and holds_arrays(t):
        return pl.Series(name, column_to_pylist(column), dtype=pl.Object)
    if array_type is not None:
        values = arrow_to_arrays(column)
        if not isinstance(t, pa.FixedShapeTensorType):  # (variable shapes: orcapod.ndarray)
            return pl.Series(name, values, dtype=pl.Object)
        assert array_type.dtype is not None
        valid = np.array([v is not None for v in values], dtype=np.bool_)
        shape = (len(values), *array_type.fixed_shape)
        block = np.zeros(shape, dtype=np.dtype(array_type.dtype))
        if valid.any():
            block[valid] = np.stack([v for v in values if v is not None])
        series = pl.Series(name, block)
        if valid.all():
            return series
        return pl.select(pl.when(pl.Series(valid)).then(series).alias(name)).to_series()
    if is_path_struct(t):
        return pl.Series(name, column_to_pylist(column, arrow_to_python_type(t)), dtype=pl.Object)
    converted: Any = pl.from_arrow(column)
    return converted.alias(name)


def to_polars(table: pa.Table) -> pl.DataFrame:
    """``pl.from_arrow(table)`` with arrays and Paths restored (module docstring)."""
    import polars as pl

    if not any(array_type_of(f.type) is not None or is_path_struct(f.type) for f in table.schema):
        converted: pl.DataFrame = pl.from_arrow(table)  # type: ignore[assignment]
        return converted
    return pl.DataFrame([_polars_series(name, table.column(name)) for name in table.column_names])


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _object_values(values: list[Any]) -> list[Any] | None:
    """The values of an object column holding Paths or arrays (missing ones as ``None``);
    ``None`` when it holds neither (Arrow converts it as it is)."""
    if not any(isinstance(v, (Path, np.ndarray)) for v in values):
        return None
    return [None if _missing(v) else v for v in values]


def _assemble(
    names: list[str], converted: dict[str, list[Any]], rest: pa.Table, typed: dict[str, Any]
) -> pa.Table:
    schema = infer_schema([{}], overrides=typed) if typed else {}
    inferred = {n: v for n, v in converted.items() if n not in typed}
    if inferred:
        rows = [
            dict(zip(inferred, vals, strict=True)) for vals in zip(*inferred.values(), strict=True)
        ]
        schema = {**schema, **infer_schema(rows)}
    special = columns_to_table(converted, {n: schema[n] for n in converted})
    columns = {n: special.column(n) if n in converted else rest.column(n) for n in names}
    return pa.table(columns)


def _index_as_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The frame with its named index levels as leading columns (module docstring)."""
    named = [name for name in df.index.names if name is not None]
    if not named:
        return df
    clash = [name for name in named if name in df.columns]
    if clash:
        raise SchemaError(
            f"the pandas frame's index {clash} has the name of a column, so it cannot become "
            "a column; rename the index (df.rename_axis(...)) or drop it "
            "(df.reset_index(drop=True))"
        )
    return df.reset_index(level=named)


def from_pandas(df: pd.DataFrame) -> pa.Table:
    """An Arrow table of a pandas frame, named index levels and object columns of Paths and
    arrays included."""
    df = _index_as_columns(df)
    converted: dict[str, list[Any]] = {}
    for name in df.columns:
        if df[name].dtype == object:
            values = _object_values(list(df[name]))
            if values is not None:
                converted[str(name)] = values
    rest_df = df.drop(columns=list(converted)) if converted else df
    rest = pa.Table.from_pandas(rest_df, preserve_index=False)
    for name, field in zip(rest_df.columns, rest.schema, strict=True):
        # an object column Arrow read as timestamps may mix naive and aware values
        if pa.types.is_timestamp(field.type) and rest_df[name].dtype == object:
            check_time_zones(rest_df[name], field.name)
    if not converted:
        return rest
    return _assemble([str(n) for n in df.columns], converted, rest, {})


def from_polars(df: pl.DataFrame) -> pa.Table:
    """An Arrow table of a polars frame: ``pl.Array`` columns as fixed-shape arrays, ``Object``
    columns of Paths or arrays typed from their values."""
    import polars as pl

    converted: dict[str, list[Any]] = {}
    typed: dict[str, Any] = {}
    for name, dtype in df.schema.items():
        series = df[name]
        if dtype == pl.Object:
            values = _object_values(series.to_list())
            if values is None:
                raise SchemaError(
                    f"polars column {name!r} holds Python objects that are neither Paths nor "
                    "numpy arrays; convert it to a polars type first"
                )
            converted[name] = values
        elif isinstance(dtype, pl.Array) and series.null_count() < len(series):
            block = series.drop_nulls().to_numpy()
            array_type = ArrayType(block.dtype, block.shape[1:])
            valid = iter(block)
            converted[name] = [None if v is None else next(valid) for v in series.to_list()]
            typed[name] = array_type | None if series.null_count() else array_type
    if not converted:
        table: pa.Table = df.to_arrow()
        return table
    rest = df.drop(list(converted)).to_arrow()
    return _assemble(list(df.columns), converted, rest, typed)
