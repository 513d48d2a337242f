import datetime as dt

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from orcapod.errors import InputValidationError, SchemaError
from orcapod.sources import ArrowTableSource, DataFrameSource, DictSource, ListSource


def test_the_same_data_through_every_in_memory_source_gives_the_same_rows(rows):
    table = pa.Table.from_pylist(rows)
    sources = [
        DictSource(rows, ["subject", "session"], source_id="s"),
        ArrowTableSource(table, ["subject", "session"], source_id="s"),
        DataFrameSource(pd.DataFrame(rows), ["subject", "session"], source_id="s"),
        DataFrameSource(pl.DataFrame(rows), ["subject", "session"], source_id="s"),
    ]
    expected = [(t.as_dict(), p.as_dict()) for t, p in sources[0].iter_packets()]
    for src in sources[1:]:
        assert [(t.as_dict(), p.as_dict()) for t, p in src.iter_packets()] == expected
        assert src.output_schema() == sources[0].output_schema()
        # same data, same id: equal data hashes, but the class is part of the identity
        assert src.identity_structure()["data"] == sources[0].identity_structure()["data"]


def test_list_source_default_and_custom_tags():
    src = ListSource("value", [10, 20])
    assert [(t.as_dict(), p.as_dict()) for t, p in src] == [
        ({"element_index": 0}, {"value": 10}),
        ({"element_index": 1}, {"value": 20}),
    ]
    custom = ListSource("value", [10, 20], tag_function=lambda v, i: {"key": f"k{v}"})
    assert [t.as_dict() for t, _ in custom] == [{"key": "k10"}, {"key": "k20"}]
    assert (
        custom.content_hash()
        != ListSource("value", [10, 20], tag_function=lambda v, i: {"key": f"x{v}"}).content_hash()
    )


def test_data_frame_source_rejects_other_objects():
    with pytest.raises(InputValidationError, match="DataFrame"):
        DataFrameSource(42, ["a"])


def test_data_frame_source_takes_what_polars_takes():
    rows = DataFrameSource([{"a": 1, "b": "x"}], ["a"]).as_table().to_pylist()
    assert rows == DataFrameSource({"a": [1], "b": ["x"]}, ["a"]).as_table().to_pylist()


def test_data_frame_sources_take_paths_and_arrays_from_pandas_and_polars(tmp_path):
    from pathlib import Path

    import numpy as np
    import pandas as pd
    import polars as pl

    from orcapod.sources import DataFrameSource
    from orcapod.types import ArrayType

    f = tmp_path / "x.txt"
    f.write_text("x")
    frame = pd.DataFrame(
        {
            "k": [1, 2],
            "p": [f, None],
            "a": [np.zeros((2, 2), np.float32), np.ones((2, 2), np.float32)],
        }
    )
    expected = {"p": Path | None, "a": ArrayType("float32", (2, 2))}
    from_pandas = DataFrameSource(frame, ["k"])
    assert from_pandas.output_schema()[1] == expected
    polars_frame = pl.DataFrame(
        {"k": [1, 2], "a": np.stack(frame["a"]), "p": pl.Series([f, None], dtype=pl.Object)}
    )
    from_polars = DataFrameSource(polars_frame, ["k"])
    assert from_polars.output_schema()[1] == {"a": expected["a"], "p": expected["p"]}
    for source in (from_pandas, from_polars):
        packets = [p for _, p in source]
        assert packets[0]["p"] == f and packets[1]["p"] is None
        assert np.array_equal(packets[1]["a"], np.ones((2, 2)))


def test_list_source_checks_tag_keys_and_takes_a_schema():
    source = ListSource("x", [1, 2], data_schema={"x": float})
    assert source.output_schema()[1]["x"] is float
    keyed = ListSource("x", [1, 2], lambda v, i: {"k": f"k{i}"}, expected_tag_keys=["k"])
    assert keyed.keys() == (("k",), ("x",))
    with pytest.raises(InputValidationError, match="expected"):
        ListSource("x", [1], lambda v, i: {"k": i}, expected_tag_keys=["other"])


def test_list_source_tag_function_hash_modes():
    def tag(v, i):
        return {"k": i}

    def edited(v, i):
        return {"k": i + 0}

    by = {
        mode: ListSource("x", [1], tag, tag_function_hash_mode=mode).content_hash()
        for mode in ("content", "signature", "name")
    }
    assert len(set(by.values())) == 3
    edited.__qualname__ = tag.__qualname__  # an edited body under the same name
    assert ListSource("x", [1], edited).content_hash() != by["content"]
    assert ListSource("x", [1], edited, tag_function_hash_mode="name").content_hash() == by["name"]
    with pytest.raises(InputValidationError, match="tag_function_hash_mode"):
        ListSource("x", [1], tag, tag_function_hash_mode="other")  # type: ignore[arg-type]


