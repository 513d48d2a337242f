"""Sources over files: CSV and Delta Lake tables.

Both read the data at construction, so a missing or unreadable file fails early with a clear
error, and their content hash is the hash of the data read (not of the path), so an edited
file always changes the identity. The default ``source_id`` is the file (or table directory)
name: stable across edits, so adding rows to a file keeps the entry ids of the old rows.

Delta tables are read through polars (``pl.read_delta``): with deltalake 1.6.6 and pyarrow 26,
reading through ``DeltaTable.to_pyarrow_*`` makes the process abort at exit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
from deltalake.exceptions import DeltaError

from orcapod.data.conversion import schema_to_arrow
from orcapod.errors import InputValidationError
from orcapod.sources.base import RootSource

__all__ = ["CSVSource", "DeltaTableSource"]


class CSVSource(RootSource):
    """A source over a CSV file (read with ``pyarrow.csv``; ``schema`` fixes column types)."""

    def __init__(
        self,
        file_path: str | Path,
        tag_columns: Iterable[str] = (),
        *,
        schema: Mapping[str, Any] | None = None,
        source_id: str | None = None,
        record_id_column: str | None = None,
        label: str | None = None,
    ) -> None:
        path = Path(file_path)
        if not path.is_file():
            raise InputValidationError(f"CSVSource: no such file {str(path)!r}")
        convert = pacsv.ConvertOptions(
            column_types=schema_to_arrow(schema) if schema else None,
            strings_can_be_null=False,
        )
        try:
            table = pacsv.read_csv(path, convert_options=convert)
        except (pa.ArrowInvalid, OSError) as err:
            raise InputValidationError(f"CSVSource: cannot read {str(path)!r}: {err}") from err
        table = table.cast(_large(table.schema))
        self.file_path = path
        super().__init__(
            table,
            tag_columns,
            source_id=source_id if source_id is not None else path.stem,
            record_id_column=record_id_column,
            label=label,
        )


class DeltaTableSource(RootSource):
    """A source over a Delta Lake table (its current version)."""

    def __init__(
        self,
        delta_table_path: str | Path,
        tag_columns: Iterable[str] = (),
        *,
        source_id: str | None = None,
        record_id_column: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        label: str | None = None,
    ) -> None:
        location = str(delta_table_path)
        try:
            frame = pl.read_delta(location, storage_options=dict(storage_options or {}) or None)
        except (OSError, pl.exceptions.PolarsError, DeltaError) as err:
            raise InputValidationError(
                f"DeltaTableSource: cannot read a Delta table at {location!r}: {err}"
            ) from err
        table = frame.to_arrow()
        table = table.cast(_large(table.schema))
        self.delta_table_path = location
        super().__init__(
            table,
            tag_columns,
            source_id=source_id if source_id is not None else Path(location.rstrip("/")).name,
            record_id_column=record_id_column,
            label=label,
        )


def _large(schema: pa.Schema) -> pa.Schema:
    """Normalise string/binary views and small offsets to large types."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_string(t) or pa.types.is_string_view(t):
            t = pa.large_string()
        elif pa.types.is_binary(t) or pa.types.is_binary_view(t):
            t = pa.large_binary()
        fields.append(pa.field(f.name, t, f.nullable))
    return pa.schema(fields)
