"""Cheap, precomputed checks of Python values against schema types, and type compatibility.

Output values. A packet function's return values must match its output schema, but checking
them by building an Arrow array per packet costs tens of microseconds. Instead, for every
output key a *coercer* is compiled once from the declared type: a small closure that returns
the value or raises ``TypeError`` describing the mismatch. The common scalar cases cost one
``type(v) is T`` test.

Stored form. The value a coercer returns is the value the store gives back for it: the one a
downstream function receives, whether the pods run standalone (``f.pod(stream)``, values
passed on in memory) or in a pipeline (values read back from the store), and the one a rerun
reproduces. Where the Arrow round trip changes a Python value, the coercer makes that change
itself, decided once per type (from its columns' Arrow type,
``orcapod.data.conversion.python_to_arrow_type``), so other types cost nothing more:

* ``datetime`` (stored as a UTC timestamp): an aware value is converted to UTC with the time
  zone Arrow gives back (``ZoneInfo("UTC")``) - the same instant, so ``.hour`` is the UTC
  hour in both modes; a naive value is taken as UTC (``orcapod.data.conversion``);
* ``Decimal`` (stored as ``decimal128(38, 18)``): rescaled to 18 places, so ``Decimal("0.5")``
  becomes ``Decimal("0.500000000000000000")`` (equal, but it prints with the stored scale); a
  value the column cannot hold exactly (more than 18 places, more than 20 digits before the
  point, NaN, infinity) is refused here rather than when it is stored;
* ``time``: a time zone (which Arrow drops) is dropped;
* ``str``/``bytes``/``date``/``Path``/``datetime``/``timedelta`` subclasses (``StrEnum``
  members, ``pandas.Timestamp``, ``pandas.Timedelta``): the plain type, as stored (pandas
  values lose their nanoseconds);
* numpy arrays: a read-only array in native byte order and C order (an ``ndarray`` subclass
  becomes a plain ``ndarray``; a masked array is refused, its mask cannot be stored). A
  downstream function that modifies its input array in place fails in both modes alike,
  instead of silently changing the upstream result;
* ``int``/``float``/``bool`` values other than the exact type (numpy scalars, ``IntEnum``
  members) become the exact type.

A test keeps every one of these equal to the actual Arrow round trip.

What each type accepts (anything else is rejected):

* ``int``: ``int`` (not ``bool``) and numpy integers (converted to ``int``);
* ``float``: ``float``, ``int`` (not ``bool``) and numpy numbers (converted to ``float``);
* ``bool``: ``bool`` and ``numpy.bool_``; ``str``: ``str``; ``bytes``: ``bytes``/``bytearray``;
* ``datetime``, ``date`` (not a ``datetime``), ``time``, ``timedelta``, ``Decimal``: instances
  (a ``Decimal`` that fits the stored scale and precision);
* ``Path``: ``os.PathLike`` objects (converted to ``Path``);
* ``list[T]``: a list or tuple whose items are ``T`` (converted to a list);
* ``dict[str, T]``: a mapping with ``str`` keys and ``T`` values (converted to a dict);
* ``ArrayType`` (``NDArray[...]``, ``Annotated[..., Shape(...)]``): a ``numpy.ndarray`` of
  exactly the declared dtype (any byte order) and shape; no silent casts;
* ``T | None``: None or a ``T``.

Output names (``check_output_names``), checked when a pod is applied to a stream: an output
key may not be named like one of the input's tag columns (the pod passes each row's tag
through, so the output row would hold the name twice, as tag and as packet, and its table
could not be read back) nor start with ``_`` (reserved for system tags, source info and
meta columns).

Input compatibility (``is_compatible``), used when a pod is applied to a stream: a column of
type ``incoming`` may feed a parameter of type ``expected`` when the types are equal, when
``expected`` is ``T | None`` and ``incoming`` is ``T`` or ``T | None``, when ``expected`` is
``float`` and ``incoming`` is ``int``, when both are arrays and every array of ``incoming``'s
type is one of ``expected``'s (``np.ndarray`` takes any array; a fixed dimension takes only
that size), and element-wise for ``list``/``dict``. A nullable column never feeds a
non-optional parameter (its nulls would reach the function).
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.data.conversion import python_to_arrow_type
from orcapod.data.value_types import is_optional, strip_optional
from orcapod.errors import InputValidationError
from orcapod.types import ArrayType
from orcapod.types.arrays import normalize_type
from orcapod.types.columns import DATAGRAM_PREFIX

__all__ = ["Coercer", "check_output_names", "is_compatible", "make_coercer", "type_name"]

Coercer = Callable[[Any], Any]


def type_name(tp: Any) -> str:
    if isinstance(tp, ArrayType):
        return repr(tp)
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def _fail(value: Any, tp: Any) -> TypeError:
    return TypeError(f"expected {type_name(tp)}, got {type(value).__name__} {value!r:.80}")


def _int(v: Any) -> Any:
    if type(v) is int:
        return v
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return int(v)
    raise _fail(v, int)


def _float(v: Any) -> Any:
    if type(v) is float:
        return v
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    raise _fail(v, float)


def _bool(v: Any) -> Any:
    if type(v) is bool:
        return v
    if isinstance(v, np.bool_):
        return bool(v)
    raise _fail(v, bool)


def _str(v: Any) -> Any:
    if type(v) is str:
        return v
    if isinstance(v, str):  # a StrEnum member, ...: its text, as stored
        return str.__str__(v)
    raise _fail(v, str)


def _bytes(v: Any) -> Any:
    if type(v) is bytes:
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(memoryview(v))
    raise _fail(v, bytes)


def _date(v: Any) -> Any:
    if type(v) is dt.date:
        return v
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return dt.date(v.year, v.month, v.day)
    raise _fail(v, dt.date)


_PATH = type(Path())


def _path(v: Any) -> Any:
    if type(v) is _PATH:
        return v
    if isinstance(v, os.PathLike):
        return Path(v)
    raise _fail(v, Path)


def _via_arrow(tp: Any, arrow_type: pa.DataType) -> Coercer:
    """The value the store gives back, by an actual Arrow round trip (about 20 us a value):
    for the rare values a Python rule does not cover (pandas timestamps and timedeltas)."""

    def stored(v: Any) -> Any:
        try:
            return pa.scalar(v, type=arrow_type).as_py()
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as err:
            raise TypeError(
                f"{type(v).__name__} {v!r:.80} cannot be stored as {type_name(tp)} ({err})"
            ) from err

    return stored


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NO_TIME = dt.timedelta(0)


def _datetime(arrow_type: pa.DataType) -> Coercer:
    """A ``datetime`` as its UTC timestamp column gives it back: the same instant in the time
    zone Arrow's reads give (a naive value taken as UTC)."""
    tp = dt.datetime
    via_arrow = _via_arrow(tp, arrow_type)
    zone = pa.scalar(_EPOCH, type=arrow_type).as_py().tzinfo  # the tzinfo reads give

    def aware(v: Any) -> Any:
        if type(v) is dt.datetime:
            if not v.fold:  # a UTC value in ``zone`` is already in stored form
                if v.tzinfo is zone:
                    return v
                if v.tzinfo is dt.UTC:
                    return _wall_clock(v, zone)
            return zone.fromutc(_wall_clock(v, zone) - (v.utcoffset() or _NO_TIME))
        if isinstance(v, dt.datetime):
            return via_arrow(v)
        raise _fail(v, tp)

    return aware


