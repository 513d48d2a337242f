"""``--where COLUMN=VALUE``: choosing rows by tag value, shared by ``verify``, ``lineage`` and
``store recompute``.

A value is text on the command line; it is converted to the type of its tag column - from
the loaded pipeline's node (``verify``, ``recompute``, ``lineage --pipeline-file``) or from
the store's catalog (``lineage`` on a store) - by Arrow's cast from text: ``--where id=3``
selects the int ``3`` of an ``int`` column and the text ``"3"`` of a ``str`` column, so
subject ids such as ``007``, ``1`` or ``true`` are selected as written. ``bool`` takes
``true`` / ``false`` / ``1`` / ``0``; ``date`` ``2024-01-31``. A value that does not convert
is refused, naming the column's type.

Decision: the column's type decides, never the look of the value (a value parsed as JSON
would turn the text tag ``"1"`` into the number 1 and find nothing). A column whose type is
not known (not in the catalog, or a type with no text form) keeps the text as given.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from orcapod.cli.options import fail
from orcapod.data.conversion import python_to_arrow_type

__all__ = ["arrow_types", "catalog_types", "parse_where", "single_values"]

#: the catalog's type names (``orcapod.functions.validation.type_name``) that have a text form
_CATALOG_NAMES: dict[str, Any] = {
    "int": int,
    "str": str,
    "float": float,
    "bool": bool,
    "date": datetime.date,
    "datetime": datetime.datetime,
}


def arrow_types(tag_schema: Mapping[str, Any]) -> dict[str, pa.DataType | None]:
    """Column -> Arrow type, from a node's tag schema (column -> Python type)."""
    out: dict[str, pa.DataType | None] = {}
    for column, tp in tag_schema.items():
        try:
            out[column] = python_to_arrow_type(tp)
        except (TypeError, ValueError):
            out[column] = None
    return out


def catalog_types(tag_schema: Mapping[str, str]) -> dict[str, pa.DataType | None]:
    """Column -> Arrow type, from a catalog's tag schema (column -> type name)."""
    out: dict[str, pa.DataType | None] = {}
    for column, name in tag_schema.items():
        parts = [p.strip() for p in str(name).split("|") if p.strip() != "None"]
        tp = _CATALOG_NAMES.get(parts[0]) if len(parts) == 1 else None
        out[column] = None if tp is None else python_to_arrow_type(tp)
    return out


def _convert(column: str, text: str, arrow_type: pa.DataType | None) -> Any:
    if arrow_type is None or pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return text
    try:
        return pa.array([text], pa.string()).cast(arrow_type).to_pylist()[0]
    except pa.ArrowNotImplementedError as err:
        raise fail(
            f"--where {column}={text}: rows cannot be chosen by a {arrow_type} column; "
            "choose them by another tag column"
        ) from err
    except (pa.ArrowInvalid, ValueError) as err:
        raise fail(
            f"--where {column}={text}: the tag column {column!r} holds {arrow_type} values "
            f"and {text!r} is not one; give a value of that type (bool: true or false, date: "
            "2024-01-31)"
        ) from err


def parse_where(
    items: Sequence[str] | None, types: Mapping[str, pa.DataType | None] | None = None
) -> dict[str, list[Any]]:
    """``["id=3", "id=4", "name=ada"]`` -> ``{"id": [3, 4], "name": ["ada"]}``, each value
    converted to its column's type in ``types`` (column -> Arrow type; module docstring)."""
    out: dict[str, list[Any]] = {}
    for item in items or []:
        column, sep, text = item.partition("=")
        if not sep or not column:
            raise fail(f"--where {item!r}: write COLUMN=VALUE (a tag column and its value)")
        out.setdefault(column, []).append(_convert(column, text, (types or {}).get(column)))
    return out


def single_values(where: Mapping[str, list[Any]]) -> dict[str, Any]:
    """``parse_where``'s result for a command that names one row: one value per column."""
    repeated = sorted(c for c, values in where.items() if len(values) > 1)
    if repeated:
        raise fail(
            f"--where names {', '.join(repeated)} more than once; this command takes one row: "
            "give each tag column once"
        )
    return {column: values[0] for column, values in where.items()}
