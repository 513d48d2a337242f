import pytest

from orcapod.errors import FieldNotFoundError, SchemaError
from orcapod.types import Schema


def test_schema_is_an_immutable_hashable_mapping():
    s = Schema({"a": int, "b": list[float]})
    assert s["a"] is int and list(s) == ["a", "b"] and len(s) == 2
    assert hash(s) == hash(Schema({"a": int, "b": list[float]}))
    assert {s: 1}[Schema({"a": int, "b": list[float]})] == 1
    with pytest.raises(TypeError):
        s["c"] = str  # type: ignore[index]


def test_schema_equals_plain_dicts_by_fields_and_schemas_by_optional_fields_too():
    assert Schema({"a": int}) == {"a": int}
    assert Schema({"a": int}) != {"a": str}
    assert Schema({"a": int}, optional_fields=["a"]) != Schema({"a": int})
    assert hash(Schema({"a": int}, optional_fields=["a"])) != hash(Schema({"a": int}))
    assert Schema({"a": int}) != 3


def test_optional_fields_must_exist():
    with pytest.raises(SchemaError, match="not fields"):
        Schema({"a": int}, optional_fields=["b"])
    s = Schema({"a": int, "b": str}, optional_fields=["b"])
    assert s.required_fields == ("a",) and s.is_required("a") and not s.is_required("b")


def test_merge_conflict_names_the_column():
    with pytest.raises(SchemaError, match="'a'"):
        Schema({"a": int}).merge({"a": str})
    assert Schema({"a": int}).merge({"b": str}) == {"a": int, "b": str}


def test_select_drop_rename():
    s = Schema({"a": int, "b": str, "c": float}, optional_fields=["c"])
    assert s.select("a", "c") == Schema({"a": int, "c": float}, optional_fields=["c"])
    assert s.drop("a") == Schema({"b": str, "c": float}, optional_fields=["c"])
    assert s.rename({"a": "x"}) == Schema({"x": int, "b": str, "c": float}, optional_fields=["c"])
    with pytest.raises(SchemaError):
        s.rename({"a": "b"})
    with pytest.raises(SchemaError):
        s.select("zzz")


def test_repr_shows_python_types():
    assert repr(Schema({"a": int, "b": float | None})) == "Schema({'a': int, 'b': float | None})"


def test_is_compatible_with_asks_for_every_field_with_the_same_type():
    narrow = Schema({"x": int})
    wide = Schema({"x": int, "y": str})
    assert narrow.is_compatible_with(wide) and not wide.is_compatible_with(narrow)
    assert not narrow.is_compatible_with(Schema({"x": int | None}))
    assert not narrow.is_compatible_with(Schema({"x": bool}))
    assert narrow.is_compatible_with({"x": int})
    assert Schema.empty().is_compatible_with(wide)
    assert Schema({"x": int}, optional_fields=["x"]).is_compatible_with(narrow)


def test_selecting_a_missing_field_is_a_key_error():
    with pytest.raises(KeyError, match="'q'"):
        Schema({"x": int}).select("q")
    with pytest.raises(FieldNotFoundError):
        Schema({"x": int}).select("q")
