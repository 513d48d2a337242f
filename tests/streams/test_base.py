import pyarrow as pa
import pytest

import orcapod  # noqa: F401  (registers the fluent operator shortcuts)
from orcapod.errors import InputValidationError
from orcapod.operators import Batch, Join, MapTags, PolarsFilter, SelectTagColumns
from orcapod.sources import DictSource


@pytest.fixture
def subjects():
    return DictSource(
        [{"subject": "a", "age": 30}, {"subject": "b", "age": 40}], ["subject"], source_id="s"
    )


@pytest.fixture
def visits():
    rows = [{"subject": "a", "visit": 1, "w": 1.0}, {"subject": "a", "visit": 2, "w": 2.0}]
    return DictSource(rows, ["subject", "visit"], source_id="v")


def test_shortcuts_take_the_earlier_keyword_names(subjects, visits):
    joined = visits.join(other_stream=subjects, label="both")
    assert joined.content_hash() == Join()(visits, subjects).content_hash()
    assert joined.label == "both"
    assert visits.semi_join(other_stream=subjects).keys() == visits.keys()
    renamed = visits.map_tags(name_map={"visit": "session"}, drop_unmapped=False)
    assert renamed.content_hash() == MapTags({"visit": "session"})(visits).content_hash()
    picked = visits.select_tag_columns(tag_columns=["subject"], strict=True)
    assert picked.content_hash() == SelectTagColumns(["subject"])(visits).content_hash()
    assert visits.select_tag_columns("subject").content_hash() == picked.content_hash()
    batched = visits.batch(batch_size=1, drop_partial_batch=True)
    assert batched.content_hash() == Batch(1, True)(visits).content_hash()
    assert visits.select_packet_columns(packet_columns=["w"]).keys()[1] == ("w",)
    assert visits.drop_tag_columns(tag_columns="visit").keys()[0] == ("subject",)


def test_polars_filter_constraint_map(subjects):
    by_map = subjects.polars_filter(constraint_map={"subject": "a"})
    assert (
        by_map.content_hash() == PolarsFilter(constraints={"subject": "a"})(subjects).content_hash()
    )
    assert by_map.as_table().column("age").to_pylist() == [30]
    assert subjects.polars_filter(subject="b").as_table().column("age").to_pylist() == [40]


def test_iter_slices_of_any_stream_are_its_table_in_slices(subjects, visits):
    joined = subjects.join(visits)
    config = {"system_tags": True, "source": True}
    slices = list(joined.iter_slices(2, config))
    assert all(s.num_rows <= 2 for s in slices)
    assert pa.concat_tables(slices).equals(joined.as_table(config))
    with pytest.raises(InputValidationError, match="rows must be a whole number of at least 1"):
        joined.iter_slices(0)
