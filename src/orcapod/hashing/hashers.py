"""The hashing functions as objects, for code that passes "a hasher" around.

``ArrowHasher`` (``hash_table``, ``hash_schema``) and ``SemanticHasher`` (``hash_object``)
carry the method name of the hashes they make (``hasher_id``). They are the hashers of the
default data context (``orcapod.contexts``); ``get_default_arrow_hasher()`` and
``get_default_semantic_hasher()`` return them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from orcapod.hashing.arrow_hashing import TABLE_HASH_METHOD, hash_table
from orcapod.hashing.object_hashing import OBJECT_HASH_METHOD, hash_object
from orcapod.types import ContentHash

__all__ = [
    "ArrowHasher",
    "SemanticHasher",
    "get_default_arrow_hasher",
    "get_default_semantic_hasher",
]


@dataclass(frozen=True)
class ArrowHasher:
    """Logical hashes of Arrow tables (layout-independent; see ``arrow_hashing``)."""

    hasher_id: str = TABLE_HASH_METHOD

    def hash_table(self, table: pa.Table | pa.RecordBatch) -> ContentHash:
        return hash_table(table)

    def hash_schema(self, schema: pa.Schema) -> ContentHash:
        """Hash of an Arrow schema: its field names and logical types, in any order."""
        return hash_table(schema.empty_table())


@dataclass(frozen=True)
class SemanticHasher:
    """Hashes of Python values by their content (see ``object_hashing``)."""

    hasher_id: str = OBJECT_HASH_METHOD

    def hash_object(self, obj: Any) -> ContentHash:
        return hash_object(obj)


_ARROW = ArrowHasher()
_SEMANTIC = SemanticHasher()


def get_default_arrow_hasher() -> ArrowHasher:
    return _ARROW


def get_default_semantic_hasher() -> SemanticHasher:
    return _SEMANTIC