def test_data_frame_source_schema_fixes_types():
    schema = pa.schema([pa.field("a", pa.int64(), False), pa.field("b", pa.float64(), True)])
    source = DataFrameSource(pd.DataFrame({"a": [1], "b": [2.0]}), "a", schema=schema)
    assert source.output_schema()[1]["b"] == float | None
    with pytest.raises(InputValidationError, match="schema"):
        DataFrameSource(pl.DataFrame({"a": [1]}), "a", schema=schema)


def test_dict_source_arguments_by_position():
    rows = [{"a": 1, "s": "x", "b": 2.0}]
    source = DictSource(rows, ["a"], ["s"], {"b": float | None}, "by_position")
    assert source.source_id == "by_position"
    assert source.output_schema()[1] == {"b": float | None}


def test_dict_source_schema_refuses_values_it_would_have_to_truncate():
    rows = [{"s": "a", "x": 2}, {"s": "b", "x": 2.999}]
    with pytest.raises(SchemaError, match=r"'x', row 1: expected int, got float 2.999"):
        DictSource(rows, "s", data_schema={"s": str, "x": int})
    stamp = [{"s": "a", "x": dt.datetime(2020, 1, 1, 23, 59)}]
    with pytest.raises(SchemaError, match=r"'x', row 0: expected date, got datetime"):
        DictSource(stamp, "s", data_schema={"s": str, "x": dt.date})
    arrow_schema = pa.schema([("s", pa.string()), ("x", pa.int32())])
    with pytest.raises(SchemaError, match=r"'x', row 1: expected int, got float 2.999"):
        DictSource(rows, "s", data_schema=arrow_schema)
    with pytest.raises(SchemaError, match="data_schema"):
        DictSource([{"s": "a", "x": 1 << 40}], "s", data_schema=arrow_schema)
    source = DictSource([*rows[:1], {"s": "b", "x": 3.5}], "s", data_schema={"s": str, "x": float})
    assert source.as_table().column("x").to_pylist() == [2.0, 3.5]


def test_numpy_scalars_are_taken_as_python_numbers_with_the_same_hash():
    plain = DictSource([{"s": "a", "i": 5, "f": 1.5, "b": True}], "s", source_id="n")
    numpy_row = {"s": "a", "i": np.int64(5), "f": np.float32(1.5), "b": np.bool_(True)}
    numpy = DictSource([numpy_row], "s", source_id="n")
    assert numpy.output_schema() == plain.output_schema()
    assert numpy.as_table().to_pylist() == plain.as_table().to_pylist()
    assert numpy.content_hash() == plain.content_hash()


def test_pandas_column_of_mixed_values_is_a_schema_error_naming_it():
    frame = pd.DataFrame({"s": ["a", "b"], "x": [1, "q"]})
    with pytest.raises(SchemaError, match=r"column 'x' holds values of types \['int', 'str'\]"):
        DataFrameSource(frame, tag_columns=["s"])


def test_a_list_source_named_like_its_default_tag_says_so_not_blames_a_tag_function():
    with pytest.raises(InputValidationError, match="default tag column") as caught:
        ListSource("element_index", [1, 2])
    assert "pass a tag_function" in str(caught.value)
    # with a tag function of other keys the name is free
    source = ListSource("element_index", [1, 2], tag_function=lambda v, i: {"n": i})
    assert source.keys() == (("n",), ("element_index",))


def test_a_frame_column_without_an_orcapod_type_fails_at_construction_saying_the_fix():
    with pytest.raises(SchemaError, match=r"column 'v'.*pl\.col\('v'\)\.cast.*schema="):
        DataFrameSource(pl.DataFrame({"id": ["a"], "v": [None]}), tag_columns=["id"])
    with pytest.raises(SchemaError, match=r"column 'v'.*astype"):
        DataFrameSource(pd.DataFrame({"id": ["a"], "v": [None]}), tag_columns=["id"])
    with pytest.raises(SchemaError, match=r"column 'v'.*struct.*df\.unnest\('v'\)"):
        DataFrameSource(pl.DataFrame({"id": ["a"], "v": [{"x": 1, "y": 2}]}), tag_columns=["id"])
    # the fixes the messages name work
    typed = DataFrameSource(
        pl.DataFrame({"id": ["a"], "v": [None]}),
        tag_columns=["id"],
        schema=pa.schema([("id", pa.large_string()), ("v", pa.int64())]),
    )
    assert typed.output_schema()[1]["v"] == int | None
    frame = pl.DataFrame({"id": ["a"], "v": [{"x": 1, "y": 2}]}).unnest("v")
    assert DataFrameSource(frame, tag_columns=["id"]).keys() == (("id",), ("x", "y"))


def test_an_arrow_column_of_untyped_lists_fails_at_construction_saying_the_fix():
    table = pa.table({"id": ["a"], "v": pa.array([[None]], pa.list_(pa.null()))})
    with pytest.raises(SchemaError, match=r"ArrowTableSource: column 'v'.*typed list"):
        ArrowTableSource(table, tag_columns=["id"])


