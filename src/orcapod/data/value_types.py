"""Which Python values a declared type takes: optional types (``T | None``) and the check of a
column's values against its type.

Values against a schema (``check_values``, called by ``conversion.columns_to_table`` and
``rows_to_table``, so for every source given a schema and every function output): a value is
taken only when it is of the column's type, by the rule function outputs follow
(``orcapod.functions.validation``): ``int`` takes ints (not bools), ``float`` takes ints and
floats, ``date`` takes dates but not datetimes, and so on; a ``Path`` column also takes
``str`` (a path written as text, as sources usually hold them) besides ``os.PathLike``
objects; a list item or dict value is ``None`` only when its type is ``T | None``
(``list[int | None]``: a ``list[int]`` holds ints). Anything else is a ``SchemaError`` naming
the column, row and value, never a silent conversion (Arrow would truncate ``2.999`` to ``2``
and a datetime to its date). The check looks at the set of value types of a column (one pass
in C), not at each value in Python, so it stays cheap for millions of rows.

``strip_optional`` / ``is_optional`` read ``T | None``; any other union is refused (a column
has one type).
"""

from __future__ import annotations

import datetime as dt
import os
import types
import typing
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial
from itertools import repeat
from operator import attrgetter, is_not
from pathlib import Path
from typing import Any

import numpy as np

from orcapod.data.timestamps import check_time_zones
from orcapod.errors import SchemaError
from orcapod.types import ArrayType
from orcapod.types.arrays import normalize_type

__all__ = ["check_values", "is_optional", "strip_optional"]


def is_optional(tp: Any) -> bool:
    """Whether ``tp`` is ``T | None``."""
    return _is_union(tp) and type(None) in typing.get_args(tp)


def strip_optional(tp: Any) -> Any:
    """``T | None`` -> ``T``; other types unchanged."""
    if not _is_union(tp):
        return tp
    args = tuple(a for a in typing.get_args(tp) if a is not type(None))
    if len(args) != 1:
        raise SchemaError(f"union type {tp!r} is not supported; only `T | None` is")
    return args[0]


def _is_union(tp: Any) -> bool:
    return isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union


# The value types each scalar type takes, and the subclasses it refuses (see the docstring)
_ACCEPTED: dict[Any, tuple[tuple[type, ...], tuple[type, ...]]] = {
    int: ((int, np.integer), (bool,)),
    float: ((int, float, np.integer, np.floating), (bool,)),
    bool: ((bool, np.bool_), ()),
    str: ((str,), ()),
    bytes: ((bytes, bytearray), ()),
    dt.datetime: ((dt.datetime,), ()),
    dt.date: ((dt.date,), (dt.datetime,)),
    dt.time: ((dt.time,), ()),
    dt.timedelta: ((dt.timedelta,), ()),
    Decimal: ((Decimal,), ()),
}


def _accepts(tp: Any, kind: type) -> bool:
    if isinstance(tp, ArrayType):
        return True  # checked by arrays_to_arrow, with the dtype and shape
    if tp in _ACCEPTED:
        accepted, refused = _ACCEPTED[tp]
        return issubclass(kind, accepted) and not issubclass(kind, refused)
    if isinstance(tp, type) and issubclass(tp, Path):
        return issubclass(kind, (os.PathLike, str))
    origin = typing.get_origin(tp)
    if origin in (list, Sequence, tuple):
        return issubclass(kind, (list, tuple))
    return origin not in (dict, Mapping) or issubclass(kind, Mapping)


def _first_mismatch(
    values: Sequence[Any], tp: Any, column: str, takes_none: bool = True
) -> tuple[int, Any, Any] | None:
    """(row, value, expected type) of the first value, or list item or dict entry of one,
    that ``tp`` does not take; ``None`` when all fit. ``None`` values are taken when
    ``takes_none`` (a column's own nulls are the caller's to check), list items and dict
    values only when their type is ``T | None``. Datetimes, at any depth, mixing naive and
    aware ones are a ``SchemaError`` (``timestamps.check_time_zones``; ``column`` names
    them, ``[]`` for items)."""
    takes_none = takes_none or is_optional(tp)
    tp = strip_optional(tp)
    kinds = set(map(type, values))
    if type(None) in kinds and not takes_none:
        return next(i for i, v in enumerate(values) if v is None), None, tp
    kinds.discard(type(None))
    refused = {kind for kind in kinds if not _accepts(tp, kind)}
    if refused:
        row = next(i for i, v in enumerate(values) if type(v) in refused)
        return row, values[row], tp
    if tp is dt.datetime:  # (the zones seen, in one pass in C; the message needs a value)
        zones = set(map(attrgetter("tzinfo"), filter(partial(is_not, None), values)))
        if None in zones and len(zones) > 1:
            check_time_zones(values, column)
    origin = typing.get_origin(tp)
    if origin not in (list, Sequence, tuple, dict, Mapping):
        return None
    is_dict = origin in (dict, Mapping)
    rows: list[int] = []
    items: list[Any] = []
    for i, value in enumerate(values):
        if value is None:
            continue
        if is_dict and not all(isinstance(k, str) for k in value):
            return i, value, tp
        entries = value.values() if is_dict else value
        items.extend(entries)
        rows.extend(repeat(i, len(entries)))
    item = typing.get_args(tp)[1 if is_dict else 0]
    hit = _first_mismatch(items, item, f"{column}[]", takes_none=False)
    return None if hit is None else (rows[hit[0]], hit[1], hit[2])


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def check_values(values: Sequence[Any], tp: Any, column: str) -> None:
    """Raise ``SchemaError`` naming the row and the value when a value of ``column`` is not
    one that ``tp`` takes (see the module docstring); ``None`` is left to the caller."""
    hit = _first_mismatch(values, normalize_type(tp), column)
    if hit is None:
        return
    row, value, expected = hit
    if value is None:
        name = _type_name(expected)
        fix = (
            f"declare the items as optional ({name} | None, e.g. list[{name} | None]) or "
            "remove the None items"
        )
    elif expected is int and isinstance(value, float):
        fix = "convert the values (int(v), round(v)) or declare the column as float"
    elif expected is dt.date and isinstance(value, dt.datetime):
        fix = "convert the values (v.date()) or declare the column as datetime"
    else:
        fix = f"make the values {_type_name(expected)} or change the column's type"
    raise SchemaError(
        f"column {column!r}, row {row}: expected {_type_name(expected)}, got "
        f"{type(value).__name__} {value!r:.80}; {fix}"
    )
