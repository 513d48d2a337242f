"""The input and output schemas of a Python function, read from its signature.

``parameter_schema``: one field per parameter, its type from the given ``input_schema`` entry
or the resolved annotation (``typing.get_type_hints``, with ``Annotated`` metadata);
parameters with defaults are optional. ``return_schema``: one field per output key, from the
return annotation (one key takes it whole; several take a ``tuple[...]``'s items, or ``T``
from ``tuple[T, ...]`` / ``list[T]``) or the given ``output_schema``.
``check_storable`` checks every type against what orcapod can store, at construction.
``PythonPacketFunction`` (whose docstring states the rules users see) is the one caller.
``check_output_keys``: a string or a sequence of non-empty, unique strings.

Decision: a function that returns None filters its row out (it is not stored as a null), so
``-> T | None`` is read as ``T`` that may filter: it is the annotation a type checker needs
for such a function, and rejecting it would force users to annotate falsely. With one output
key the key's type is ``T``, from the annotation or ``output_schema`` alike (its value is
never null, so a downstream parameter ``x: T`` accepts the column); with several,
``-> tuple[A, B] | None`` reads as ``tuple[A, B]`` and a null value of one key is written
``None`` inside the tuple, for a key typed ``A | None``.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from orcapod.data.conversion import schema_to_arrow
from orcapod.data.value_types import strip_optional
from orcapod.errors import InputValidationError, SchemaError
from orcapod.functions.validation import type_name
from orcapod.types import ArrayType, Schema
from orcapod.types.arrays import normalize_type
from orcapod.types.columns import DATAGRAM_PREFIX

__all__ = [
    "annotations_source",
    "check_output_keys",
    "check_storable",
    "dtype_stand_in",
    "parameter_schema",
    "return_schema",
]

_SEVERAL = re.compile(r"[,;\s]+")
_MISSING: Any = object()


def check_output_keys(output_keys: str | Sequence[str]) -> tuple[str, ...]:
    if isinstance(output_keys, str) and _SEVERAL.search(output_keys.strip()):
        names = [n for n in _SEVERAL.split(output_keys) if n]
        raise InputValidationError(
            f"output key {output_keys!r} looks like several names in one string; pass a list "
            f"of names instead: {names!r}"
        )
    if output_keys is not None and not isinstance(output_keys, str | Sequence):
        raise InputValidationError(
            f"output keys must be a string or a sequence of strings, got "
            f"{type(output_keys).__name__} {output_keys!r}; pass e.g. 'result' or "
            "['mean', 'std']"
        )
    keys = (output_keys,) if isinstance(output_keys, str) else tuple(output_keys or ())
    if not keys:
        raise InputValidationError(
            "a packet function needs at least one output key; pass output_keys='result' "
            "or a list of names"
        )
    for key in keys:
        if not isinstance(key, str) or not key:
            raise InputValidationError(f"output key {key!r} must be a non-empty string")
        if key.startswith(DATAGRAM_PREFIX):
            raise InputValidationError(
                f"output key {key!r} starts with '_', which is reserved for orcapod's hidden "
                "columns; rename it"
            )
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise InputValidationError(f"output keys {dupes} are repeated; make them unique")
    return keys


def annotations_source(function: Callable[..., Any]) -> Callable[..., Any]:
    """The function whose annotations describe ``function`` (a ``functools.partial`` has
    none of its own: they are its wrapped function's)."""
    while isinstance(function, functools.partial):
        function = function.func
    return function


def parameter_schema(
    function: Callable[..., Any], name: str, overrides: Mapping[str, Any]
) -> tuple[Schema, tuple[str, ...], tuple[str, ...]]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as err:
        raise InputValidationError(
            f"cannot read the signature of {name!r}; wrap it in a def with named, annotated "
            "parameters"
        ) from err
    try:
        hints = typing.get_type_hints(annotations_source(function), include_extras=True)
    except Exception as err:
        raise InputValidationError(
            f"cannot resolve the type annotations of {name!r}: {err}; make every annotation "
            "importable where the function is defined, or pass input_schema/output_schema"
        ) from err
    fields: dict[str, Any] = {}
    required: list[str] = []
    optional: list[str] = []
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise InputValidationError(
                f"{name!r} takes {star}{param.name}; a packet function needs explicit named "
                "parameters, one per packet column"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise InputValidationError(
                f"parameter {param.name!r} of {name!r} is positional-only; packet values are "
                "passed by name, so remove the '/'"
            )
        if param.name in overrides:
            tp = overrides[param.name]
        elif param.name in hints:
            tp = hints[param.name]
        else:
            raise InputValidationError(
                f"parameter {param.name!r} of {name!r} has no type annotation; annotate it "
                f"(e.g. `{param.name}: int`) or pass input_schema={{{param.name!r}: ...}}"
            )
        fields[param.name] = tp
        (optional if param.default is not param.empty else required).append(param.name)
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise InputValidationError(
            f"input_schema names {unknown}, which are not parameters of {name!r}"
        )
    return Schema(fields, optional_fields=optional), tuple(required), tuple(optional)


def return_schema(
    function: Callable[..., Any],
    name: str,
    keys: tuple[str, ...],
    overrides: Mapping[str, Any] | Sequence[Any] | None,
) -> Schema:
    if overrides is None:
        given: dict[str, Any] = {}
    elif isinstance(overrides, Mapping):
        given = dict(overrides)
    else:
        types_ = list(overrides)
        if len(types_) != len(keys):
            raise InputValidationError(
                f"output_schema lists {len(types_)} types for {len(keys)} output keys {keys}"
            )
        given = dict(zip(keys, types_, strict=True))
    unknown = sorted(set(given) - set(keys))
    if unknown:
        raise InputValidationError(f"output_schema names {unknown}, not output keys {keys}")
    try:
        hints = typing.get_type_hints(annotations_source(function), include_extras=True)
    except (NameError, TypeError, AttributeError):
        # unresolvable annotations: the output types must then come from output_schema, and
        # a missing one is reported below by name
        hints = {}
    annotated: dict[str, Any] = {}
    if "return" in hints and len(given) < len(keys):
        ret = normalize_type(hints["return"])
        ret = _without_none(ret)  # a returned None filters the row (module docstring)
        if ret is type(None):
            raise InputValidationError(
                f"{name!r} is annotated to return None but declares output keys {keys}"
            )
        if len(keys) == 1:
            annotated = {keys[0]: ret}
        else:
            origin, args = typing.get_origin(ret), typing.get_args(ret)
            if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
                annotated = dict.fromkeys(keys, args[0])
            elif origin is tuple and len(args) == len(keys):
                annotated = dict(zip(keys, args, strict=True))
            elif origin is list and len(args) == 1:
                annotated = dict.fromkeys(keys, args[0])
            else:
                raise InputValidationError(
                    f"{name!r} has {len(keys)} output keys {keys} but returns "
                    f"{type_name(ret)}; annotate the return as tuple[...] with {len(keys)} "
                    "types, or pass output_schema"
                )
    fields = {k: given[k] if k in given else annotated.get(k, _MISSING) for k in keys}
    if len(keys) == 1 and fields[keys[0]] is not _MISSING:
        fields[keys[0]] = _without_none(fields[keys[0]])  # one key's value is never null
    untyped = [k for k, tp in fields.items() if tp is _MISSING]
    if untyped:
        raise InputValidationError(
            f"output keys {untyped} of {name!r} have no type; annotate the return type or "
            "pass output_schema"
        )
    return Schema(fields)


def _without_none(tp: Any) -> Any:
    """``T | None`` -> ``T``; any other type (including other unions) unchanged."""
    if not (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union):
        return tp
    args = typing.get_args(tp)
    rest = [a for a in args if a is not type(None)]
    return rest[0] if len(rest) == 1 and len(rest) < len(args) else tp


def dtype_stand_in(tp: Any) -> Any:
    """An array type without a dtype with one filled in (any would do), for storability."""
    inner = strip_optional(tp)
    if isinstance(inner, ArrayType) and inner.dtype is None:
        return ArrayType("float64", inner.shape)
    return tp


def check_storable(schema: Schema, what: str, name: str, open_arrays: bool = False) -> None:
    """``SchemaError`` unless every type of ``schema`` can be stored; with ``open_arrays``
    (input schemas) array types without a dtype pass, as they only say what is accepted."""
    if open_arrays:
        schema = Schema({k: dtype_stand_in(tp) for k, tp in schema.items()})
    try:
        schema_to_arrow(schema)
    except SchemaError as err:
        raise SchemaError(f"{what} of {name!r}: {err}") from err
