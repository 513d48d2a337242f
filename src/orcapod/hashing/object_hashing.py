"""``hash_object``: stable identity of Python values (method ``object_v1``).

Every supported value is encoded to a canonical, *tagged*, length-prefixed byte string, and the
encoding is digested with SHA-256. An item is ``tag + 8-byte little-endian payload length +
payload``, so the encoding is prefix-free: no two different structures share bytes. Dispatch is
``functools.singledispatch`` on the value's type (one small encoder per type, as redun's
``hashing.py`` and Hamilton's fingerprinting do). Nothing depends on ``PYTHONHASHSEED``, dict
insertion order, the process or the platform: order-free containers sort their children's
encodings (bytes order), never Python ``hash``.

Encodings and decisions:

* ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes`` each have their own tag, so
  ``1``, ``1.0`` and ``True`` differ. Floats are packed as IEEE-754 big-endian with ``-0.0``
  canonicalised to ``0.0`` and every NaN to one NaN. ``bytearray``/``memoryview`` are bytes.
  numpy scalars are encoded as the equivalent Python value; numpy arrays as little-endian
  dtype, shape and C-order bytes (floats canonicalised as above; object arrays element-wise).
  A compiled regular expression is its pattern and flags.
* ``list`` and ``tuple`` are ordered and tagged differently (a namedtuple is its class
  ``module.qualname`` plus its named fields); ``dict``/any ``Mapping`` is
  order-free (key-value pairs sorted by encoding); ``set`` and ``frozenset`` are order-free and
  tagged the same (they compare equal in Python).
* Types: a class is ``module.qualname`` (its identity, not its code — code identity is
  ``function_identity``'s job). Generic aliases (``list[int]``, ``typing.List[int]``) are origin
  plus arguments; unions are order-free and ``int | None == typing.Optional[int]``.
  ``typing.Any`` and other special forms are ``typing.<name>``; a ``TypeVar`` is its name.
* ``Schema``: its fields (order-free, like the mapping) plus its sorted optional fields.
  ``ContentHash``: its ``"<method>:<hex>"`` string.
* ``pathlib.Path``: the content of the file, or for a directory its sorted tree of relative
  names and file contents (see ``file_hashing``); never the path string. Missing path ->
  ``HashingError`` naming it. With ``path_constants=True`` (how ``function_identity`` hashes
  the values a function's code refers to) a path naming a regular file is still its content,
  but any other path — a directory, or a path that does not exist yet — is its POSIX path text
  as written: a folder in code is a location (where outputs go, scratch space), not input
  data, and its contents (files the function itself writes there) must not change the
  function's identity. The mode holds for every path inside the value (containers,
  dataclasses, ``identity_structure()``); it is off for data values (rows, sources).
* ``datetime``/``date``/``time``: ISO format (an aware value keeps its UTC offset);
  ``timedelta``: days, seconds, microseconds; ``Decimal``: its exact string (``1.5`` and
  ``1.50`` differ, as the scale is kept); ``UUID``: its 16 bytes.
* Enum members (including ``IntEnum``/``StrEnum``): class ``module.qualname`` plus value.
* ``pa.Table``/``pa.RecordBatch``: ``hash_table``.
* Objects with ``identity_structure()``: class ``module.qualname`` plus that structure
  (preferred over ``content_hash()``, so a ``content_hash`` implemented as
  ``hash_object(self)`` does not recurse). Objects with only ``content_hash()`` are encoded as
  the ``ContentHash`` they return. Dataclass instances: class qualname plus fields in
  declaration order.
* Anything else raises ``HashingError`` naming the type and the fix; never ``repr``. A cyclic
  container raises ``HashingError`` too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import math
import os
import re
import struct
import threading
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from orcapod.errors import HashingError
from orcapod.hashing.arrow_hashing import hash_table
from orcapod.hashing.file_hashing import path_content_digest
from orcapod.types import ContentHash, Schema

__all__ = ["OBJECT_HASH_METHOD", "hash_object"]

OBJECT_HASH_METHOD = "object_v1"


class _ActiveIds(threading.local):
    """Per-thread encoding state: ids of the containers being encoded (the cycle guard) and
    whether paths are hashed as constants of code (``hash_object(..., path_constants=True)``)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.path_constants = False


_active = _ActiveIds()


