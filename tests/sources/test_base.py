import pyarrow as pa
import pytest

from orcapod.errors import InputValidationError
from orcapod.sources import ArrowTableSource, DictSource
from orcapod.types import ColumnConfig, Schema


def test_getting_started_tour(source):
    tag_schema, packet_schema = source.output_schema()
    assert tag_schema == Schema({"subject": str, "session": int})
    assert packet_schema == Schema({"weight": float, "height": float})
    assert source.keys() == (("subject", "session"), ("weight", "height"))
    pairs = [(t.as_dict(), p.as_dict()) for t, p in source.iter_packets()]
    assert pairs[0] == ({"subject": "s1", "session": 1}, {"weight": 70.0, "height": 1.75})
    assert list(source.as_table().to_pandas().columns) == ["subject", "session", "weight", "height"]


def test_system_tags_and_source_info_follow_the_naming_contract(source):
    schema_hash = source.pipeline_hash().to_hex(12)
    table = source.as_table(all_info=True)
    assert table.column(f"_tag_source_id::{schema_hash}").to_pylist() == ["patients"] * 3
    assert table.column(f"_tag_record_id::{schema_hash}").to_pylist() == ["row_0", "row_1", "row_2"]
    assert table.column("_source_weight").to_pylist()[2] == "patients::row_2::weight"
    tag, packet = next(iter(source))
    assert tag.system_tags() == {
        f"_tag_source_id::{schema_hash}": "patients",
        f"_tag_record_id::{schema_hash}": "row_0",
    }
    assert packet.source_info() == {
        "weight": "patients::row_0::weight",
        "height": "patients::row_0::height",
    }


def test_record_id_column_gives_value_based_record_ids(rows):
    for i, r in enumerate(rows):
        r["rid"] = f"r{i}"
    src = DictSource(rows, ["subject", "session"], source_id="p", record_id_column="rid")
    _, packet = next(iter(src))
    assert packet.source_info()["weight"] == "p::rid=r0::weight"
    rows[1]["rid"] = "r0"
    with pytest.raises(InputValidationError, match="unique"):
        DictSource(rows, ["subject"], record_id_column="rid")


@pytest.mark.parametrize(
    "ids",
    [[3, 1, 2, 1], [0, 1, 2, 2], [5, 5], [1, None, 2]],
    ids=["unsorted-repeat", "sorted-repeat", "all-same", "null"],
)
def test_integer_record_id_column_must_be_unique_and_non_null(ids):
    table = pa.table({"rid": pa.array(ids, pa.int64()), "v": list(range(len(ids)))})
    with pytest.raises(InputValidationError, match="unique, non-null"):
        ArrowTableSource(table, ["rid"], record_id_column="rid")


def test_integer_record_ids_in_any_order_are_accepted():
    table = pa.table({"rid": pa.array([7, -2, 40, 3], pa.int64()), "v": [1, 2, 3, 4]})
    src = ArrowTableSource(table, ["rid"], source_id="s", record_id_column="rid")
    assert [p.source_info()["v"] for _, p in src.iter_packets()][1] == "s::rid=-2::v"


def test_content_hash_reflects_data_even_with_the_same_source_id(rows):
    a = DictSource(rows, ["subject", "session"], source_id="same")
    rows[0]["weight"] = 71.0
    b = DictSource(rows, ["subject", "session"], source_id="same")
    assert a.content_hash() != b.content_hash()
    assert a.pipeline_hash() == b.pipeline_hash()


def test_default_source_id_is_a_truncated_data_hash(rows):
    a = DictSource(rows, ["subject"])
    assert len(a.source_id) == 20
    assert a.source_id == DictSource(rows, ["subject"]).source_id
    rows[0]["weight"] = 1.0
    assert a.source_id != DictSource(rows, ["subject"]).source_id


def test_pipeline_hash_depends_only_on_schemas(rows):
    a = DictSource(rows, ["subject", "session"], source_id="x")
    b = DictSource(rows[:1], ["subject", "session"], source_id="y")
    assert a.pipeline_hash() == b.pipeline_hash()
    c = DictSource(rows, ["subject"], source_id="x")
    assert a.pipeline_hash() != c.pipeline_hash()


