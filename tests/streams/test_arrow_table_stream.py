from itertools import pairwise

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orcapod.errors import InputValidationError
from orcapod.streams import ArrowTableStream
from orcapod.types import ColumnConfig, Schema


def _table(n=5):
    return pa.table(
        {
            "k": pa.array([f"k{i}" for i in range(n)], pa.large_string()),
            "v": pa.array(range(n), pa.int64()),
            "_source_v": pa.array([f"s::row_{i}::v" for i in range(n)], pa.large_string()),
            "_tag_source_id::abc": pa.array(["s"] * n, pa.large_string()),
        }
    )


def test_multi_chunk_tables_keep_provenance_aligned():
    table = _table(6)
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2, 3), table.slice(5)])
    assert chunked.column("v").num_chunks == 3
    stream = ArrowTableStream(chunked, ["k"])
    rows = [(t["k"], p["v"], p.source_info()["v"]) for t, p in stream.iter_packets()]
    assert rows == [(f"k{i}", i, f"s::row_{i}::v") for i in range(6)]


def test_iteration_is_repeatable_and_partial_iteration_is_harmless():
    stream = ArrowTableStream(_table(4), ["k"])
    it = stream.iter_packets()
    next(it)
    assert [p["v"] for _, p in stream.iter_packets()] == [0, 1, 2, 3]
    assert [p["v"] for _, p in stream] == [0, 1, 2, 3]


def test_hidden_columns_are_off_by_default():
    stream = ArrowTableStream(_table(), ["k"])
    assert stream.as_table().column_names == ["k", "v"]
    assert stream.keys() == (("k",), ("v",))
    assert stream.keys(all_info=True)[0] == ("k", "_tag_source_id::abc")
    assert "_source_v" in stream.as_table(ColumnConfig(source=True)).column_names
    schema_tags, schema_packets = stream.output_schema(all_info=True)
    assert "_tag_source_id::abc" in schema_tags and "_source_v" in schema_packets


def test_sort_by_tags():
    stream = ArrowTableStream(_table(3).take([2, 0, 1]), ["k"])
    assert stream.as_table(ColumnConfig(sort_by_tags=True)).column("k").to_pylist() == [
        "k0",
        "k1",
        "k2",
    ]


def test_identity():
    a = ArrowTableStream(_table(), ["k"])
    assert a.content_hash() == ArrowTableStream(_table(), ["k"]).content_hash()
    assert a.content_hash() != ArrowTableStream(_table(4), ["k"]).content_hash()
    assert a.pipeline_hash() == ArrowTableStream(_table(4), ["k"]).pipeline_hash()


def test_bad_tables_are_rejected():
    with pytest.raises(InputValidationError, match="'x'"):
        ArrowTableStream(_table(), ["x"])
    with pytest.raises(InputValidationError, match="packet"):
        ArrowTableStream(_table().select(["k"]), ["k"])
    with pytest.raises(InputValidationError, match="reserved"):
        ArrowTableStream(_table().append_column("_weird", pa.array(range(5))), ["k"])
    with pytest.raises(InputValidationError, match="no packet column"):
        ArrowTableStream(_table().append_column("_source_zz", pa.array(["a"] * 5)), ["k"])


def test_system_tag_columns_are_renamed():
    stream = ArrowTableStream(pa.table({"k": ["a"], "v": [1], "batch": ["b1"]}), ["k"], ["batch"])
    tag, _ = next(iter(stream))
    assert tag.system_tags() == {"_tag_batch": "b1"}


def test_all_info_schema_is_predicted_without_computing_hidden_columns():
    stream = ArrowTableStream(_table(), ["k"])
    tags, packets = stream.output_schema(all_info=True)
    assert tags == {"k": str, "_tag_source_id::abc": str}
    assert packets["_source_v"] is str and packets["_content_hash"] is str
    assert packets["_context_key"] is str
    table = stream.as_table(all_info=True)
    assert list(tags) + list(packets) == table.column_names
    assert stream.keys(all_info=True) == (tuple(tags), tuple(packets))


def test_content_hash_column_matches_each_packets_own_hash():
    stream = ArrowTableStream(_table(3), ["k"])
    column = stream.as_table(ColumnConfig(content_hash="h")).column("h").to_pylist()
    assert column == [p.content_hash().to_string() for _, p in stream.iter_packets()]


def test_schemas_override_is_reported_as_given():
    given = (Schema({"k": str}), Schema({"v": int | None}))
    stream = ArrowTableStream(_table(2), ["k"], schemas=given)
    assert stream.output_schema() == given


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(-(2**40), 2**40)), min_size=1, max_size=40),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_iteration_equals_the_table_rows_whatever_the_chunking(values, cuts):
    table = pa.table(
        {"k": pa.array([f"k{i}" for i in range(len(values))]), "v": pa.array(values, pa.int64())}
    )
    bounds = sorted({0, len(values), *[c for c in cuts if c < len(values)]})
    chunked = pa.concat_tables([table.slice(a, b - a) for a, b in pairwise(bounds)])
    stream = ArrowTableStream(chunked, ["k"])
    rows = [{**t.as_dict(), **p.as_dict()} for t, p in stream.iter_packets()]
    assert rows == table.to_pylist()


