"""Join: inner join on shared tags, system-tag provenance, commutativity, validation."""

import pyarrow as pa
import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import Join, MapPackets
from orcapod.sources import DictSource
from orcapod.streams import ArrowTableStream
from orcapod.types.columns import SCHEMA_HASH_CHARS


def test_inner_join_on_shared_tags(subjects, sessions, sorted_rows):
    out = Join()(subjects, sessions)
    assert out.keys() == (("subject", "session"), ("age", "weight"))
    assert sorted_rows(out.as_table()) == sorted_rows(
        pa.table(
            {
                "subject": ["s1", "s2", "s2"],
                "session": [1, 1, 2],
                "age": [30, 41, 41],
                "weight": [70.0, 82.5, 81.0],
            }
        )
    )


def test_system_tags_are_extended_with_pipeline_hash_and_position(subjects, sessions):
    out = Join()(subjects, sessions)
    by_hash = sorted([subjects, sessions], key=lambda s: s.pipeline_hash().to_string())
    expected = []
    for pos, source in enumerate(by_hash):
        h = source.pipeline_hash().to_hex(SCHEMA_HASH_CHARS)
        expected += [
            f"_tag_source_id::{h}::{h}:{pos}",
            f"_tag_record_id::{h}::{h}:{pos}",
        ]
    tags, _ = out.keys(all_info=True)
    assert list(tags[2:]) == expected
    table = out.as_table(all_info=True)
    for pos, source in enumerate(by_hash):
        h = source.pipeline_hash().to_hex(SCHEMA_HASH_CHARS)
        assert set(table.column(f"_tag_source_id::{h}::{h}:{pos}").to_pylist()) == {
            source.source_id
        }


def test_source_info_survives_the_join(subjects, sessions):
    table = Join()(subjects, sessions).as_table(all_info=True)
    rows = {(r["subject"], r["session"]): r for r in table.to_pylist()}
    assert rows[("s1", 1)]["_source_age"] == "subjects::row_0::age"
    assert rows[("s1", 1)]["_source_weight"] == "sessions::row_1::weight"
    assert rows[("s2", 2)]["_source_weight"] == "sessions::row_2::weight"
    _tag, packet = next(iter(Join()(subjects, sessions)))
    assert set(packet.source_info()) == {"age", "weight"}


def test_join_is_commutative_including_hidden_columns(subjects, sessions):
    ab = Join()(subjects, sessions).as_table(all_info=True)
    ba = Join()(sessions, subjects).as_table(all_info=True)
    assert ab.equals(ba)


def test_row_order_is_deterministic_and_documented(subjects, sessions):
    # rows follow the first canonical input, then the second
    out = Join()(subjects, sessions)
    first = min([subjects, sessions], key=lambda s: s.pipeline_hash().to_string())
    table = out.as_table(all_info=True)
    h = first.pipeline_hash().to_hex(SCHEMA_HASH_CHARS)
    record_ids = table.column(f"_tag_record_id::{h}::{h}:0").to_pylist()
    positions = [int(r.removeprefix("row_")) for r in record_ids]
    assert positions == sorted(positions)
    for _ in range(3):
        assert Join()(subjects, sessions).as_table(all_info=True).equals(table)


def test_three_way_join(subjects, sessions, assert_prediction_matches):
    notes = DictSource(
        [{"session": 1, "note": "a"}, {"session": 2, "note": "b"}],
        tag_columns=["session"],
        source_id="notes",
    )
    out = Join()(subjects, sessions, notes)
    tags, packets = out.keys()
    assert set(tags) == {"subject", "session"}
    assert set(packets) == {"age", "weight", "note"}
    rows = {(r["subject"], r["session"]): r["note"] for r in out.as_table().to_pylist()}
    assert rows == {("s1", 1): "a", ("s2", 1): "a", ("s2", 2): "b"}
    assert len(out.keys(all_info=True)[0]) == 2 + 6
    assert_prediction_matches(Join()(notes, sessions, subjects))


@pytest.fixture
def colours():
    return DictSource(
        [{"colour": "red", "hex": "f00"}, {"colour": "blue", "hex": "00f"}],
        tag_columns=["colour"],
    )


def test_disjoint_tags_raise_unless_the_cross_product_is_asked_for(subjects, colours):
    with pytest.raises(InputValidationError, match=r"share no tag column.*cross=True"):
        Join()(subjects, colours)
    with pytest.raises(InputValidationError, match="cross_join"):
        subjects.join(colours)
    out = Join(cross=True)(subjects, colours)
    assert len(out.as_table()) == 6
    assert set(out.keys()[0]) == {"subject", "colour"}
    fluent = subjects.cross_join(colours)
    assert fluent.content_hash() == out.content_hash()
    assert fluent.as_table(all_info=True).equals(out.as_table(all_info=True))


def test_a_stream_without_tags_needs_cross(subjects):
    settings = DictSource([{"threshold": 0.5}], tag_columns=[])
    with pytest.raises(InputValidationError, match=r"input 1: \[\]"):
        Join()(subjects, settings)
    assert (
        Join(cross=True)(subjects, settings).as_table().column("threshold").to_pylist() == [0.5] * 3
    )