def test_a_source_whose_arrays_are_all_empty_is_built_with_a_variable_size():
    from orcapod.types import ArrayType

    empty = [{"img": "a", "spots": np.zeros((0, 2))}, {"img": "b", "spots": np.zeros((0, 2))}]
    source = DictSource(empty, tag_columns=["img"], source_id="spots")
    assert source.output_schema()[1] == {"spots": ArrayType("float64", (None, 2))}
    spots = [p["spots"] for _, p in source.iter_packets()]
    assert [s.shape for s in spots] == [(0, 2), (0, 2)]
    one = DictSource([{"img": "a", "spots": np.zeros(0)}], tag_columns=["img"])
    assert one.output_schema()[1] == {"spots": ArrayType("float64", (None,))}
    # the schema is the one the same column gets once some arrays are not empty
    some = DictSource([*empty[:1], {"img": "b", "spots": np.ones((3, 2))}], tag_columns=["img"])
    assert some.output_schema()[1] == source.output_schema()[1]


def test_a_list_column_with_none_items_does_not_feed_a_list_of_int_parameter():
    from orcapod import function_pod

    calls = []

    @function_pod("cleaned")
    def passthrough(counts: list[int]) -> list[int]:
        calls.append(counts)
        return counts

    rows = [{"id": "a", "counts": [1, None, 3]}]
    for source in (
        DictSource(rows, tag_columns=["id"]),
        DictSource(rows, tag_columns=["id"], data_schema={"counts": list[int | None]}),
        DataFrameSource(pl.DataFrame(rows), tag_columns=["id"]),
    ):
        assert source.output_schema()[1] == {"counts": list[int | None]}
        with pytest.raises(InputValidationError, match=r"list\[int \| None\].*list\[int\]"):
            passthrough.pod(source)
    assert calls == []
    with pytest.raises(SchemaError, match=r"'counts', row 0: expected int, got NoneType"):
        DictSource(rows, tag_columns=["id"], data_schema={"counts": list[int]})
    full = DataFrameSource(pl.DataFrame([{"id": "a", "counts": [1, 3]}]), tag_columns=["id"])
    assert full.output_schema()[1] == {"counts": list[int]}


def test_a_pandas_frame_keyed_by_its_index_gives_its_index_as_a_tag():
    frame = pd.DataFrame({"weight": [70.0, 82.5]}, index=pd.Index(["s1", "s2"], name="subject"))
    source = DataFrameSource(frame, tag_columns=["subject"], source_id="w")
    assert [(t.as_dict(), p.as_dict()) for t, p in source.iter_packets()] == [
        ({"subject": "s1"}, {"weight": 70.0}),
        ({"subject": "s2"}, {"weight": 82.5}),
    ]
    assert DataFrameSource(frame).keys() == ((), ("subject", "weight"))


def test_the_same_instants_give_the_same_values_and_hashes_in_every_source():
    from zoneinfo import ZoneInfo

    from orcapod import function_pod

    @function_pod("hour")
    def hour_of(when: dt.datetime) -> int:
        return when.hour

    berlin = ZoneInfo("Europe/Berlin")
    for when, stored in [
        (dt.datetime(2024, 1, 1, 12, tzinfo=berlin), dt.datetime(2024, 1, 1, 11, tzinfo=dt.UTC)),
        (dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)),
    ]:
        rows = [{"id": "a", "when": when}]
        sources = [
            DictSource(rows, ["id"]),
            DictSource(rows, ["id"], data_schema={"when": dt.datetime}),
            ArrowTableSource(pa.Table.from_pylist(rows), ["id"]),
            DataFrameSource(pd.DataFrame(rows), ["id"]),
            DataFrameSource(pl.DataFrame(rows), ["id"]),
        ]
        for source in sources:
            assert source.as_table().column("when").to_pylist() == [stored], source
            assert source.as_table().schema.field("when").type == pa.timestamp("us", tz="UTC")
            assert source.identity_structure()["data"] == sources[0].identity_structure()["data"]
            assert hour_of.pod(source).as_table().column("hour").to_pylist() == [stored.hour]


def test_a_pandas_column_mixing_naive_and_aware_datetimes_is_refused():
    naive = dt.datetime(2024, 1, 1, 12)
    aware = dt.datetime(2024, 1, 1, 12, tzinfo=dt.UTC)
    frame = pd.DataFrame({"id": ["a", "b"], "when": [aware, naive]})
    with pytest.raises(SchemaError, match=r"column 'when' mixes naive datetimes"):
        DataFrameSource(frame, ["id"])
    with pytest.raises(SchemaError, match=r"column 'when' mixes naive datetimes"):
        DictSource(frame.to_dict("records"), ["id"])
