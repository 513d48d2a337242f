from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from orcapod.data.conversion import rows_to_table
from orcapod.data.frames import from_pandas, from_polars, to_pandas, to_polars
from orcapod.errors import SchemaError
from orcapod.hashing import hash_table
from orcapod.types import ArrayType


def _table(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("a")
    rows = [
        {
            "k": 0,
            "img": np.arange(4, dtype=np.uint8).reshape(2, 2),
            "v": np.arange(3.0),
            "f": f,
            "d": {"a": 1},
            "fs": [f],
        },
        {"k": 1, "img": None, "v": np.zeros((2, 2)), "f": None, "d": {}, "fs": []},
    ]
    schema = {
        "k": int,
        "img": ArrayType("uint8", (2, 2)) | None,
        "v": ArrayType("float64"),
        "f": Path | None,
        "d": dict[str, int],
        "fs": list[Path],
    }
    return rows_to_table(rows, schema), rows


def test_pandas_gets_paths_dicts_and_shaped_arrays(tmp_path):
    table, rows = _table(tmp_path)
    df = to_pandas(table)
    assert list(df.columns) == table.column_names
    assert df["k"].dtype == np.int64
    first = df.iloc[0]
    assert isinstance(first["img"], np.ndarray) and first["img"].shape == (2, 2)
    assert first["img"].dtype == np.uint8
    assert np.array_equal(df.iloc[1]["v"], np.zeros((2, 2)))
    assert first["f"] == rows[0]["f"] and isinstance(first["f"], Path)
    assert df.iloc[1]["img"] is None and df.iloc[1]["f"] is None
    assert first["d"] == {"a": 1} and df.iloc[1]["d"] == {}
    assert first["fs"] == [rows[0]["f"]]


def test_pandas_leaves_plain_tables_to_arrow():
    table = rows_to_table([{"a": 1, "b": "x"}], {"a": int, "b": str})
    pd.testing.assert_frame_equal(to_pandas(table), table.to_pandas())


def test_polars_gets_native_fixed_arrays_and_objects_for_the_rest(tmp_path):
    table, rows = _table(tmp_path)
    df = to_polars(table)
    assert df.schema["img"] == pl.Array(pl.UInt8, (2, 2))
    assert df["img"][1] is None
    assert np.array_equal(df["img"][0].to_numpy(), rows[0]["img"])
    assert df.schema["v"] == pl.Object and df["v"][0].dtype == np.float64
    assert df.schema["f"] == pl.Object and df["f"][0] == rows[0]["f"]
    assert df["k"].to_list() == [0, 1]


def test_polars_without_special_columns_is_from_arrow():
    table = rows_to_table([{"a": 1}], {"a": int})
    assert to_polars(table).equals(pl.from_arrow(table))


def test_frames_made_by_to_pandas_and_to_polars_convert_back_to_the_same_table(tmp_path):

    table, _ = _table(tmp_path)
    table = table.drop_columns(["d", "fs"])  # dicts and lists of Paths stay Arrow's business
    for back in (from_pandas(to_pandas(table)), from_polars(to_polars(table))):
        assert back.column_names == table.column_names
        assert back.schema.field("img").type == table.schema.field("img").type
        assert hash_table(back) == hash_table(table)


def test_a_polars_object_column_of_other_objects_is_refused():

    df = pl.DataFrame({"x": pl.Series([object(), object()], dtype=pl.Object)})
    with pytest.raises(SchemaError, match="'x'"):
        from_polars(df)


def test_a_pandas_frames_named_index_becomes_leading_columns_and_row_numbers_are_dropped():

    weights = pd.DataFrame({"subject": ["s1", "s2", "s1"], "weight": [70.0, 82.5, 71.0]})
    assert from_pandas(weights).column_names == ["subject", "weight"]
    keyed = from_pandas(weights.set_index("subject"))
    assert keyed.to_pylist() == weights.to_dict("records")
    means = from_pandas(weights.groupby("subject").mean())
    assert means.to_pylist() == [
        {"subject": "s1", "weight": 70.5},
        {"subject": "s2", "weight": 82.5},
    ]
    # of a MultiIndex, the named levels are kept and the unnamed ones dropped
    levels = weights.set_index(["subject", pd.Index([7, 8, 9])])
    assert from_pandas(levels).column_names == ["subject", "weight"]
    # filtered row numbers are not data
    assert from_pandas(weights[weights.weight > 71]).column_names == ["subject", "weight"]
    clash = weights.set_index(pd.Index(["a", "b", "c"], name="weight"))
    with pytest.raises(SchemaError, match=r"index \['weight'\].*rename_axis.*reset_index"):
        from_pandas(clash)