def test_inputs_connected_through_a_chain_join_without_cross(subjects, sessions):
    visits = DictSource(
        [{"session": 1, "room": "A"}, {"session": 2, "room": "B"}], tag_columns=["session"]
    )
    ages = DictSource([{"age_group": "adult", "label_text": "x"}], tag_columns=["age_group"])
    # subjects-sessions share "subject", sessions-visits share "session": connected
    out = Join()(subjects, visits, sessions)
    assert out.as_table().num_rows == 3
    with pytest.raises(InputValidationError, match="share no tag column"):
        Join()(subjects, sessions, ages)


def test_cross_is_part_of_identity_only_when_true(subjects, colours):
    assert Join().parameters() == {}
    assert Join(cross=True).parameters() == {"cross": True}
    assert Join.from_config(Join(cross=True).to_config()).cross is True
    assert Join(cross=True).content_hash() != Join().content_hash()
    with pytest.raises(InputValidationError, match="cross"):
        Join(cross="yes")


def test_nulls_in_keys_never_match():
    a = DictSource([{"k": None, "x": 1}, {"k": 1, "x": 2}], tag_columns=["k"])
    b = DictSource([{"k": None, "y": 1}, {"k": 1, "y": 3}], tag_columns=["k"])
    out = Join()(a, b)
    assert out.as_table().to_pylist() == [{"k": 1, "x": 2, "y": 3}]
    # a shared key is never null in the output, and the prediction says so
    assert out.output_schema()[0] == {"k": int}


def test_keys_of_different_arrow_widths_join(sorted_rows):
    a = ArrowTableStream(
        pa.table({"k": pa.array(["a", "b"], pa.string()), "x": pa.array([1, 2], pa.int32())}),
        ["k"],
    )
    b = ArrowTableStream(
        pa.table({"k": pa.array(["b", "a"], pa.large_string()), "y": [3, 4]}), ["k"]
    )
    out = Join()(a, b)
    assert sorted_rows(out.as_table()) == [{"k": "a", "x": 1, "y": 4}, {"k": "b", "x": 2, "y": 3}]


def test_nested_tag_types_join_by_value(sorted_rows):
    a = DictSource([{"k": [1, 2], "x": 1}, {"k": [3], "x": 2}], tag_columns=["k"])
    b = DictSource([{"k": [3], "y": 5}, {"k": [1, 2], "y": 6}], tag_columns=["k"])
    out = Join()(a, b)
    assert sorted_rows(out.as_table()) == [
        {"k": [1, 2], "x": 1, "y": 6},
        {"k": [3], "x": 2, "y": 5},
    ]


def test_colliding_packet_columns_are_named(subjects):
    other = DictSource([{"subject": "s1", "age": 3}], tag_columns=["subject"])
    with pytest.raises(InputValidationError, match="'age'") as err:
        Join()(subjects, other)
    assert "MergeJoin" in str(err.value)


def test_shared_tag_type_conflict_is_named(subjects):
    other = DictSource([{"subject": 1, "height": 3.0}], tag_columns=["subject"])
    with pytest.raises(InputValidationError, match="'subject'"):
        Join()(subjects, other)


def test_tag_in_one_input_packet_in_another_is_rejected(subjects):
    other = DictSource([{"id": 1, "subject": "s1"}], tag_columns=["id"])
    with pytest.raises(InputValidationError, match="subject"):
        Join()(subjects, other)


def test_a_renamed_copy_of_a_stream_joins_with_itself(subjects, assert_prediction_matches):
    renamed = MapPackets({"age": "age2"})(subjects)
    out = Join()(subjects, renamed)
    assert out.as_table().to_pylist()[0] == {"subject": "s1", "age": 30, "age2": 30}
    assert_prediction_matches(Join()(subjects, renamed))


def test_single_input_passes_through(subjects):
    out = Join()(subjects)
    assert out.as_table(all_info=True).equals(subjects.as_table(all_info=True))


def test_meta_columns_pass_through_and_collisions_are_suffixed(
    with_meta, assert_prediction_matches
):
    other = ArrowTableStream(
        pa.table({"subject": ["s1"], "grade": ["a"], "__computed": [True], "__extra": [1]}),
        ["subject"],
    )
    out = Join()(with_meta, other)
    _, packets = out.keys(columns={"meta": True})
    metas = [p for p in packets if p.startswith("__")]
    assert "__extra" in metas
    assert sum(p.startswith("__computed::") for p in metas) == 2
    assert_prediction_matches(Join()(with_meta, other))


def test_context_is_kept(with_meta, subjects, assert_prediction_matches):
    out = Join()(with_meta, subjects)
    assert "_context_key" in out.layout.column_names
    assert_prediction_matches(Join()(with_meta, subjects))


def test_prediction_matches_computation(subjects, sessions, assert_prediction_matches):
    assert_prediction_matches(Join()(subjects, sessions))


def test_empty_inputs_join_to_an_empty_stream(subjects):
    empty = DictSource([], tag_columns=["subject"], data_schema={"subject": str, "h": float})
    out = Join()(subjects, empty)
    assert out.as_table().num_rows == 0
    assert out.keys()[0] == ("subject",)
    assert set(out.keys()[1]) == {"age", "h"}
