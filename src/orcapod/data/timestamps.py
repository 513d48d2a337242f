"""Dates and times in sources: one stored form for a ``datetime`` column, whatever holds it.

The rule: a ``datetime`` column is ``timestamp[us, tz=UTC]`` (``UTC_TIMESTAMP``) wherever it
comes from - Python values, pandas, polars, Arrow, CSV, Delta or SQL - which is also how a
function's ``datetime`` outputs are stored. So the same instants give the same stored values
and the same hashes in every source (a timestamp's time zone is part of its hashed type, see
``orcapod.hashing.arrow_canonical``).

* A zoned value is converted to UTC: the instant is kept, its zone is not, so a function sees
  ``when.hour`` in UTC and converts with ``when.astimezone(zone)`` for a local time. Keeping
  each source's zone instead would make a zoned column differ from the same instants typed in
  as Python values or returned by a function, and a column can hold one zone only.
* A naive value (no time zone) is taken as UTC: its wall-clock reading is kept and labelled
  UTC (``2024-01-01 12:00`` -> ``12:00 UTC``), so ``.astimezone()`` on it assumes UTC. This
  is the SQL sources' rule too; naive values that are local times need their zone first.
* A source column mixing naive and time-zone-aware values is a ``SchemaError`` naming it
  (``check_time_zones``): taking the naive ones as UTC next to zoned ones is almost always a
  data-entry mistake, and pandas and polars refuse such a column too. Sources check it while
  reading Python values (``DictSource``, ``ListSource``, pandas ``object`` columns); function
  outputs are not checked across rows, since each returned value is one instant on its own.
* Values finer than a microsecond (pandas and polars hold nanoseconds) are a ``SchemaError``
  rather than rounded: Python datetimes hold microseconds, and orcapod never rounds silently.

``with_utc_timestamps`` brings a table to this form (every source's table goes through it in
``RootSource``): one Arrow cast per timestamp column, also for timestamps in lists and dict
values; a table already in the form is returned as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from orcapod.errors import SchemaError

__all__ = ["UTC_TIMESTAMP", "check_time_zones", "with_utc_timestamps"]

#: The one Arrow type of a ``datetime`` column
UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")


def _utc_type(t: pa.DataType) -> pa.DataType:
    """``t`` with every timestamp in it (also in lists and dict values) as ``UTC_TIMESTAMP``."""
    if pa.types.is_timestamp(t):
        return UTC_TIMESTAMP
    if isinstance(t, pa.BaseExtensionType):
        return t
    if pa.types.is_map(t):
        return pa.map_(t.key_field, t.item_field.with_type(_utc_type(t.item_type)))
    if pa.types.is_large_list(t):
        return pa.large_list(t.value_field.with_type(_utc_type(t.value_type)))
    if pa.types.is_list(t):
        return pa.list_(t.value_field.with_type(_utc_type(t.value_type)))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(t.value_field.with_type(_utc_type(t.value_type)), t.list_size)
    return t


def with_utc_timestamps(table: pa.Table) -> pa.Table:
    """The table with every timestamp (also in lists and dict values) as ``UTC_TIMESTAMP``:
    zoned values converted to UTC, naive ones taken as UTC (module docstring)."""
    for i, field in enumerate(table.schema):
        target = _utc_type(field.type)
        if target.equals(field.type):
            continue
        try:
            column = table.column(i).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise SchemaError(
                f"column {field.name!r} ({field.type}) cannot be stored as {UTC_TIMESTAMP}, the "
                f"type of datetimes ({err}); round its values to microseconds first, e.g. "
                f"df[{field.name!r}].dt.floor('us') in pandas or "
                f"pl.col({field.name!r}).dt.cast_time_unit('us') in polars"
            ) from err
        table = table.set_column(i, field.with_type(target), column)
    return table


def check_time_zones(values: Iterable[Any], column: str) -> None:
    """Raise ``SchemaError`` when the datetimes among ``values`` mix naive and time-zone-aware
    ones (module docstring); other values are ignored."""
    first: dict[bool, dt.datetime] = {}
    for value in values:
        if isinstance(value, dt.datetime):
            first.setdefault(value.utcoffset() is None, value)
            if len(first) == 2:
                raise SchemaError(
                    f"column {column!r} mixes naive datetimes (no time zone, e.g. "
                    f"{first[True]!r}) with time-zone-aware ones (e.g. {first[False]!r});"
                    " orcapod would take the naive ones as UTC. Give every value its time zone "
                    "(v.replace(tzinfo=ZoneInfo(...)) for a naive local time, "
                    "series.dt.tz_localize(...) in pandas), or make them all naive"
                )
