"""Type aliases for annotating code that calls orcapod.

``DataType`` is a Python type expression as a ``Schema`` holds it (``int``, ``list[str]``,
``float | None``); ``SchemaLike`` any mapping of column name to such types. ``DataValue`` is
a value a packet column may hold, ``TagValue`` one a tag column may hold, ``PacketLike`` a
row given as a dict. ``PathLike`` / ``PathSet`` are one or several file paths.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Mapping
from decimal import Decimal
from types import UnionType
from typing import Any, TypeAlias

__all__ = [
    "DataType",
    "DataValue",
    "PacketLike",
    "PathLike",
    "PathSet",
    "SchemaLike",
    "TagValue",
]

DataType: TypeAlias = type | UnionType
SchemaLike: TypeAlias = Mapping[str, Any]
PathLike: TypeAlias = str | os.PathLike[str]
PathSet: TypeAlias = PathLike | Collection[PathLike | None]
TagValue: TypeAlias = (
    int | float | str | bool | dt.date | dt.datetime | dt.time | Collection[Any] | None
)
DataValue: TypeAlias = (
    int
    | float
    | str
    | bool
    | bytes
    | Decimal
    | dt.date
    | dt.datetime
    | dt.time
    | dt.timedelta
    | os.PathLike[str]
    | Collection[Any]
    | Mapping[str, Any]
    | None
)
PacketLike: TypeAlias = Mapping[str, DataValue]
