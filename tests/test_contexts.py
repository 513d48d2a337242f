import pyarrow as pa
import pytest

from orcapod.contexts import (
    DataContext,
    get_available_contexts,
    get_context_info,
    get_default_context,
    resolve_context,
    validate_all_contexts,
)
from orcapod.errors import ContextResolutionError, InputValidationError
from orcapod.hashing import hash_object, hash_table
from orcapod.types import Schema


def test_the_default_context_resolves_by_none_version_key_and_itself():
    default = get_default_context()
    assert isinstance(default, DataContext)
    assert resolve_context() is default
    assert resolve_context(default.version) is default
    assert resolve_context(default.context_key) is default
    assert resolve_context(default) is default
    assert get_available_contexts() == [default.version]
    assert default.context_key == "orcapod:v1" and default.version == "v1"


def test_unknown_contexts_are_rejected_with_the_known_ones():
    with pytest.raises(ContextResolutionError, match="orcapod:v1"):
        resolve_context("std:v0.1:default")
    with pytest.raises(InputValidationError):
        resolve_context(3)  # type: ignore[arg-type]


def test_context_components_are_the_library_hashers_and_converter():
    context = resolve_context()
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    assert context.arrow_hasher.hash_table(table) == hash_table(table)
    assert context.semantic_hasher.hash_object({"k": 1}) == hash_object({"k": 1})
    converter = context.type_converter
    arrow = converter.python_schema_to_arrow_schema({"a": int, "b": str | None})
    assert arrow.field("b").nullable and arrow.field("b").type == pa.large_string()
    assert converter.arrow_schema_to_python_schema(arrow) == Schema({"a": int, "b": str | None})
    rows = [{"a": 1, "b": "x"}]
    assert (
        converter.arrow_table_to_python_dicts(converter.python_dicts_to_arrow_table(rows)) == rows
    )
    assert converter.python_type_to_arrow_type(float) == pa.float64()
    assert converter.arrow_type_to_python_type(pa.int32()) is int


def test_context_info_and_validation():
    info = get_context_info("v1")
    assert info["context_key"] == "orcapod:v1" and info["description"]
    assert validate_all_contexts() == {"v1": None}