def hash_object(obj: object, *, path_constants: bool = False) -> ContentHash:
    """Stable ``object_v1`` hash of a supported value; see the module docstring.

    ``path_constants=True`` identifies a path that does not name a regular file (a folder, a
    path not created yet) by its text instead of its content, at any depth of ``obj``; nested
    ``hash_object`` calls (from ``identity_structure()``) keep the mode."""
    if not path_constants or _active.path_constants:
        return ContentHash(OBJECT_HASH_METHOD, hashlib.sha256(_encode(obj)).digest())
    _active.path_constants = True
    try:
        return ContentHash(OBJECT_HASH_METHOD, hashlib.sha256(_encode(obj)).digest())
    finally:
        _active.path_constants = False


def _item(tag: bytes, payload: bytes) -> bytes:
    return tag + len(payload).to_bytes(8, "little") + payload


def _qualified(cls: type) -> bytes:
    return f"{cls.__module__}.{cls.__qualname__}".encode()


def _guarded(obj: object, build: Callable[[], bytes]) -> bytes:
    seen = _active.ids
    key = id(obj)
    if key in seen:
        raise HashingError(
            f"cannot hash a cyclic structure: a {type(obj).__qualname__} contains itself; "
            "break the cycle or implement identity_structure()"
        )
    seen.add(key)
    try:
        return build()
    finally:
        seen.discard(key)


@functools.singledispatch
def _encode(obj: object) -> bytes:
    if isinstance(obj, type) or _is_typing_form(obj):
        return _encode_type_form(obj)
    identity = getattr(obj, "identity_structure", None)
    if callable(identity):
        tag = _item(b"q", _qualified(type(obj)))
        return _guarded(obj, lambda: _item(b"IS", tag + _encode(identity())))
    content_hash = getattr(obj, "content_hash", None)
    if callable(content_hash):
        value = content_hash()
        if not isinstance(value, ContentHash):
            raise HashingError(
                f"{type(obj).__qualname__}.content_hash() returned {type(value).__qualname__}, "
                "not a ContentHash; return a ContentHash or implement identity_structure()"
            )
        return _encode(value)
    if dataclasses.is_dataclass(obj):
        return _guarded(obj, lambda: _encode_dataclass(obj))
    raise HashingError(
        f"cannot hash a value of type {type(obj).__module__}.{type(obj).__qualname__}: it has "
        "no stable identity. Implement identity_structure() on the class (return a structure "
        "of supported values) or pass a supported value (None, bool, int, float, str, bytes, "
        "containers, types, Schema, ContentHash, Path, dates, Decimal, UUID, enums, "
        "dataclasses, Arrow tables)."
    )


def _encode_dataclass(obj: Any) -> bytes:
    body = b"".join(
        _item(b"f", _encode(f.name) + _encode(getattr(obj, f.name)))
        for f in dataclasses.fields(obj)
    )
    return _item(b"DC", _item(b"q", _qualified(type(obj))) + body)


@_encode.register(type(None))
def _(obj: None) -> bytes:
    return _item(b"N", b"")


@_encode.register(type(Ellipsis))
def _(obj: types.EllipsisType) -> bytes:
    return _item(b"EL", b"")


@_encode.register
def _(obj: bool) -> bytes:
    return _item(b"B", b"\1" if obj else b"\0")


