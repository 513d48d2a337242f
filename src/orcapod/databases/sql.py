"""SQL text for the Delta backend's pushed-down queries (deltalake ``QueryBuilder``, i.e.
Apache DataFusion SQL).

Values are rendered as typed literals of the stored column type (``arrow_cast`` / ``CAST``),
so a comparison means the same thing as the Arrow ``is_in`` used for pending rows: no implicit
widening of a float32 column to double, no string-to-number coercion. Short value lists become
``IN (...)``; long ones (``> INLINE_LIMIT``) become a semi-join against a ``VALUES`` list, which
DataFusion plans far faster than a long ``IN`` list (measured: 1,000 ids against 1M rows in
~70 ms instead of ~300 ms).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from orcapod.databases.queries import Constraint
from orcapod.databases.sql_types import quote_identifier, quoted_texts
from orcapod.errors import InputValidationError

__all__ = ["INLINE_LIMIT", "in_predicate", "select_list", "where_clause"]

INLINE_LIMIT = 64

_INT_NAMES = {8: "Int8", 16: "Int16", 32: "Int32", 64: "Int64"}


def _literal(value: object, dtype: pa.DataType) -> str:
    """A SQL literal of ``value`` (already converted to ``dtype``) for the types that
    :func:`_literals` does not render vectorised."""
    t = pa.types
    if t.is_boolean(dtype):
        return "TRUE" if value else "FALSE"
    if t.is_float32(dtype):
        return f"CAST('{value!r}' AS REAL)"
    if t.is_float64(dtype):
        return f"CAST('{value!r}' AS DOUBLE)"
    if t.is_decimal(dtype):
        return f"CAST('{value}' AS DECIMAL({dtype.precision},{dtype.scale}))"
    if t.is_date32(dtype):
        assert isinstance(value, datetime.date)
        return f"CAST('{value.isoformat()}' AS DATE)"
    if t.is_binary(dtype):
        assert isinstance(value, bytes)
        return f"X'{value.hex()}'"
    raise InputValidationError(
        f"Constraints on columns of type {dtype} are not supported; constrain a bool, integer, "
        "float, decimal, string, binary, date or timestamp column."
    )


def _text(value: str) -> pa.Scalar:
    """A string scalar for a compute function (typed: inferring a type loads pandas)."""
    return pa.scalar(value, pa.string())


def _wrapped(texts: pa.Array, before: str, after: str) -> pa.Array:
    """Each of ``texts`` between ``before`` and ``after``."""
    return pc.binary_join_element_wise(_text(before), texts, _text(after), _text(""))


def _literals(values: pa.Array) -> pa.Array:
    """SQL literals of ``values`` as a string array; vectorised for the common id types."""
    dtype = values.type
    if pa.types.is_string(dtype):
        return quoted_texts(values)
    if pa.types.is_signed_integer(dtype):
        text = pc.cast(values, pa.string())
        return _wrapped(text, "arrow_cast(", f", '{_INT_NAMES[dtype.bit_width]}')")
    if pa.types.is_timestamp(dtype):
        text = pc.cast(values.cast(pa.int64()), pa.string())
        zone = 'Some("UTC")' if dtype.tz else "None"
        return _wrapped(text, "arrow_cast(", f", 'Timestamp(Microsecond, {zone})')")
    return pa.array([_literal(v, dtype) for v in values.to_pylist()], type=pa.string())


def _join(texts: pa.Array, separator: str) -> str:
    as_list = pa.ListArray.from_arrays(pa.array([0, len(texts)], pa.int32()), texts)
    joined: str = pc.binary_join(as_list, _text(separator))[0].as_py()
    return joined


def in_predicate(column: str, values: pa.Array) -> str:
    """``column`` equals one of ``values`` (which hold no nulls)."""
    ident = quote_identifier(column)
    literals = _literals(values)
    if len(literals) == 0:
        return "FALSE"
    if len(literals) == 1:
        return f"{ident} = {literals[0].as_py()}"
    if len(literals) <= INLINE_LIMIT:
        return f"{ident} IN ({_join(literals, ', ')})"
    rows = _join(_wrapped(literals, "(", ")"), ", ")
    return f"{ident} IN (SELECT column1 FROM (VALUES {rows}))"


def where_clause(constraints: Sequence[Constraint], stored: pa.Schema) -> str | None:
    """The WHERE condition for ``constraints`` on a table with schema ``stored``, or ``None``
    when no stored row can match (a constrained column is absent, so it reads as null, and
    the constraint does not accept null)."""
    parts = []
    for constraint in constraints:
        if stored.get_field_index(constraint.column) < 0:
            if constraint.match_null:
                continue
            return None
        test = in_predicate(constraint.column, constraint.values)
        if constraint.match_null:
            test = f"({test} OR {quote_identifier(constraint.column)} IS NULL)"
        parts.append(test)
    return " AND ".join(parts) if parts else "TRUE"


def select_list(columns: Iterable[str] | None, stored: pa.Schema) -> str:
    """The SELECT list for a projection (``None``: every column), keeping only the columns the
    stored table has (the others are added as nulls by the caller)."""
    if columns is None:
        return "*"
    present = [quote_identifier(c) for c in columns if stored.get_field_index(c) >= 0]
    return ", ".join(present)
