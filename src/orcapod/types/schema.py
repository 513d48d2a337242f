"""``Schema``: an immutable, hashable mapping of column name -> Python type.

Types are plain Python type expressions: ``int``, ``float``, ``str``, ``bool``, ``bytes``,
``datetime``, ``date``, ``time``, ``Decimal``, ``pathlib.Path``, ``list[T]``,
``dict[str, T]``, ``T | None``, numpy arrays (``ArrayType``; ``np.ndarray``, ``NDArray[...]``
and ``Annotated[..., Shape(...)]`` declarations are normalised to it, see
``orcapod.types.arrays``) and nested combinations. A field may be *optional* (it may be
absent from a packet, e.g. a function parameter with a default); optional-ness is part of
equality between two ``Schema`` objects and of the hash. Compared with a plain mapping, only
names and types are compared, so ``Schema({"a": int}) == {"a": int}``; compared with anything
else a schema is simply unequal (no error), and it is hashable.

``a.is_compatible_with(b)``: every field of ``a`` is in ``b`` with the same type (``b`` may
have more fields; optional-ness is ignored), i.e. data shaped like ``b`` can be read as ``a``.
Selecting a field that is not there raises ``FieldNotFoundError``, which is a ``KeyError``
as for any mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from orcapod.errors import FieldNotFoundError, SchemaError
from orcapod.types.arrays import normalize_type

__all__ = ["Schema"]


class Schema(Mapping[str, Any]):
    """Immutable mapping ``name -> type`` with optional fields.

    >>> s = Schema({"x": int, "y": float | None}, optional_fields=["y"])
    >>> s["x"], s.is_required("y")
    (<class 'int'>, False)
    """

    __slots__ = ("_fields", "_hash", "_optional")

    def __init__(
        self,
        fields: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        optional_fields: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> None:
        data: dict[str, Any] = dict(fields or {})
        data.update(kwargs)
        for name, tp in data.items():
            if not isinstance(name, str) or not name:
                raise SchemaError(f"Schema field names must be non-empty strings, got {name!r}")
            data[name] = normalize_type(tp)
        optional = frozenset(optional_fields or ())
        if isinstance(fields, Schema):
            optional = optional | fields._optional
        unknown = optional - data.keys()
        if unknown:
            raise SchemaError(
                f"optional_fields {sorted(unknown)} are not fields of the schema "
                f"(fields: {list(data)}); name only existing fields as optional"
            )
        self._fields: dict[str, Any] = data
        self._optional: frozenset[str] = optional
        self._hash: int | None = None

    # Mapping protocol -------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Schema):
            return self._fields == other._fields and self._optional == other._optional
        if isinstance(other, Mapping):
            return self._fields == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((frozenset(self._fields.items()), self._optional))
        return self._hash

    def __repr__(self) -> str:
        body = ", ".join(f"{k!r}: {_type_repr(v)}" for k, v in self._fields.items())
        if self._optional:
            return f"Schema({{{body}}}, optional_fields={sorted(self._optional)!r})"
        return f"Schema({{{body}}})"

    # Queries ----------------------------------------------------------------------------
    @property
    def optional_fields(self) -> frozenset[str]:
        return self._optional

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(k for k in self._fields if k not in self._optional)

    def is_required(self, field: str) -> bool:
        if field not in self._fields:
            raise KeyError(field)
        return field not in self._optional

    @classmethod
    def empty(cls) -> Schema:
        return cls()

    def is_compatible_with(self, other: Mapping[str, Any]) -> bool:
        """Whether every field of this schema is in ``other`` with the same type."""
        return all(k in other and other[k] == v for k, v in self._fields.items())

    # Derivations (always new objects) ----------------------------------------------------
    def select(self, *names: str) -> Schema:
        missing = [n for n in names if n not in self._fields]
        if missing:
            raise FieldNotFoundError(
                f"cannot select {missing}: not in schema {list(self._fields)}; select only "
                "existing fields"
            )
        return Schema({n: self._fields[n] for n in names}, self._optional & set(names))

    def drop(self, *names: str) -> Schema:
        keep = {k: v for k, v in self._fields.items() if k not in names}
        return Schema(keep, self._optional & keep.keys())

    def rename(self, mapping: Mapping[str, str]) -> Schema:
        fields = {mapping.get(k, k): v for k, v in self._fields.items()}
        if len(fields) != len(self._fields):
            raise SchemaError(f"renaming with {dict(mapping)} makes two columns share a name")
        return Schema(fields, {mapping.get(k, k) for k in self._optional})

    def merge(self, other: Mapping[str, Any]) -> Schema:
        """Union of two schemas; a field present in both must have the same type."""
        conflicts = [k for k in other if k in self._fields and self._fields[k] != other[k]]
        if conflicts:
            detail = ", ".join(
                f"{k!r}: {_type_repr(self._fields[k])} vs {_type_repr(other[k])}" for k in conflicts
            )
            raise SchemaError(f"cannot merge schemas, conflicting types for {detail}")
        other_opt = other.optional_fields if isinstance(other, Schema) else frozenset()
        return Schema({**self._fields, **dict(other)}, self._optional | other_opt)

    def with_values(self, other: Mapping[str, Any] | None = None, **kwargs: Any) -> Schema:
        """Copy with fields added or overridden."""
        fields = {**self._fields, **dict(other or {}), **kwargs}
        return Schema(fields, self._optional & fields.keys())

    def as_required(self) -> Schema:
        return Schema(self._fields)

    def with_optional(self, *names: str) -> Schema:
        return Schema(self._fields, self._optional | set(names))


def _type_repr(tp: Any) -> str:
    if isinstance(tp, type) and not getattr(tp, "__args__", None):
        return tp.__name__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"
    return repr(tp).replace("typing.", "")
