"""GroupBy: one row per key; packets, source info and system tags become lists."""

import pyarrow.compute as pc
import pytest

from orcapod.errors import InputValidationError
from orcapod.operators import GroupBy, Join
from orcapod.sources import DictSource


@pytest.fixture
def images():
    return DictSource(
        [
            {"subject": "s2", "image": 2, "area": 5.0},
            {"subject": "s1", "image": 3, "area": 1.0},
            {"subject": "s1", "image": 1, "area": 2.0},
            {"subject": "s2", "image": 1, "area": None},
            {"subject": "s3", "image": 7, "area": 4.0},
        ],
        tag_columns=["subject", "image"],
        source_id="imgs",
    )


def test_one_row_per_group_sorted_by_key_elements_by_remaining_tags(images):
    out = GroupBy(["subject"])(images)
    assert out.as_table().to_pylist() == [
        {"subject": "s1", "area": [2.0, 1.0]},  # image 1, then image 3
        {"subject": "s2", "area": [None, 5.0]},  # image 1, then image 2
        {"subject": "s3", "area": [4.0]},
    ]


def test_source_info_and_system_tags_are_kept_per_element(images):
    table = GroupBy("subject")(images).as_table(columns={"source": True, "system_tags": True})
    first = table.to_pylist()[0]
    assert first["_source_area"] == ["imgs::row_2::area", "imgs::row_1::area"]
    record_ids = [v for k, v in first.items() if k.startswith("_tag_record_id")]
    assert record_ids == [["row_2", "row_1"]]
    assert [k for k in first if k.startswith("_tag_")] == [
        k for k in images.keys(all_info=True)[0] if k.startswith("_tag_")
    ]


def test_schema_is_predicted_without_computing(images, assert_prediction_matches):
    out = GroupBy("subject")(images)
    tags, packets = out.output_schema(all_info=True)
    assert tags["subject"] is str
    assert all(tp == list[str] for name, tp in tags.items() if name.startswith("_tag_"))
    assert packets["area"] == list[float | None]  # one area is None
    assert packets["_source_area"] == list[str]
    assert not out.is_computed
    assert_prediction_matches(GroupBy("subject")(images))


def test_meta_and_context(with_meta, assert_prediction_matches):
    out = GroupBy("subject")(with_meta)
    assert out.as_table(columns={"meta": True, "context": True}).to_pylist() == [
        {"subject": "s1", "score": [1.5], "__computed": [True], "_context_key": "orcapod:v1"},
        {"subject": "s2", "score": [2.5], "__computed": [False], "_context_key": "orcapod:v1"},
    ]
    assert_prediction_matches(GroupBy("subject")(with_meta))


def test_several_keys_and_null_keys_form_their_own_group():
    s = DictSource(
        [
            {"a": 1, "b": None, "v": 1},
            {"a": 1, "b": "x", "v": 2},
            {"a": 1, "b": None, "v": 3},
            {"a": None, "b": "x", "v": 4},
        ],
        tag_columns=["a", "b"],
    )
    out = GroupBy(["b", "a"])(s)
    assert out.keys()[0] == ("a", "b")  # input tag order
    assert out.as_table().to_pylist() == [
        {"a": 1, "b": "x", "v": [2]},
        {"a": 1, "b": None, "v": [1, 3]},
        {"a": None, "b": "x", "v": [4]},
    ]


def test_flattening_gives_back_every_row(images):
    table = GroupBy("subject")(images).as_table(columns={"source": True})
    flat = sorted(pc.list_flatten(table.column("_source_area")).to_pylist())
    assert flat == sorted(
        images.as_table(columns={"source": True}).column("_source_area").to_pylist()
    )


def test_output_does_not_depend_on_input_row_order(images):
    rows = images.as_table().to_pylist()
    shuffled = DictSource(
        rows[::-1],
        tag_columns=["subject", "image"],
        data_schema={"subject": str, "image": int, "area": float | None},
    )
    assert GroupBy("subject")(shuffled).as_table().equals(GroupBy("subject")(images).as_table())


def test_group_by_after_a_join_keeps_both_sources_per_element(images):
    subjects = DictSource(
        [{"subject": "s1", "age": 30}, {"subject": "s2", "age": 41}],
        tag_columns=["subject"],
        source_id="subjects",
    )
    out = Join()(images, subjects).group_by("subject")
    row = out.as_table(columns={"source": True}).to_pylist()[0]
    assert row["age"] == [30, 30]
    assert row["_source_age"] == ["subjects::row_0::age", "subjects::row_0::age"]


def test_empty_input_gives_no_group():
    empty = DictSource([], tag_columns=["k"], data_schema={"k": int, "v": int})
    out = GroupBy("k")(empty)
    assert out.as_table().num_rows == 0
    assert out.output_schema() == ({"k": int}, {"v": list[int]})


def test_validation_at_application(images):
    with pytest.raises(InputValidationError, match=r"packet columns.*packet_to_tags"):
        GroupBy("area")(images)
    with pytest.raises(InputValidationError, match=r"\['nope'\] are not tag columns"):
        GroupBy(["subject", "nope"])(images)
    with pytest.raises(InputValidationError, match="Batch"):
        GroupBy([])
    with pytest.raises(InputValidationError, match="repeats"):
        GroupBy(["subject", "subject"])


def test_identity_ignores_the_order_of_by(images):
    assert (
        GroupBy(["subject", "image"]).content_hash() == GroupBy(["image", "subject"]).content_hash()
    )
    assert GroupBy.from_config(GroupBy("subject").to_config()).by == ("subject",)


def test_iteration_yields_list_values(images):
    tag, packet = next(iter(images.group_by("subject")))
    assert tag.as_dict() == {"subject": "s1"}
    assert packet["area"] == [2.0, 1.0]
