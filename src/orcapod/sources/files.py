"""Sources over files: CSV and Delta Lake tables.

Both read the data at construction, so a missing or unreadable file fails early with a clear
error, and their content hash is the hash of the data read (not of the path), so an edited
file always changes the identity. The default ``source_id`` is the file (or table directory)
name: stable across edits. Without a ``record_id_column`` a row's record id is its position
(``row_<i>``), so rows added at the end of a CSV file leave the old rows' ids as they were.

CSV column types. ``schema`` fixes the type of some columns (others are inferred by
``pyarrow.csv``); a CSV cell holds text, so a column may be typed ``int``, ``float``, ``bool``,
``str``, ``bytes``, ``datetime``, ``date``, ``time``, ``Decimal`` (each optionally ``| None``) or
``pathlib.Path``. A ``Path`` column is a file manifest: each cell names a file, stored as
orcapod's path type and identified by the file's content. Decision: a relative path in such a
column is taken relative to the CSV file's folder (a manifest names files next to it, whatever
the working directory of the process reading it), and an empty cell is a missing value
(``None``), never the current directory. Other types (lists, dicts, arrays) cannot be written
in a CSV cell and are refused with ``SchemaError`` at construction.

A Delta table is read in the order its files were written, each file's rows in order (see
``orcapod.sources.delta_read``), so appending to the table keeps the record ids of the old
rows; deleting, updating, compacting or Z-ordering rewrites files and moves their rows, so a
Delta table whose rows are ever rewritten needs a ``record_id_column`` for stable record ids.
A Delta table written by an orcapod database gives its numpy array columns back as arrays
(their type is in the Delta schema's field metadata, see ``orcapod.hashing.arrow_arrays``).
polars and deltalake are imported when a ``DeltaTableSource`` is built, not with this module,
so importing orcapod does not import them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.contexts import DataContext
from orcapod.data.conversion import python_to_arrow_type
from orcapod.data.value_types import strip_optional
from orcapod.databases.records import restore_arrays
from orcapod.errors import InputValidationError, SchemaError
from orcapod.hashing.arrow_arrays import ARRAY_METADATA_KEY
from orcapod.hashing.arrow_hashing import PATH_STRUCT_TYPE
from orcapod.sources.base import RootSource

if TYPE_CHECKING:
    import pyarrow.csv as pacsv

    from orcapod.sources import delta_read
else:
    pacsv = lazy_module("pyarrow.csv")
    delta_read = lazy_module("orcapod.sources.delta_read")

__all__ = ["CSVSource", "DeltaTableSource"]


class CSVSource(RootSource):
    """A source over a CSV file (read with ``pyarrow.csv``; ``schema`` — Python types or a
    ``pa.Schema`` — fixes column types)."""

    def __init__(
        self,
        file_path: str | Path,
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        record_id_column: str | None = None,
        source_id: str | None = None,
        schema: Mapping[str, Any] | pa.Schema | None = None,
        *,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        path = Path(file_path)
        if path.is_dir():
            raise InputValidationError(
                f"CSVSource: {str(path)!r} is a directory; pass the path of a CSV file in it"
            )
        if not path.is_file():
            raise InputValidationError(f"CSVSource: no such file {str(path)!r}")
        if isinstance(schema, pa.Schema):
            column_types: dict[str, pa.DataType] = {f.name: f.type for f in schema}
            path_columns: list[str] = []
        else:
            column_types, path_columns = _csv_column_types(schema or {})
        convert = pacsv.ConvertOptions(column_types=column_types, strings_can_be_null=False)
        try:
            table = pacsv.read_csv(path, convert_options=convert)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as err:
            raise InputValidationError(f"CSVSource: cannot read {str(path)!r}: {err}") from err
        if table.num_rows == 0:
            raise InputValidationError(
                f"CSVSource: {str(path)!r} has a header ({', '.join(table.column_names)}) but no "
                "rows; add rows, or build an empty source with ArrowTableSource and a schema"
            )
        table = table.cast(_large(table.schema))
        for name in path_columns:
            if name not in table.column_names:
                raise InputValidationError(
                    f"CSVSource: schema names column {name!r}, which {str(path)!r} does not "
                    f"have (columns: {table.column_names})"
                )
            index = table.column_names.index(name)
            table = table.set_column(
                index,
                pa.field(name, PATH_STRUCT_TYPE),
                _manifest_paths(table[name], path.absolute().parent),
            )
        self.file_path = path
        super().__init__(
            table,
            tag_columns,
            system_tag_columns,
            source_id=source_id if source_id is not None else path.stem,
            record_id_column=record_id_column,
            label=label,
            data_context=data_context,
        )

    def _type_fix(self, name: str, arrow_type: pa.DataType) -> str:
        if pa.types.is_null(arrow_type):
            return (
                "its cells are all empty, so nothing gives it a type: pass "
                f"schema={{{name!r}: str}} (or the type its values will have), or drop it"
            )
        return super()._type_fix(name, arrow_type)


class DeltaTableSource(RootSource):
    """A source over a Delta Lake table (its current version).

    Rows are read in the order their files were written, so appending keeps the record ids
    (``row_<i>``) of the old rows; deleting, updating, compacting (``optimize``) or
    Z-ordering the table rewrites files and renumbers their rows. Pass a
    ``record_id_column`` (a column of unique keys) for record ids that survive those too.
    """

    def __init__(
        self,
        delta_table_path: str | Path,
        tag_columns: str | Iterable[str] = (),
        system_tag_columns: str | Iterable[str] = (),
        record_id_column: str | None = None,
        source_id: str | None = None,
        *,
        storage_options: Mapping[str, str] | None = None,
        label: str | None = None,
        data_context: str | DataContext | None = None,
    ) -> None:
        location = str(delta_table_path)
        _check_local_table(location)
        table, delta_schema = delta_read.read_delta_table(location, storage_options)
        table = restore_arrays(_with_array_metadata(table.cast(_large(table.schema)), delta_schema))
        self.delta_table_path = location
        super().__init__(
            table,
            tag_columns,
            system_tag_columns,
            source_id=source_id if source_id is not None else Path(location.rstrip("/")).name,
            record_id_column=record_id_column,
            label=label,
            data_context=data_context,
        )


def _csv_column_types(schema: Mapping[str, Any]) -> tuple[dict[str, pa.DataType], list[str]]:
    """The ``pyarrow.csv`` column types of a ``CSVSource`` schema (Path columns are read as
    text), and the names of the Path columns."""
    types: dict[str, pa.DataType] = {}
    paths: list[str] = []
    for name, tp in schema.items():
        try:
            arrow_type = python_to_arrow_type(tp)
        except SchemaError as err:
            raise SchemaError(f"CSVSource: column {name!r}: {err}") from err
        if arrow_type.equals(PATH_STRUCT_TYPE):
            paths.append(name)
            types[name] = pa.large_string()
        elif pa.types.is_nested(arrow_type) or isinstance(arrow_type, pa.ExtensionType):
            raise SchemaError(
                f"CSVSource: column {name!r} is typed {strip_optional(tp)!r}, which a CSV cell "
                "cannot hold; use int, float, bool, str, bytes, datetime, date, time, Decimal "
                "or Path"
            )
        else:
            types[name] = arrow_type
    return types, paths


def _manifest_paths(column: pa.ChunkedArray, folder: Path) -> pa.Array:
    """Path structs of a CSV text column: relative paths joined to ``folder``, empty = null."""
    values = [
        None if text is None or text == "" else str(folder / text) for text in column.to_pylist()
    ]
    strings = pa.array(values, type=pa.large_string())
    return pa.StructArray.from_arrays(
        [strings], fields=[PATH_STRUCT_TYPE.field(0)], mask=strings.is_null()
    )


def _with_array_metadata(table: pa.Table, delta_schema: pa.Schema) -> pa.Table:
    """``table`` with the ``orcapod.array`` field metadata of the Delta schema (which polars
    does not carry over), so array columns an orcapod database wrote read back as arrays."""
    fields = []
    for field in table.schema:
        index = delta_schema.get_field_index(field.name)
        metadata = delta_schema.field(index).metadata if index >= 0 else None
        if metadata and ARRAY_METADATA_KEY in metadata:
            fields.append(field.with_metadata({ARRAY_METADATA_KEY: metadata[ARRAY_METADATA_KEY]}))
        else:
            fields.append(field)
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields))


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


def _check_local_table(location: str) -> None:
    """A local ``DeltaTableSource`` path must be a Delta table's directory."""
    if "://" in location:
        return
    path = Path(location)
    if path.is_file():
        raise InputValidationError(
            f"DeltaTableSource: {location!r} is a file; pass the directory of a Delta table "
            "(the folder holding _delta_log/)"
        )
    if path.is_dir() and not (path / "_delta_log").is_dir():
        raise InputValidationError(
            f"DeltaTableSource: {location!r} is a directory but not a Delta table (it has no "
            "_delta_log/); pass the table's own folder, or write one with deltalake first"
        )
    if not path.exists():
        raise InputValidationError(
            f"DeltaTableSource: no Delta table at {location!r} (no such directory)"
        )
