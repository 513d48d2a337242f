"""Cheap, precomputed checks of Python values against schema types, and type compatibility.

Output values. A packet function's return values must match its output schema, but checking
them by building an Arrow array per packet costs tens of microseconds. Instead, for every
output key a *coercer* is compiled once from the declared type: a small closure that returns
the value (normalised where Arrow would accept it anyway) or raises ``TypeError`` describing
the mismatch. The common scalar cases cost one ``type(v) is T`` test.

What each type accepts (anything else is rejected):

* ``int``: ``int`` (not ``bool``) and numpy integers (converted to ``int``);
* ``float``: ``float``, ``int`` (not ``bool``) and numpy numbers (converted to ``float``);
* ``bool``: ``bool`` and ``numpy.bool_``; ``str``: ``str``; ``bytes``: ``bytes``/``bytearray``;
* ``datetime``, ``date`` (not a ``datetime``), ``time``, ``timedelta``, ``Decimal``: instances;
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
import os
import typing
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

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
    if type(v) is str or isinstance(v, str):
        return v
    raise _fail(v, str)


def _bytes(v: Any) -> Any:
    if isinstance(v, bytes):
        return v
    if isinstance(v, bytearray):
        return bytes(v)
    raise _fail(v, bytes)


def _date(v: Any) -> Any:
    if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
        return v
    raise _fail(v, dt.date)


def _path(v: Any) -> Any:
    if isinstance(v, Path):
        return v
    if isinstance(v, os.PathLike):
        return Path(v)
    raise _fail(v, Path)


def _instance(tp: type) -> Coercer:
    def check(v: Any) -> Any:
        if isinstance(v, tp):
            return v
        raise _fail(v, tp)

    return check


_SCALAR_COERCERS: dict[Any, Coercer] = {
    int: _int,
    float: _float,
    bool: _bool,
    str: _str,
    bytes: _bytes,
    dt.date: _date,
    dt.datetime: _instance(dt.datetime),
    dt.time: _instance(dt.time),
    dt.timedelta: _instance(dt.timedelta),
    Decimal: _instance(Decimal),
}


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
        return v

    return check


def make_coercer(tp: Any) -> Coercer:
    """A function checking (and normalising) one value of type ``tp``; raises ``TypeError``."""
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
                if not isinstance(k, str):
                    raise TypeError(f"expected {type_name(tp)}, got a key {k!r} that is not str")
                out[k] = value(x)
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
