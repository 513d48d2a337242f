import pyarrow as pa
import pytest

from orcapod.data import Datagram, Packet, Tag
from orcapod.errors import InputValidationError
from orcapod.hashing import hash_rows
from orcapod.types import ColumnConfig


def test_dict_and_table_forms_agree():
    from_dict = Packet({"a": 1, "b": "x"})
    from_table = Packet(pa.table({"a": [1], "b": ["x"]}))
    assert from_dict == from_table
    assert from_dict.as_dict() == from_table.as_dict() == {"a": 1, "b": "x"}
    assert from_dict.as_table().equals(from_table.as_table().cast(from_dict.as_table().schema))
    assert from_dict.content_hash() == from_table.content_hash()
    assert from_dict.keys() == ("a", "b")
    assert from_dict.schema() == {"a": int, "b": str}


def test_content_hash_covers_data_only_and_equals_the_bulk_row_hash():
    base = Packet({"a": 1, "b": "x"})
    with_info = Packet({"a": 1, "b": "x", "_source_a": "s::row_0::a", "__pod_ts": "t"})
    assert base.content_hash() == with_info.content_hash()
    assert base.content_hash() != Packet({"a": 2, "b": "x"}).content_hash()
    bulk = hash_rows(pa.table({"a": [0, 1], "b": ["y", "x"]}))
    assert base.content_hash().digest == bulk[1].as_py()


def test_a_multi_row_table_is_rejected():
    with pytest.raises(InputValidationError, match="one row"):
        Datagram(pa.table({"a": [1, 2]}))


def test_user_columns_may_not_start_with_underscore():
    with pytest.raises(InputValidationError, match="reserved"):
        Packet({"_x": 1})
    with pytest.raises(InputValidationError, match="reserved"):
        Tag({"_source_a": 1, "a": 1})


def test_tag_system_tags_are_hidden_unless_requested():
    tag = Tag({"s": "a", "_tag_source_id::abc": "src"})
    assert tag.as_dict() == {"s": "a"}
    assert tag.system_tags() == {"_tag_source_id::abc": "src"}
    assert tag.as_dict(ColumnConfig(system_tags=True)) == {"s": "a", "_tag_source_id::abc": "src"}
    assert tag.content_hash() == Tag({"s": "a"}).content_hash()


def test_packet_source_info_and_meta_views():
    p = Packet({"a": 1}, source_info={"a": "src::row_0::a"}, meta_info={"computed": True})
    assert p.source_info() == {"a": "src::row_0::a"}
    assert p.as_dict(all_info=True) == {
        "a": 1,
        "_source_a": "src::row_0::a",
        "__computed": True,
        "_context_key": p.context_key,
        "_content_hash": p.content_hash().to_string(),
    }
    assert p.get_meta_value("computed") is True
    table = p.as_table(columns={"source": True})
    assert table.column_names == ["a", "_source_a"]


def test_with_copies_leave_the_original_untouched():
    p = Packet({"a": 1, "b": 2}, source_info={"a": "s::r::a", "b": "s::r::b"})
    renamed = p.rename({"a": "z"})
    assert renamed.as_dict() == {"z": 1, "b": 2}
    assert renamed.source_info() == {"z": "s::r::a", "b": "s::r::b"}
    assert p.as_dict() == {"a": 1, "b": 2}
    updated = p.update(a=5)
    assert updated["a"] == 5 and updated.source_info()["a"] is None and p["a"] == 1
    assert p.with_columns(c=3.0).schema() == {"a": int, "b": int, "c": float}
    assert p.select("b").as_dict() == {"b": 2}
    assert p.drop("b").as_dict() == {"a": 1}
    with pytest.raises(InputValidationError):
        p.with_columns(a=1)
    with pytest.raises(InputValidationError):
        p.update(zz=1)
    with pytest.raises(InputValidationError):
        p.update(a="not an int")
    assert p.with_meta_columns(x=1).get_meta_value("x") == 1 and p.get_meta_value("x") is None


def test_constructor_arguments_by_position_and_name():
    d = Datagram({"a": 1, "b": None}, {"b": str | None}, {"run": 3})
    assert d.schema()["b"] == str | None and d.get_meta_value("run") == 3
    assert d.meta_columns == ("__run",)
    tag = Tag({"s": "x"}, {"_tag_source_id::abc": "src"}, python_schema={"s": str})
    assert tag.system_tags() == {"_tag_source_id::abc": "src"}
    packet = Packet({"v": 1.5}, {"computed": True}, {"v": "src::row_0::v"})
    assert packet.get_meta_value("computed") is True
    assert packet.source_info() == {"v": "src::row_0::v"}


def test_data_context_is_resolved_and_validated():
    from orcapod.contexts import resolve_context
    from orcapod.errors import ContextResolutionError

    d = Datagram({"a": 1}, data_context="v1")
    assert d.data_context_key == d.context_key == "orcapod:v1"
    assert d.data_context is resolve_context()
    assert Packet({"a": 1}, data_context=resolve_context()).data_context_key == "orcapod:v1"
    with pytest.raises(ContextResolutionError):
        Tag({"a": 1}, data_context="std:v9:nope")


def test_tables_and_batches_become_large_typed_rows():
    table = pa.table({"a": pa.array([1], pa.int32()), "s": pa.array(["x"], pa.string())})
    for data in (table, table.to_batches()[0]):
        d = Datagram(data)
        assert d.as_table().schema.field("s").type == pa.large_string()
        assert d.as_dict() == {"a": 1, "s": "x"}
        assert d.content_hash() == Datagram({"a": 1, "s": "x"}).content_hash()
    with pytest.raises(ValueError, match="one row"):
        Packet(pa.table({"a": [1, 2]}))


def test_tag_as_datagram_can_keep_system_tags():
    tag = Tag({"s": "x", "_tag_source_id::abc": "src"})
    assert tag.as_datagram().as_dict() == {"s": "x"}
    assert tag.as_datagram(all_info=True).as_dict()["_tag_source_id::abc"] == "src"
    assert tag.as_datagram(ColumnConfig(system_tags=True)).keys() == ("s", "_tag_source_id::abc")


def test_copy_and_arrow_compatible_dict(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    packet = Packet({"f": path, "n": 2}, source_info={"n": "s::row_0::n"})
    copy = packet.copy(include_cache=False)
    assert copy == packet and copy.source_info() == packet.source_info()
    assert copy.content_hash() == packet.content_hash()
    compatible = packet.as_arrow_compatible_dict()
    assert compatible["n"] == 2 and compatible["f"] != path  # a Path as Arrow holds it
    assert packet.rename(column_mapping={"n": "m"}).source_info()["m"] == "s::row_0::n"


def test_naming_a_missing_column_is_a_key_error():
    d = Datagram({"a": 1, "b": 2})
    for call in (
        lambda: d.update(c=3),
        lambda: d.drop("c"),
        lambda: d.select("c"),
        lambda: d.drop_meta_columns("nope"),
    ):
        with pytest.raises(KeyError):
            call()
        with pytest.raises(ValueError):
            call()
    assert d.drop("c", ignore_missing=True) == d
    with pytest.raises(InputValidationError, match="at least one data column"):
        Datagram(pa.table({"__meta": [1]}))


def test_an_untyped_none_value_is_an_optional_string():
    packet = Packet({"a": 1, "b": None})
    assert packet.schema() == {"a": int, "b": str | None} and packet["b"] is None
    assert Packet({"b": None}, python_schema={"b": int | None}).schema()["b"] == int | None
