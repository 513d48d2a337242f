import pyarrow as pa

from orcapod.hashing import (
    ArrowHasher,
    SemanticHasher,
    get_default_arrow_hasher,
    get_default_semantic_hasher,
    hash_object,
    hash_table,
)


def test_hashers_wrap_the_hash_functions_and_name_their_method():
    table = pa.table({"a": [1, 2]})
    arrow = get_default_arrow_hasher()
    assert isinstance(arrow, ArrowHasher)
    assert arrow.hash_table(table) == hash_table(table)
    assert arrow.hasher_id == hash_table(table).method
    semantic = get_default_semantic_hasher()
    assert isinstance(semantic, SemanticHasher)
    assert semantic.hash_object([1, "x"]) == hash_object([1, "x"])
    assert semantic.hasher_id == hash_object(1).method


def test_schema_hash_ignores_field_order_and_string_layout():
    hasher = ArrowHasher()
    a = pa.schema([("a", pa.int64()), ("b", pa.string())])
    b = pa.schema([("b", pa.large_string()), ("a", pa.int64())])
    assert hasher.hash_schema(a) == hasher.hash_schema(b)
    assert hasher.hash_schema(a) != hasher.hash_schema(pa.schema([("a", pa.float64())]))
