"""Select / drop / map of tag and packet columns."""

import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import (
    DropPacketColumns,
    DropTagColumns,
    MapPackets,
    MapTags,
    SelectPacketColumns,
    SelectTagColumns,
)
from orcapod.sources import DictSource


@pytest.fixture
def wide():
    return DictSource(
        [{"a": 1, "b": "x", "p": 1.0, "q": True, "r": "z"}],
        tag_columns=["a", "b"],
        source_id="wide",
    )


def test_select_and_drop_tags_keep_system_tags(wide, assert_prediction_matches):
    for op in (SelectTagColumns(["b"]), DropTagColumns(["a"])):
        out = op(wide)
        assert out.keys() == (("b",), ("p", "q", "r"))
        sys_tags = [k for k in out.keys(all_info=True)[0] if k.startswith("_tag_")]
        assert len(sys_tags) == 2
        assert_prediction_matches(op(wide))


def test_select_and_drop_packets_carry_source_info(wide, assert_prediction_matches):
    for op in (SelectPacketColumns(["q", "p"]), DropPacketColumns("r")):
        out = op(wide)
        assert out.keys(columns={"source": True}) == (
            ("a", "b"),
            ("p", "q", "_source_p", "_source_q"),
        )
        assert out.as_table(columns={"source": True}).column("_source_q").to_pylist() == [
            "wide::row_0::q"
        ]
        assert_prediction_matches(op(wide))


def test_strict_names_unknown_columns(wide):
    with pytest.raises(InputValidationError, match=r"\['zz'\]"):
        SelectTagColumns(["a", "zz"])(wide)
    with pytest.raises(InputValidationError, match="packet"):
        DropPacketColumns(["a"])(wide)  # a tag, not a packet column
    assert DropTagColumns(["zz", "a"], strict=False)(wide).keys()[0] == ("b",)


def test_a_stream_keeps_at_least_one_packet_column(wide):
    with pytest.raises(InputValidationError, match="no packet column"):
        DropPacketColumns(["p", "q", "r"])(wide)
    with pytest.raises(InputValidationError, match="no packet column"):
        SelectPacketColumns(["zz"], strict=False)(wide)
    assert DropTagColumns(["a", "b"])(wide).keys()[0] == ()


def test_selection_order_does_not_matter(wide):
    assert (
        SelectPacketColumns(["p", "q"]).content_hash()
        == SelectPacketColumns(["q", "p"]).content_hash()
    )
    assert (
        SelectPacketColumns(["p", "q"])(wide).keys() == SelectPacketColumns(["q", "p"])(wide).keys()
    )


def test_map_tags_renames_and_keeps_values(wide, assert_prediction_matches):
    out = MapTags({"a": "id"})(wide)
    assert out.as_table().to_pylist() == [{"id": 1, "b": "x", "p": 1.0, "q": True, "r": "z"}]
    assert MapTags({"a": "id"}, drop_unmapped=True)(wide).keys()[0] == ("id",)
    assert_prediction_matches(MapTags({"a": "id", "b": "name"})(wide))


def test_map_packets_renames_source_info_and_keeps_its_text(wide, assert_prediction_matches):
    out = MapPackets({"p": "weight"})(wide)
    table = out.as_table(columns={"source": True})
    assert table.column("_source_weight").to_pylist() == ["wide::row_0::p"]
    assert "_source_p" not in table.column_names
    kept = MapPackets({"p": "weight"}, drop_unmapped=True)(wide)
    assert kept.keys(columns={"source": True})[1] == ("weight", "_source_weight")
    assert_prediction_matches(MapPackets({"p": "weight"}, drop_unmapped=True)(wide))


def test_swaps_are_allowed(wide):
    out = MapPackets({"p": "q", "q": "p"})(wide)
    assert out.as_table().to_pylist()[0] == {"a": 1, "b": "x", "q": 1.0, "p": True, "r": "z"}


@pytest.mark.parametrize(
    ("op", "match"),
    [
        (MapTags({"a": "b"}), "'b'"),
        (MapTags({"a": "p"}), "'p'"),
        (MapPackets({"p": "q"}), "'q'"),
        (MapPackets({"p": "_hidden"}), "_hidden"),
        (MapPackets({"nope": "x"}), "nope"),
        (MapTags({"p": "x"}), "tag"),
    ],
)
def test_rename_problems_are_named(wide, op, match):
    with pytest.raises(InputValidationError, match=match):
        op(wide)


@pytest.mark.parametrize("op", [MapPackets({"nope": "x"}), MapTags({"nope": "x"})])
def test_rename_hints_never_suggest_a_keyword_the_class_lacks(wide, op):
    with pytest.raises(InputValidationError, match="every key of the mapping") as info:
        op(wide)
    assert "strict" not in str(info.value)


def test_meta_and_context_pass_through(with_meta, assert_prediction_matches):
    out = MapPackets({"score": "s"})(with_meta)
    assert out.as_table(columns={"meta": True, "context": True}).to_pylist() == [
        {"subject": "s1", "s": 1.5, "__computed": True, "_context_key": "orcapod:v1"},
        {"subject": "s2", "s": 2.5, "__computed": False, "_context_key": "orcapod:v1"},
    ]
    assert_prediction_matches(MapPackets({"score": "s"})(with_meta))
    assert_prediction_matches(DropTagColumns(["subject"])(with_meta))


def test_bad_arguments_fail_at_construction():
    with pytest.raises(InputValidationError):
        MapTags(["a"])
    with pytest.raises(InputValidationError):
        MapTags({"a": ""})
    with pytest.raises(InputValidationError):
        SelectTagColumns([1])


def test_rename_operators_take_name_map_and_keep_their_identity():
    from orcapod.operators import MapPackets, MapTags

    by_keyword = MapTags(name_map={"a": "b"}, drop_unmapped=True)
    assert by_keyword.content_hash() == MapTags({"a": "b"}, True).content_hash()
    assert by_keyword.name_map == {"a": "b"}
    assert by_keyword.parameters() == {"mapping": {"a": "b"}, "drop_unmapped": True}
    rebuilt = MapPackets.from_config(MapPackets(name_map={"x": "y"}).to_config())
    assert rebuilt.content_hash() == MapPackets({"x": "y"}).content_hash()
