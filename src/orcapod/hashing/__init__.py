"""Layer 2: stable, logical identity of Arrow data, Python objects and functions.

``hash_table`` / ``hash_rows`` hash Arrow data logically (layout-independent, vectorised);
``hash_object`` hashes Python values through a canonical tagged encoding; ``hash_file`` a
file's (or directory's) content. ``ArrowHasher`` / ``SemanticHasher`` wrap them as objects
(the default data context's hashers, also from ``get_default_arrow_hasher()`` /
``get_default_semantic_hasher()``). Helpers used by other
layers live in their modules: ``arrow_hashing`` (``PATH_STRUCT_TYPE``, ``is_path_struct``,
``row_hash``, ``ROW_HASH_METHOD``) and ``function_identity`` (code, signature, git info).
"""

from orcapod.hashing.arrow_hashing import hash_rows, hash_table
from orcapod.hashing.file_hashing import hash_file
from orcapod.hashing.hashers import (
    ArrowHasher,
    SemanticHasher,
    get_default_arrow_hasher,
    get_default_semantic_hasher,
)
from orcapod.hashing.object_hashing import hash_object

__all__ = [
    "ArrowHasher",
    "SemanticHasher",
    "get_default_arrow_hasher",
    "get_default_semantic_hasher",
    "hash_file",
    "hash_object",
    "hash_rows",
    "hash_table",
]