def _wall_clock(v: dt.datetime, tzinfo: dt.tzinfo | None) -> dt.datetime:
    """``v``'s date and time with ``tzinfo`` and ``fold`` 0 (three times faster than
    ``v.replace(tzinfo=...)``)."""
    return dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo)


def _time(v: Any) -> Any:
    """A ``time`` as stored: Arrow keeps neither its time zone nor ``fold``."""
    if type(v) is dt.time and v.tzinfo is None and not v.fold:
        return v
    if isinstance(v, dt.time):
        return dt.time(v.hour, v.minute, v.second, v.microsecond)
    raise _fail(v, dt.time)


def _timedelta(arrow_type: pa.DataType) -> Coercer:
    tp = dt.timedelta
    via_arrow = _via_arrow(tp, arrow_type)

    def timedelta(v: Any) -> Any:
        if type(v) is dt.timedelta:
            return v
        if isinstance(v, dt.timedelta):  # pandas.Timedelta: as Arrow truncates it
            return via_arrow(v)
        raise _fail(v, tp)

    return timedelta


def _decimal(arrow_type: pa.DataType) -> Coercer:
    """A ``Decimal`` rescaled to its column's scale; one the column cannot hold exactly is
    refused, as storing it would be."""
    tp = Decimal
    precision, scale = arrow_type.precision, arrow_type.scale
    quantum = Decimal(1).scaleb(-scale)
    zero = Decimal(0).scaleb(-scale)  # Arrow has no negative zero
    context = decimal.Context(prec=precision, traps=[decimal.Inexact, decimal.InvalidOperation])

    def rescale(v: Any) -> Any:
        if not isinstance(v, Decimal):
            raise _fail(v, tp)
        try:
            stored = v.quantize(quantum, context=context)
            if not stored.is_finite():
                raise decimal.InvalidOperation(f"{v} is not finite")
        except decimal.DecimalException as err:
            raise TypeError(
                f"{v!r:.80} cannot be stored as decimal({precision}, {scale}), which holds "
                f"finite values with at most {scale} digits after the point and "
                f"{precision - scale} before it; round it (v.quantize(Decimal('1e-{scale}')))"
            ) from err
        return zero if stored.is_zero() else stored

    return rescale


_SCALAR_COERCERS: dict[Any, Coercer] = {
    int: _int,
    float: _float,
    bool: _bool,
    str: _str,
    bytes: _bytes,
    dt.date: _date,
    dt.time: _time,
}
# types whose stored form follows their columns' Arrow type (``python_to_arrow_type``: a UTC
# microsecond timestamp, a microsecond duration, decimal128)
_STORED_FORMS: dict[Any, Callable[[pa.DataType], Coercer]] = {
    dt.datetime: _datetime,
    dt.timedelta: _timedelta,
    Decimal: _decimal,
}


