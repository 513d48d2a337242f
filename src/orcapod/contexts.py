"""Data contexts: the named, versioned set of rules that give data its types and identity.

A ``DataContext`` bundles what decides how values become Arrow and how they are hashed: a
``type_converter`` (Python types and rows <-> Arrow), an ``arrow_hasher`` (logical table
hashes, ``orcapod.hashing.ArrowHasher``) and a ``semantic_hasher`` (Python object hashes,
``orcapod.hashing.SemanticHasher``). Every datagram, stream and source
carries the key of the context it was made under (stored in the ``_context_key`` column), so
data written under one set of rules is never silently mixed with another.

This installation knows one context, ``orcapod:v1`` (version ``v1``): the hashing methods
``arrow_v1`` / ``arrow_row_v1`` / ``object_v1`` and the type mapping of
``orcapod.data.conversion``. ``resolve_context`` accepts ``None`` (the default), a version
(``"v1"``), a full key (``"orcapod:v1"``) or a ``DataContext`` (returned as is); anything else
raises ``ContextResolutionError`` listing the known ones. Keys of other implementations'
contexts (for instance ``std:v0.1:default``) are not accepted: their hashes are computed by
different algorithms, and pretending otherwise would make stored identities lie.

There is no process-wide "set the default context" switch: the default is fixed, and code
that wants another context passes it explicitly (``data_context=``).

Layer 3 (beside ``orcapod.data``): it uses the hashing layer and the Arrow conversion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pyarrow as pa

from orcapod.data import conversion
from orcapod.errors import ContextResolutionError
from orcapod.hashing import (
    ArrowHasher,
    SemanticHasher,
    get_default_arrow_hasher,
    get_default_semantic_hasher,
)
from orcapod.types import Schema
from orcapod.types.columns import DEFAULT_CONTEXT_KEY

__all__ = [
    "DataContext",
    "TypeConverter",
    "get_available_contexts",
    "get_context_info",
    "get_default_context",
    "resolve_context",
    "validate_all_contexts",
]


@dataclass(frozen=True)
class TypeConverter:
    """Python types, schemas and rows <-> Arrow (see ``orcapod.data.conversion``)."""

    def python_type_to_arrow_type(self, python_type: Any) -> pa.DataType:
        return conversion.python_to_arrow_type(python_type)

    def arrow_type_to_python_type(self, arrow_type: pa.DataType) -> Any:
        return conversion.arrow_to_python_type(arrow_type)

    def python_schema_to_arrow_schema(self, python_schema: Mapping[str, Any]) -> pa.Schema:
        return conversion.schema_to_arrow(python_schema)

    def arrow_schema_to_python_schema(self, arrow_schema: pa.Schema) -> Schema:
        return conversion.arrow_schema_to_schema(arrow_schema)

    def python_dicts_to_arrow_table(
        self,
        python_dicts: Sequence[Mapping[str, Any]],
        python_schema: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        rows = list(python_dicts)
        schema = conversion.infer_schema(rows, overrides=python_schema)
        return conversion.rows_to_table(rows, schema)

    def arrow_table_to_python_dicts(self, arrow_table: pa.Table) -> list[dict[str, Any]]:
        return conversion.table_to_pylist(arrow_table, conversion.table_schema(arrow_table))


@dataclass(frozen=True)
class DataContext:
    """A named, versioned set of type and hashing rules (see the module docstring)."""

    context_key: str
    version: str
    description: str
    type_converter: TypeConverter
    arrow_hasher: ArrowHasher
    semantic_hasher: SemanticHasher


_DEFAULT = DataContext(
    context_key=DEFAULT_CONTEXT_KEY,
    version=DEFAULT_CONTEXT_KEY.rpartition(":")[2],
    description=(
        "orcapod's first data context: arrow_v1 table and arrow_row_v1 row hashes, "
        "object_v1 value hashes, Path values identified by file content"
    ),
    type_converter=TypeConverter(),
    arrow_hasher=get_default_arrow_hasher(),
    semantic_hasher=get_default_semantic_hasher(),
)
_CONTEXTS: Mapping[str, DataContext] = MappingProxyType({_DEFAULT.version: _DEFAULT})


def get_available_contexts() -> list[str]:
    """The versions of the data contexts this installation knows (sorted)."""
    return sorted(_CONTEXTS)


def get_default_context() -> DataContext:
    return _DEFAULT


def _known() -> str:
    return ", ".join(f"{c.version!r} ({c.context_key!r})" for c in _CONTEXTS.values())


def resolve_context(context_info: str | DataContext | None = None) -> DataContext:
    """The ``DataContext`` for ``None`` (default), a version, a context key or a context."""
    if context_info is None:
        return _DEFAULT
    if isinstance(context_info, DataContext):
        return context_info
    if isinstance(context_info, str):
        found = _CONTEXTS.get(context_info)
        if found is None:
            found = next((c for c in _CONTEXTS.values() if c.context_key == context_info), None)
        if found is not None:
            return found
        raise ContextResolutionError(
            f"unknown data context {context_info!r}; known contexts: {_known()} - pass one "
            "of these, or None for the default"
        )
    raise ContextResolutionError(
        f"a data context is a version string, a context key, a DataContext or None, not "
        f"{type(context_info).__name__}"
    )


def resolve_context_key(context_info: str | DataContext | None) -> str:
    """The context key for a ``data_context=`` argument (validated)."""
    return resolve_context(context_info).context_key


def validate_all_contexts() -> dict[str, str | None]:
    """``{version: None}`` for every known context (None: valid). The contexts are built into
    the library, so they are always valid; the function exists for callers that check."""
    return {version: None for version in _CONTEXTS}


def get_context_info(version: str) -> dict[str, Any]:
    """``{"version", "context_key", "description"}`` of a known context."""
    context = resolve_context(version)
    return {
        "version": context.version,
        "context_key": context.context_key,
        "description": context.description,
    }
