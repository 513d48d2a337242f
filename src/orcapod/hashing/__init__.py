"""Layer 2: stable, logical identity of Arrow data, Python objects and functions.

``hash_table`` / ``hash_rows`` hash Arrow data logically (layout-independent, vectorised);
``hash_object`` hashes Python values through a canonical tagged encoding. Helpers used by other
layers live in their modules: ``arrow_hashing`` (``PATH_STRUCT_TYPE``, ``is_path_struct``,
``row_hash``, ``ROW_HASH_METHOD``) and ``function_identity`` (code, signature, git info).
"""

from orcapod.hashing.arrow_hashing import hash_rows, hash_table
from orcapod.hashing.object_hashing import hash_object

__all__ = ["hash_object", "hash_rows", "hash_table"]
