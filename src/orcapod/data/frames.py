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
  varies is an ``Object`` column of numpy arrays; ``Path`` values are an ``Object`` column of
  ``pathlib.Path``; every other column (dicts included: polars' ``List(Struct)``) is what
  ``pl.from_arrow`` gives.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa

from orcapod.data.conversion import arrow_to_python_type, column_to_pylist, needs_python_values
from orcapod.hashing.arrow_arrays import array_type_of, arrow_to_arrays
from orcapod.hashing.arrow_hashing import is_path_struct

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["to_pandas", "to_polars"]


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
    t = column.type
    array_type = array_type_of(t)
    if array_type is not None:
        values = arrow_to_arrays(column)
        if not array_type.is_fixed:
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
    if not any(array_type_of(f.type) is not None or is_path_struct(f.type) for f in table.schema):
        converted: pl.DataFrame = pl.from_arrow(table)  # type: ignore[assignment]
        return converted
    return pl.DataFrame([_polars_series(name, table.column(name)) for name in table.column_names])