def test_bad_input_is_named(rows):
    with pytest.raises(InputValidationError, match="'nope'"):
        DictSource(rows, ["nope"])
    with pytest.raises(InputValidationError, match="reserved"):
        DictSource([{"_x": 1, "a": 2}], ["a"])
    with pytest.raises(InputValidationError, match="data_schema"):
        DictSource([], ["a"])
    with pytest.raises(InputValidationError, match="duplicate"):
        ArrowTableSource(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"]))
    with pytest.raises(InputValidationError, match="packet"):
        DictSource(rows, ["subject", "session", "weight", "height"])
    with pytest.raises(InputValidationError, match="'::'"):
        DictSource(rows, ["subject"], source_id="a::b")


def test_empty_source_with_a_schema():
    src = DictSource([], ["a"], data_schema={"a": str, "b": int})
    assert src.output_schema() == (Schema({"a": str}), Schema({"b": int}))
    assert src.as_table(all_info=True).num_rows == 0
    assert list(src.iter_packets()) == []


def test_as_table_views(source):
    assert source.as_table(ColumnConfig(source=True)).column_names == [
        "subject",
        "session",
        "weight",
        "height",
        "_source_weight",
        "_source_height",
    ]
    hashed = source.as_table(ColumnConfig(content_hash=True)).column("_content_hash").to_pylist()
    packets = [p for _, p in source.iter_packets()]
    assert hashed == [p.content_hash().to_string() for p in packets]
    assert source.as_polars_df().shape == (3, 4)
    assert source.as_pandas_df(index_by_tags=True).index.names == ["subject", "session"]


def test_infer_nullable_chooses_between_the_data_and_the_arrow_schema():
    table = pa.table({"id": [1, 2], "x": [1.0, None], "y": [3, 4]})  # every field nullable
    inferred = ArrowTableSource(table, ["id"], infer_nullable=True)
    assert inferred.output_schema() == (Schema({"id": int}), Schema({"x": float | None, "y": int}))
    assert ArrowTableSource(table, ["id"]).output_schema() == inferred.output_schema()
    trusted = ArrowTableSource(table, ["id"], infer_nullable=False)
    assert trusted.output_schema()[1] == Schema({"x": float | None, "y": int | None})
    assert trusted.pipeline_hash() != inferred.pipeline_hash()
    assert [p.schema()["y"] for _, p in trusted.iter_packets()] == [int | None] * 2


def test_system_tag_columns_become_hidden_system_tags():
    table = pa.table({"id": [1, 2], "batch": ["b1", "b2"], "x": [1.0, 2.0]})
    source = ArrowTableSource(table, "id", system_tag_columns=["batch"], source_id="s")
    assert source.keys() == (("id",), ("x",))
    tags = source.keys(ColumnConfig(system_tags=True))[0]
    assert "_tag_batch" in tags
    tag, _ = next(iter(source))
    assert tag.system_tags()["_tag_batch"] == "b1"
    with pytest.raises(InputValidationError, match="system_tag_columns"):
        ArrowTableSource(table, "id", system_tag_columns=["id"])


def test_sources_carry_their_data_context():
    from orcapod.errors import ContextResolutionError

    source = DictSource([{"a": 1, "b": 2}], ["a"], data_context="v1")
    assert source.data_context_key == "orcapod:v1"
    assert source.as_table(ColumnConfig(context=True)).column("_context_key")[0].as_py() == (
        "orcapod:v1"
    )
    with pytest.raises(ContextResolutionError):
        DictSource([{"a": 1, "b": 2}], ["a"], data_context="v0")
    assert source.producer is None and source.upstreams == ()


def test_resolve_field_reads_one_value_by_record_id(source):
    assert source.resolve_field("row_1", "weight") == 82.5
    keyed = DictSource(
        [{"k": "a", "v": 1}, {"k": "b", "v": 2}], ["k"], record_id_column="k", source_id="kv"
    )
    assert keyed.resolve_field("k=b", "v") == 2
    with pytest.raises(KeyError, match="row_9"):
        source.resolve_field("row_9", "weight")
    with pytest.raises(KeyError, match="nope"):
        source.resolve_field("row_0", "nope")


def test_arrow_table_source_table_holds_the_enriched_rows():
    table = pa.table({"id": [1], "x": [2.0]})
    source = ArrowTableSource(table, ["id"], (), None, True, source_id="t")
    assert "_source_x" in source.table.column_names
    assert any(c.startswith("_tag_source_id::") for c in source.table.column_names)


def test_tag_columns_none_or_not_names_is_refused_clearly():
    with pytest.raises(InputValidationError, match=r"tag_columns=None\): pass a column name"):
        DictSource([{"a": 1}], tag_columns=None)
    with pytest.raises(InputValidationError, match="column names must be strings, got 1"):
        DictSource([{"a": 1}], system_tag_columns=[1])


@pytest.mark.parametrize("record_id_column", [None, "id"])
@pytest.mark.parametrize(
    "columns",
    [None, ColumnConfig(system_tags=True, source=True), ColumnConfig.all()],
    ids=["plain", "provenance", "all"],
)
def test_iter_slices_are_the_table_in_slices(record_id_column, columns):
    """A source builds each slice's system tags and source info on its own (so a large
    source is never enriched whole for a chunked read); the slices are the table."""
    table = pa.table({"id": list(range(10)), "x": [i * 0.5 for i in range(10)]})
    source = ArrowTableSource(
        table, tag_columns=["id"], source_id="t", record_id_column=record_id_column
    )
    slices = list(source.iter_slices(4, columns))
    assert [s.num_rows for s in slices] == [4, 4, 2]
    assert pa.concat_tables(slices).equals(source.as_table(columns))
    # the same once the source's rows are enriched whole
    assert pa.concat_tables(source.iter_slices(3, columns)).equals(source.as_table(columns))


def test_a_source_schemas_are_the_same_before_and_after_its_rows_are_enriched():
    source = DictSource([{"id": 1, "x": None}, {"id": 2, "x": 2.0}], tag_columns=["id"])
    tags, packets = source.output_schema(ColumnConfig.all())  # (from its columns alone)
    assert "_source_x" in packets and any(t.startswith("_tag_record_id::") for t in tags)
    assert packets["x"] == float | None
    assert source.keys(ColumnConfig.all()) == (tuple(tags), tuple(packets))
    assert (tags, packets) == source.stream.output_schema(ColumnConfig.all())


def test_iter_slices_needs_a_positive_size(source):
    with pytest.raises(InputValidationError, match="rows must be a whole number of at least 1"):
        source.iter_slices(0)