@_encode.register
def _(obj: int) -> bytes:
    return _item(b"I", obj.to_bytes(obj.bit_length() // 8 + 1, "big", signed=True))


@_encode.register
def _(obj: float) -> bytes:
    if math.isnan(obj):
        return _item(b"F", b"nan")
    return _item(b"F", struct.pack(">d", obj + 0.0))


@_encode.register
def _(obj: str) -> bytes:
    return _item(b"S", obj.encode("utf-8", "surrogatepass"))


@_encode.register(bytes)
@_encode.register(bytearray)
@_encode.register(memoryview)
def _(obj: bytes | bytearray | memoryview) -> bytes:
    return _item(b"Y", bytes(obj))


@_encode.register(np.generic)
def _(obj: np.generic) -> bytes:
    return _encode(obj.item())


@_encode.register(np.ndarray)
def _(obj: NDArray[Any]) -> bytes:
    header = _encode(obj.dtype.newbyteorder("<").str) + _encode(obj.shape)
    if obj.dtype.hasobject:
        return _item(b"NA", header + _encode(obj.tolist()))
    data = np.ascontiguousarray(obj, dtype=obj.dtype.newbyteorder("<"))
    if data.dtype.kind == "f":
        with np.errstate(invalid="ignore"):  # signalling NaNs become the quiet NaN below
            data = data + 0.0  # -0.0 -> 0.0 (a copy)
        data[np.isnan(data)] = np.nan
    return _item(b"NA", header + data.tobytes())


@_encode.register
def _(obj: re.Pattern) -> bytes:  # type: ignore[type-arg]
    return _item(b"RE", _encode(obj.pattern) + _encode(obj.flags))


@_encode.register
def _(obj: list) -> bytes:  # type: ignore[type-arg]
    return _guarded(obj, lambda: _item(b"L", b"".join(_encode(x) for x in obj)))


@_encode.register
def _(obj: tuple) -> bytes:  # type: ignore[type-arg]
    fields = getattr(type(obj), "_fields", None)
    if isinstance(fields, tuple):  # a namedtuple: class and named fields
        tag = _item(b"q", _qualified(type(obj)))
        named = dict(zip(fields, obj, strict=True))
        return _guarded(obj, lambda: _item(b"NT", tag + _encode(named)))
    return _guarded(obj, lambda: _item(b"T", b"".join(_encode(x) for x in obj)))


def _encode_mapping(obj: Mapping[Any, Any]) -> bytes:
    pairs = sorted(_encode(k) + _encode(v) for k, v in obj.items())
    return _item(b"D", b"".join(pairs))


@_encode.register(dict)
@_encode.register(Mapping)
def _(obj: Mapping[Any, Any]) -> bytes:
    return _guarded(obj, lambda: _encode_mapping(obj))


@_encode.register(set)
@_encode.register(frozenset)
def _(obj: set[Any] | frozenset[Any]) -> bytes:
    return _guarded(obj, lambda: _item(b"E", b"".join(sorted(_encode(x) for x in obj))))


@_encode.register
def _(obj: Schema) -> bytes:
    optional = _encode(sorted(obj.optional_fields))
    return _item(b"SC", _encode_mapping(obj) + optional)


@_encode.register
def _(obj: ContentHash) -> bytes:
    return _item(b"H", obj.to_string().encode("ascii"))


@_encode.register
def _(obj: Path) -> bytes:
    if _active.path_constants and not os.path.isfile(obj):
        return _item(b"PL", obj.as_posix().encode("utf-8", "surrogatepass"))
    return _item(b"P", path_content_digest(obj))


@_encode.register
def _(obj: dt.datetime) -> bytes:
    return _item(b"DT", obj.isoformat().encode("ascii"))


@_encode.register
def _(obj: dt.date) -> bytes:
    return _item(b"DA", obj.isoformat().encode("ascii"))


@_encode.register
def _(obj: dt.time) -> bytes:
    return _item(b"TM", obj.isoformat().encode("ascii"))


@_encode.register
def _(obj: dt.timedelta) -> bytes:
    return _item(b"TD", _encode((obj.days, obj.seconds, obj.microseconds)))


@_encode.register
def _(obj: Decimal) -> bytes:
    return _item(b"DE", str(obj).encode("ascii"))


@_encode.register
def _(obj: uuid.UUID) -> bytes:
    return _item(b"UU", obj.bytes)


@_encode.register(enum.Enum)
@_encode.register(enum.IntEnum)
@_encode.register(enum.StrEnum)
@_encode.register(enum.IntFlag)
def _(obj: enum.Enum) -> bytes:
    return _item(b"EN", _item(b"q", _qualified(type(obj))) + _encode(obj.value))


@_encode.register(pa.Table)
@_encode.register(pa.RecordBatch)
def _(obj: pa.Table | pa.RecordBatch) -> bytes:
    return _item(b"AT", hash_table(obj).to_string().encode("ascii"))


# --- types and typing forms ------------------------------------------------------------------


def _is_typing_form(obj: object) -> bool:
    return (
        typing.get_origin(obj) is not None
        or isinstance(obj, typing.TypeVar)
        or type(obj).__module__ == "typing"
    )


def _encode_type_form(obj: Any) -> bytes:
    origin = typing.get_origin(obj)
    if origin is typing.Union or origin is types.UnionType:
        members = sorted(_encode(arg) for arg in typing.get_args(obj))
        return _item(b"U", b"".join(members))
    if origin is not None:
        args = typing.get_args(obj)
        return _item(b"G", _encode(origin) + _encode(tuple(args)))
    if isinstance(obj, type):
        return _item(b"C", _qualified(obj))
    if isinstance(obj, typing.TypeVar):
        return _item(b"TV", obj.__name__.encode())
    name = getattr(obj, "_name", None)
    if isinstance(name, str):
        return _item(b"C", f"typing.{name}".encode())
    raise HashingError(
        f"cannot hash the typing construct of type {type(obj).__qualname__}; use a class, a "
        "generic alias such as list[int], or a union such as int | None"
    )