def test_sorting_by_unorderable_tags_is_a_clear_error_not_a_silent_no_op():
    table = pa.table({"k": pa.array([[2], [1]]), "v": [1, 2]})
    stream = ArrowTableStream(table, ["k"])
    with pytest.raises(InputValidationError, match="sort_by_tags"):
        stream.as_table(ColumnConfig(sort_by_tags=True))


# --- numpy arrays, Paths and dicts in conversions ------------------------------------------


def test_array_columns_read_back_as_numpy_arrays_everywhere():
    import numpy as np
    import polars as pl

    from orcapod.sources import DictSource
    from orcapod.types import ArrayType

    rows = [
        {"k": i, "img": np.full((2, 3), i, np.uint8), "trace": np.arange(i + 1, dtype=np.float32)}
        for i in range(3)
    ]
    stream = DictSource(rows, ["k"]).stream
    assert stream.output_schema()[1] == {
        "img": ArrayType("uint8", (2, 3)),
        "trace": ArrayType("float32", (None,)),
    }
    for (_, packet), row in zip(stream.iter_packets(), rows, strict=True):
        for key in ("img", "trace"):
            value = packet[key]
            assert value.dtype == row[key].dtype and np.array_equal(value, row[key])
            assert not value.flags.writeable  # arrays read from a stream are read-only views
    df = stream.as_pandas_df()
    assert df["img"][2].shape == (2, 3) and df["trace"][2].tolist() == [0.0, 1.0, 2.0]
    polars_df = stream.as_polars_df()
    assert polars_df.schema["img"] == pl.Array(pl.UInt8, (2, 3))
    assert polars_df["img"].to_numpy().shape == (3, 2, 3)


def test_paths_and_dicts_read_back_as_python_values_in_pandas(tmp_path):
    from pathlib import Path

    from orcapod.sources import DictSource

    target = tmp_path / "f.txt"
    target.write_text("x")
    stream = DictSource([{"k": 0, "f": target, "d": {"a": 1, "b": 2}}], ["k"]).stream
    row = stream.as_pandas_df().iloc[0]
    assert isinstance(row["f"], Path) and row["f"] == target
    assert row["d"] == {"a": 1, "b": 2}


def test_polars_views_and_stream_provenance():
    import polars as pl

    stream = ArrowTableStream(_table(3), ["k"])
    lazy = stream.as_lazy_frame()
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(stream.as_df()) and stream.as_df().equals(stream.as_polars_df())
    assert stream.as_lazy_frame(all_info=True).collect_schema().names() == list(
        stream.as_table(all_info=True).column_names
    )
    assert stream.producer is None and stream.upstreams == ()


def test_source_info_sets_a_constant_token_per_column():
    table = pa.table({"k": ["a", "b"], "v": [1, 2], "w": [3, 4]})
    stream = ArrowTableStream(table, ["k"], source_info={"v": "src::all::v", "w": None})
    info = [p.source_info() for _, p in stream.iter_packets()]
    assert info == [{"v": "src::all::v", "w": None}] * 2
    replaced = ArrowTableStream(_table(2), ["k"], source_info={"v": "new"})
    assert replaced.as_table(ColumnConfig(source=True)).column("_source_v").to_pylist() == [
        "new",
        "new",
    ]
    with pytest.raises(InputValidationError, match="not packet columns"):
        ArrowTableStream(table, ["k"], source_info={"k": "x"})


def test_producer_and_upstreams_identify_a_derived_stream():
    from orcapod.operators import Batch

    base = ArrowTableStream(_table(3), ["k"])
    batch = Batch(1)
    made = ArrowTableStream(_table(3), ["k"], producer=batch, upstreams=(base,))
    assert made.producer is batch and made.upstreams == (base,)
    again = ArrowTableStream(_table(3), ["k"], producer=Batch(1), upstreams=[base])
    other = ArrowTableStream(_table(3), ["k"], producer=Batch(2), upstreams=(base,))
    assert made.content_hash() == again.content_hash() != other.content_hash()
    assert made.pipeline_hash() != other.pipeline_hash()
    assert made.content_hash() != base.content_hash()


def test_data_context_names_the_rows_context():
    from orcapod.errors import ContextResolutionError

    stream = ArrowTableStream(_table(2), ["k"], data_context="v1")
    assert stream.data_context_key == "orcapod:v1"
    assert all(p.data_context_key == "orcapod:v1" for _, p in stream.iter_packets())
    with pytest.raises(ContextResolutionError):
        ArrowTableStream(_table(2), ["k"], data_context="nope")


def test_async_iteration_yields_the_rows():
    import asyncio

    stream = ArrowTableStream(_table(4), ["k"])

    async def collect():
        return [p["v"] async for _, p in stream.async_iter_packets()]

    assert asyncio.run(collect()) == [0, 1, 2, 3]
