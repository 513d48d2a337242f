"""Array column types: ``ArrayType`` (what a schema holds) and ``Shape`` (how to annotate one).

A numpy array column or parameter is declared in any of these ways; all of them are turned
into one canonical ``ArrayType`` (``normalize_type``), so schemas built from annotations, from
explicit mappings and from stored data compare equal:

======================================================  =====================================
declaration                                             schema type
======================================================  =====================================
``np.ndarray``                                          ``ArrayType()`` (any dtype and shape)
``NDArray[np.float32]``                                 ``ArrayType("float32")``
``Annotated[NDArray[np.float32], Shape(64)]``           ``ArrayType("float32", (64,))``
``Annotated[NDArray[np.uint8], Shape(None, None, 3)]``  ``ArrayType("uint8", (None, None, 3))``
``Annotated[np.ndarray, Shape(2, 2)]``                  ``ArrayType(None, (2, 2))``
``ArrayType(np.float32, (64,))`` (directly, e.g. in a   ``ArrayType("float32", (64,))``
source schema)
======================================================  =====================================

``Shape(*dims)`` states the shape: one entry per dimension, an ``int`` for a fixed size or
``None`` for a size that varies from value to value. Without a ``Shape`` the number of
dimensions is free too. ``Annotated`` metadata other than ``Shape`` is ignored, as is
``Annotated`` around non-array types (``Annotated[int, "doc"]`` is ``int``).

Supported dtypes are the numeric ones Arrow holds exactly: ``bool``, ``int8``…``int64``,
``uint8``…``uint64``, ``float16``, ``float32``, ``float64``. The dtype is stored by name in
native byte order (a big-endian ``>f4`` array is a ``float32`` array).

An ``ArrayType`` without a dtype describes what a function *accepts* (any array); a stored
column always has one, so a function *output* must declare its dtype.
"""

from __future__ import annotations

import functools
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from orcapod.errors import SchemaError

__all__ = ["ARRAY_DTYPES", "ArrayType", "Shape", "normalize_type"]

ARRAY_DTYPES: frozenset[str] = frozenset(
    {
        "bool",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float16",
        "float32",
        "float64",
    }
)
"""Names of the numpy dtypes an array column may hold."""

Dims = tuple[int | None, ...]


def _dtype_name(dtype: Any) -> str:
    try:
        name = str(np.dtype(dtype).newbyteorder("=").name)
    except TypeError as err:
        raise SchemaError(
            f"{dtype!r} is not a numpy dtype; use one of {sorted(ARRAY_DTYPES)}"
        ) from err
    if name not in ARRAY_DTYPES:
        raise SchemaError(
            f"arrays of dtype {name!r} are not supported; use one of {sorted(ARRAY_DTYPES)}"
        )
    return name


def _dims(shape: Any) -> Dims:
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise SchemaError(
            f"an array shape is a tuple of ints (fixed sizes) and None (varying sizes), got "
            f"{shape!r}"
        )
    out: list[int | None] = []
    for dim in shape:
        if dim is None:
            out.append(None)
        elif isinstance(dim, (int, np.integer)) and not isinstance(dim, bool) and dim >= 0:
            out.append(int(dim))
        else:
            raise SchemaError(
                f"array shape {tuple(shape)!r}: each dimension is a non-negative int or None, "
                f"got {dim!r}"
            )
    return tuple(out)


@dataclass(frozen=True, slots=True, init=False)
class Shape:
    """The shape of an array annotation: ``Annotated[NDArray[np.float32], Shape(64, None)]``.

    Each dimension is an ``int`` (that size exactly) or ``None`` (any size).
    """

    dims: Dims

    def __init__(self, *dims: int | None) -> None:
        object.__setattr__(self, "dims", _dims(dims))

    def __repr__(self) -> str:
        return f"Shape({', '.join(repr(d) for d in self.dims)})"