@functools.cache
def _stored_form(tp: Any) -> Coercer:
    """The coercer of a ``_STORED_FORMS`` type, built once, on first use (building it reads
    Arrow scalars, which importing orcapod must not)."""
    return _STORED_FORMS[tp](python_to_arrow_type(tp))


def _array(tp: ArrayType) -> Coercer:
    def check(v: Any) -> Any:
        if not isinstance(v, np.ndarray):
            raise _fail(v, tp)
        problem = tp.check(v)
        if problem is not None:
            raise TypeError(
                f"expected an array {tp!r}, got one with {problem} (convert it with .astype() "
                "or .reshape())"
            )
        if type(v) is not np.ndarray:
            if isinstance(v, np.ma.MaskedArray):
                raise TypeError(
                    f"expected an array {tp!r}, got a masked array, whose mask cannot be "
                    "stored; return v.filled(...) (or the data and the mask as two outputs)"
                )
            v = np.asarray(v)
        flags = v.flags
        if flags.writeable or not flags.c_contiguous or not v.dtype.isnative:
            # the stored form: a read-only, C-ordered, native-order array (a view of the
            # function's array when it is one already, else the copy storing it makes anyway)
            if flags.c_contiguous and v.dtype.isnative:
                v = v.view()
            else:
                v = np.ascontiguousarray(v, dtype=v.dtype.newbyteorder("="))
            v.flags.writeable = False
        return v

    return check


def _key(k: Any, tp: Any) -> str:
    if isinstance(k, str):  # a StrEnum member, ...: its text, as stored
        return str.__str__(k)
    raise TypeError(f"expected {type_name(tp)}, got a key {k!r} that is not str")


def make_coercer(tp: Any) -> Coercer:
    """A function checking one value of type ``tp`` and returning it in its stored form (see
    the module docstring); raises ``TypeError``."""
    tp = normalize_type(tp)
    if isinstance(tp, ArrayType):
        return _array(tp)
    if is_optional(tp):
        inner = make_coercer(strip_optional(tp))

        def optional(v: Any) -> Any:
            return None if v is None else inner(v)

        return optional
    if tp in _SCALAR_COERCERS:
        return _SCALAR_COERCERS[tp]
    if tp in _STORED_FORMS:
        return _stored_form(tp)
    if isinstance(tp, type) and issubclass(tp, Path):
        return _path
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (list, tuple) and args:
        item = make_coercer(args[0])

        def sequence(v: Any) -> Any:
            if not isinstance(v, (list, tuple)):
                raise _fail(v, tp)
            return [item(x) for x in v]

        return sequence
    if origin is dict and len(args) == 2:
        value = make_coercer(args[1])

        def mapping(v: Any) -> Any:
            if not isinstance(v, Mapping):
                raise _fail(v, tp)
            out = {}
            for k, x in v.items():
                key = k if type(k) is str else _key(k, tp)
                out[key] = value(x)
            return out

        return mapping
    raise TypeError(f"no value check for type {type_name(tp)}")


def is_compatible(incoming: Any, expected: Any) -> bool:
    """Whether a column of type ``incoming`` may feed a parameter of type ``expected``."""
    incoming, expected = normalize_type(incoming), normalize_type(expected)
    if incoming == expected:
        return True
    if is_optional(expected):
        return is_compatible(strip_optional(incoming), strip_optional(expected))
    if is_optional(incoming):
        return False
    if expected is float and incoming is int:
        return True
    if isinstance(expected, ArrayType):
        return isinstance(incoming, ArrayType) and expected.accepts(incoming)
    in_origin, ex_origin = typing.get_origin(incoming), typing.get_origin(expected)
    if in_origin is None or in_origin != ex_origin:
        return False
    in_args, ex_args = typing.get_args(incoming), typing.get_args(expected)
    return len(in_args) == len(ex_args) and all(
        is_compatible(a, b) for a, b in zip(in_args, ex_args, strict=True)
    )


def check_output_names(name: str, output_keys: Iterable[str], tag_keys: Iterable[str]) -> None:
    """Raise ``InputValidationError`` when an output key of ``name`` clashes with a tag column
    of its input or with orcapod's reserved ``_`` names (see the module docstring)."""
    tags = set(tag_keys)
    reserved = [k for k in output_keys if k.startswith(DATAGRAM_PREFIX)]
    if reserved:
        raise InputValidationError(
            f"{name!r} outputs {reserved}, but names starting with '_' are reserved for "
            "orcapod's system tags, source info and meta columns; rename the output keys"
        )
    clash = [k for k in output_keys if k in tags]
    if clash:
        raise InputValidationError(
            f"{name!r} outputs {clash}, which are tag columns of its input (tags: "
            f"{sorted(tags)}); the pod keeps every tag, so the names would collide. Rename "
            "the output keys, or rename the tags first (stream.map_tags({...}))"
        )
