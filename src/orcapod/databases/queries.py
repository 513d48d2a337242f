"""Reads shared by every backend, so all of them answer the same way.

* **Constraints** (``get_records_with_column_value``) map a column to one value (equality) or
  to a list/tuple/set or a pyarrow/numpy array of values (``IN``). ``None`` matches null. Each
  value is converted to the column's type first, so a value of the wrong type is refused the
  same way on every backend (``normalize_constraints``; arrays only of the column's kind, see
  ``orcapod.databases.records``).
* **Answers**: the parts a read found (committed, pending) are concatenated, given every stored
  column (older rows read back as null for columns added later), projected, and the record id
  is dropped or renamed as asked; array columns come back as their in-memory types
  (``stored_result`` / ``finalize``). No matching row is ``None``, never an empty table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from orcapod._lazy import pc
from orcapod.databases.records import (
    WIDENING,
    as_arrow,
    concat_records,
    is_array,
    restore_arrays,
    value_kind,
)
from orcapod.errors import InputValidationError
from orcapod.types.columns import RECORD_ID

__all__ = [
    "Constraint",
    "constraint_mask",
    "filter_records",
    "finalize",
    "normalize_constraints",
    "resolve_columns",
    "stored_result",
    "with_columns",
]


@dataclass(frozen=True)
class Constraint:
    """One equality (``values`` of length 1) or IN test on a stored column, with the values
    already converted to the column's type; ``match_null`` adds ``OR column IS NULL``."""

    column: str
    values: pa.Array
    match_null: bool


def _constraint_values(value: object) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _constraint_array(name: str, value: object, dtype: pa.DataType) -> tuple[pa.Array, bool]:
    """The non-null values of one constraint converted to ``dtype``, and whether null was
    among them; arrays are cast vectorised (same kind of type only, see the docstring)."""
    if is_array(value):
        array = as_arrow(value)
        kind, target = value_kind(array.type), value_kind(dtype)
        if len(array) and kind != target and target not in WIDENING.get(kind, set()):
            raise InputValidationError(
                f"Constraint values for column {name!r} are an array of type {array.type}, "
                f"which does not match the column type {dtype}; pass values of that type."
            )
        match_null = array.null_count > 0
        if match_null:
            array = array.drop_null()
        try:
            return array.cast(dtype), match_null
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
            raise InputValidationError(
                f"Constraint values for column {name!r} cannot be converted to the column type "
                f"{dtype}: {err}"
            ) from err
    raw = _constraint_values(value)
    present = [v for v in raw if v is not None]
    try:
        values = pa.array(present, type=dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as err:
        raise InputValidationError(
            f"Constraint value(s) {present!r} for column {name!r} cannot be converted to the "
            f"column type {dtype}: {err}"
        ) from err
    return values, len(present) < len(raw)


def normalize_constraints(
    constraints: Mapping[str, object],
    schema: pa.Schema,
    record_id_column: str | None,
    path: Sequence[str],
) -> list[Constraint]:
    """Check constraint columns exist in ``schema`` and convert values to their types."""
    if not isinstance(constraints, Mapping):
        raise InputValidationError(
            f"Constraints must be a mapping of column name to value(s), got "
            f"{type(constraints).__name__}."
        )
    out = []
    for name, value in constraints.items():
        column = RECORD_ID if record_id_column is not None and name == record_id_column else name
        index = schema.get_field_index(column)
        if index < 0:
            raise InputValidationError(
                f"Constraint column {name!r} does not exist at path {tuple(path)!r} (columns: "
                f"{[n for n in schema.names if n != RECORD_ID]}); check the column name."
            )
        dtype = schema.field(index).type
        if pa.types.is_nested(dtype):
            raise InputValidationError(
                f"Constraint on column {name!r} of nested type {dtype} is not supported; "
                "constrain scalar columns only."
            )
        values, match_null = _constraint_array(name, value, dtype)
        out.append(Constraint(column, values, match_null=match_null))
    return out


def constraint_mask(table: pa.Table, constraints: Sequence[Constraint]) -> pa.ChunkedArray | None:
    """Rows of ``table`` matching every constraint (a missing column counts as null)."""
    mask = None
    for constraint in constraints:
        if constraint.column in table.column_names:
            column = table.column(constraint.column)
            test = pc.is_in(column, value_set=constraint.values)
            if constraint.match_null:
                test = pc.or_(test, pc.is_null(column))
        else:
            test = pa.chunked_array(
                [pa.array([constraint.match_null] * table.num_rows, pa.bool_())]
            )
        mask = test if mask is None else pc.and_(mask, test)
    return mask


def filter_records(table: pa.Table | None, constraints: Sequence[Constraint]) -> pa.Table | None:
    if table is None or not constraints:
        return table
    mask = constraint_mask(table, constraints)
    return table if mask is None else table.filter(mask)


def resolve_columns(
    columns: Sequence[str] | None,
    schema: pa.Schema,
    record_id_column: str | None,
    path: Sequence[str],
) -> list[str] | None:
    """Stored column names for a projection (``None``: all), checked against ``schema``."""
    if columns is None:
        return None
    if isinstance(columns, str):
        raise InputValidationError(
            f"columns must be a list of names, got the string {columns!r}; write [{columns!r}]."
        )
    out = [RECORD_ID]
    for name in columns:
        column = RECORD_ID if name == record_id_column else name
        if schema.get_field_index(column) < 0:
            raise InputValidationError(
                f"Column {name!r} does not exist at path {tuple(path)!r} (columns: "
                f"{[n for n in schema.names if n != RECORD_ID]}); check the column name."
            )
        if column not in out:
            out.append(column)
    return out


def with_columns(table: pa.Table, schema: pa.Schema, names: Iterable[str]) -> pa.Table:
    """``table`` with every column of ``names`` it lacks added as nulls of its ``schema`` type."""
    for name in names:
        if name not in table.column_names:
            dtype = schema.field(name).type
            table = table.append_column(pa.field(name, dtype), pa.nulls(table.num_rows, dtype))
    return table


def finalize(
    table: pa.Table | None,
    record_id_column: str | None,
    columns: Sequence[str] | None = None,
) -> pa.Table | None:
    """Turn stored rows into a read result: ``None`` when there are none; the projection
    applied; ``__record_id`` renamed to ``record_id_column`` or dropped."""
    if table is None or table.num_rows == 0:
        return None
    if columns is not None:
        table = table.select(list(columns))
    table = restore_arrays(table)
    if record_id_column is None:
        return table.drop_columns([RECORD_ID])
    if record_id_column != RECORD_ID and record_id_column in table.column_names:
        raise InputValidationError(
            f"record_id_column {record_id_column!r} clashes with a stored column of that name; "
            "choose another name."
        )
    names = [record_id_column if n == RECORD_ID else n for n in table.column_names]
    return table.rename_columns(names)


def stored_result(
    parts: Sequence[pa.Table | None],
    schema: pa.Schema,
    record_id_column: str | None,
    selected: Sequence[str] | None,
) -> pa.Table | None:
    """One read's answer from its parts (committed, pending): concatenated, with every
    column of ``schema`` (or the ``selected`` ones), the record id named as asked; None when
    no row matched."""
    rows = [p for p in parts if p is not None and p.num_rows]
    table = concat_records(rows)
    if table is None:
        return None
    names = schema.names if selected is None else selected
    table = with_columns(table, schema, names)
    return finalize(table, record_id_column, names)