@dataclass(frozen=True, slots=True, init=False)
class ArrayType:
    """The schema type of a numpy array column: a dtype (name, or None = any) and a shape
    (a tuple of ints and Nones, or None = any number of dimensions)."""

    dtype: str | None
    shape: Dims | None

    def __init__(self, dtype: Any = None, shape: Any = None) -> None:
        object.__setattr__(self, "dtype", None if dtype is None else _dtype_name(dtype))
        object.__setattr__(self, "shape", None if shape is None else _dims(shape))

    @property
    def ndim(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_fixed(self) -> bool:
        """Known dtype and every dimension fixed (stored as a fixed-shape tensor)."""
        return self.dtype is not None and self.shape is not None and None not in self.shape

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        """The shape of a fixed array type (``SchemaError`` when a dimension may vary)."""
        dims = tuple(d for d in self.shape or () if d is not None)
        if self.shape is None or len(dims) != len(self.shape):
            raise SchemaError(f"{self!r} has no fixed shape")
        return dims

    @property
    def size(self) -> int:
        """Number of values in each array of a fixed array type."""
        return int(np.prod(self.fixed_shape, dtype=np.int64))

    def accepts(self, other: ArrayType) -> bool:
        """Whether every array of type ``other`` is also of this type."""
        if self.dtype is not None and other.dtype != self.dtype:
            return False
        if self.shape is None:
            return True
        if other.shape is None or len(other.shape) != len(self.shape):
            return False
        return all(
            mine is None or mine == theirs
            for mine, theirs in zip(self.shape, other.shape, strict=True)
        )

    def check(self, value: np.ndarray[Any, Any]) -> str | None:
        """Why ``value`` is not of this type (``None`` when it is)."""
        if self.dtype is not None and value.dtype.newbyteorder("=").name != self.dtype:
            return f"dtype {value.dtype.name} instead of {self.dtype}"
        if self.shape is None:
            return None
        if value.ndim != len(self.shape) or any(
            want is not None and want != got
            for want, got in zip(self.shape, value.shape, strict=True)
        ):
            return f"shape {value.shape} instead of {_shape_text(self.shape)}"
        return None

    def __call__(self, value: Any) -> np.ndarray[Any, Any]:
        """``value`` as an array of this type (``np.asarray`` with the dtype); ``SchemaError``
        when its shape does not fit. Also what makes ``ArrayType(...) | None`` a valid type."""
        array = np.asarray(value, dtype=self.dtype)
        problem = self.check(array)
        if problem is not None:
            raise SchemaError(f"{value!r:.80} does not fit {self!r}: {problem}")
        return array

    def __or__(self, other: Any) -> Any:
        return typing.Union[self, other]  # noqa: UP007 - an ArrayType is not a class

    def __ror__(self, other: Any) -> Any:
        return typing.Union[other, self]  # noqa: UP007 - an ArrayType is not a class

    def __repr__(self) -> str:
        parts = [] if self.dtype is None else [repr(self.dtype)]
        if self.shape is not None:
            parts.append(_shape_text(self.shape))
        return f"ArrayType({', '.join(parts)})"


def _shape_text(shape: Dims) -> str:
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _dtype_of_ndarray_alias(tp: Any) -> str | None:
    """The dtype of ``np.ndarray[shape, np.dtype[T]]`` (what ``NDArray[T]`` is), else None."""
    args = typing.get_args(tp)
    if len(args) != 2:
        return None
    dtype_arg = args[1]
    if typing.get_origin(dtype_arg) is np.dtype:
        (scalar,) = typing.get_args(dtype_arg) or (None,)
        if scalar is None or scalar is Any or isinstance(scalar, typing.TypeVar):
            return None
        if not (isinstance(scalar, type) and issubclass(scalar, np.generic)):
            raise SchemaError(
                f"{tp!r}: the dtype must be a numpy scalar type such as np.float32, got {scalar!r}"
            )
        return _dtype_name(scalar)
    return None


def _array_type(tp: Any, metadata: tuple[Any, ...] = ()) -> ArrayType | None:
    """The ``ArrayType`` of an ndarray annotation (``None`` when ``tp`` is not one)."""
    if isinstance(tp, ArrayType):
        base = tp
    elif tp is np.ndarray:
        base = ArrayType()
    elif typing.get_origin(tp) is np.ndarray:
        base = ArrayType(_dtype_of_ndarray_alias(tp))
    else:
        return None
    shapes = [m for m in metadata if isinstance(m, Shape)]
    if len(shapes) > 1:
        raise SchemaError(f"{tp!r} is annotated with {len(shapes)} Shapes; give one")
    if shapes:
        if base.shape is not None and base.shape != shapes[0].dims:
            raise SchemaError(
                f"{base!r} is annotated with a different {shapes[0]!r}; state the shape once"
            )
        return ArrayType(base.dtype, shapes[0].dims)
    return base


def normalize_type(tp: Any) -> Any:
    """``tp`` with every array declaration (see the module docstring) replaced by its
    ``ArrayType`` and ``Annotated`` wrappers removed; other types are returned unchanged."""
    if (isinstance(tp, type) and tp is not np.ndarray) or isinstance(tp, ArrayType):
        return tp  # the common cases: a plain class, or already normalised
    try:
        result = _normalize_cached(tp)
    except TypeError:  # an unhashable type expression (e.g. Annotated with a list in it)
        return _normalize(tp)
    # an equal expression may be cached under another spelling (``int | None`` and
    # ``Optional[int]``): a type that needs no change is returned as the caller wrote it
    return tp if result == tp else result


def _normalize(tp: Any) -> Any:
    if (isinstance(tp, type) and tp is not np.ndarray) or isinstance(tp, ArrayType):
        return tp
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(tp)
        found = _array_type(inner, tuple(metadata))
        return found if found is not None else normalize_type(inner)
    found = _array_type(tp)
    if found is not None:
        return found
    args = typing.get_args(tp)
    if not args:
        return tp
    normalized = tuple(normalize_type(a) for a in args)
    if normalized == args:
        return tp
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return typing.Union[normalized]  # noqa: UP007 - built from a tuple of types
    if origin is not None:
        return origin[normalized if len(normalized) > 1 else normalized[0]]
    return tp


_normalize_cached = functools.lru_cache(maxsize=4096)(_normalize)
