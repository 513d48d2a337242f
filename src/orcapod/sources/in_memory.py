"""Sources over in-memory data: Arrow tables, lists of dicts, plain lists, data frames.

Types come from the data unless a schema is given (see ``orcapod.data.conversion``); a column
of Python objects that is not one of the supported types is a ``SchemaError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa

from orcapod.data.conversion import infer_schema, rows_to_table, schema_to_arrow
from orcapod.data.frames import from_pandas, from_polars
from orcapod.errors import InputValidationError
from orcapod.hashing.function_identity import function_code_hash
from orcapod.sources.base import RootSource

__all__ = ["ArrowTableSource", "DataFrameSource", "DictSource", "ListSource"]


class ArrowTableSource(RootSource):
    """A source over a ``pyarrow.Table`` (or RecordBatch)."""

    def __init__(
        self,
        table: pa.Table | pa.RecordBatch,
        tag_columns: Iterable[str] = (),
        *,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if not isinstance(table, pa.Table):
            raise InputValidationError(
                f"ArrowTableSource needs a pyarrow Table, got {type(table).__name__}"
            )
        super().__init__(
            table, tag_columns, source_id=source_id, record_id_column=record_id_column, label=label
        )


class DictSource(RootSource):
    """A source over a collection of row dicts.

    ``data_schema`` (a mapping of Python types, or a ``pa.Schema``) fixes column types; it is
    required when ``data`` is empty or a column holds only ``None``.
    """

    def __init__(
        self,
        data: Collection[Mapping[str, Any]],
        tag_columns: Iterable[str] = (),
        *,
        data_schema: Mapping[str, Any] | pa.Schema | None = None,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        rows = list(data)
        if any(not isinstance(r, Mapping) for r in rows):
            raise InputValidationError(
                "DictSource data must be a collection of dicts (one per row)"
            )
        if isinstance(data_schema, pa.Schema):
            table = pa.Table.from_pylist(rows, schema=data_schema)
        else:
            if not rows and not data_schema:
                raise InputValidationError(
                    "DictSource got no rows and no data_schema, so it has no columns; pass "
                    "data_schema={'col': type, ...} for an empty source"
                )
            schema = infer_schema(rows, overrides=data_schema)
            table = rows_to_table(rows, schema) if rows else schema_to_arrow(schema).empty_table()
        super().__init__(
            table, tag_columns, source_id=source_id, record_id_column=record_id_column, label=label
        )


class ListSource(RootSource):
    """A source over a plain list: each element becomes the packet ``{name: element}``.

    The tag is ``{"element_index": i}`` unless ``tag_function(element, i) -> dict`` is given.
    The tag function's code is part of the source's identity.
    """

    def __init__(
        self,
        name: str,
        data: Sequence[Any],
        tag_function: Callable[[Any, int], Mapping[str, Any]] | None = None,
        *,
        source_id: str | None = None,
        label: str | None = None,
    ) -> None:
        rows: list[dict[str, Any]] = []
        for i, element in enumerate(data):
            tag = dict(tag_function(element, i)) if tag_function else {"element_index": i}
            if name in tag:
                raise InputValidationError(
                    f"tag_function returned the key {name!r}, which is the packet column name"
                )
            rows.append({**tag, name: element})
        if not rows:
            raise InputValidationError("ListSource needs at least one element")
        tag_columns = [k for k in rows[0] if k != name]
        self._tag_function_hash = function_code_hash(tag_function) if tag_function else None
        super().__init__(
            rows_to_table(rows, infer_schema(rows)), tag_columns, source_id=source_id, label=label
        )

    def identity_structure(self) -> Any:
        return {**super().identity_structure(), "tag_function": self._tag_function_hash}


class DataFrameSource(RootSource):
    """A source over a pandas or polars DataFrame (object columns of Paths or numpy arrays and
    polars ``Array`` columns included, see ``orcapod.data.frames``)."""

    def __init__(
        self,
        data: pd.DataFrame | pl.DataFrame,
        tag_columns: str | Iterable[str] = (),
        *,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        if isinstance(data, pl.DataFrame):
            table = from_polars(data)
        elif isinstance(data, pd.DataFrame):
            table = from_pandas(data)
        else:
            raise InputValidationError(
                f"DataFrameSource needs a pandas or polars DataFrame, got {type(data).__name__}"
            )
        if isinstance(tag_columns, str):
            tag_columns = [tag_columns]
        super().__init__(
            table, tag_columns, source_id=source_id, record_id_column=record_id_column, label=label
        )
