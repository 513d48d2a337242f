import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from orcapod.data.conversion import (
    arrow_schema_to_schema,
    infer_schema,
    python_to_arrow_type,
    rows_to_table,
    schema_to_arrow,
    table_schema,
    table_to_pylist,
)
from orcapod.errors import SchemaError
from orcapod.types import Schema

ROUND_TRIP_TYPES = [
    int,
    float,
    bool,
    str,
    bytes,
    dt.datetime,
    dt.date,
    dt.time,
    dt.timedelta,
    Decimal,
    Path,
    list[int],
    list[list[str]],
    dict[str, float],
    dict[str, list[int]],
    list[dict[str, Path]],
]


@pytest.mark.parametrize("tp", ROUND_TRIP_TYPES, ids=repr)
def test_python_types_round_trip_through_arrow(tp):
    schema = Schema({"x": tp, "y": tp | None})
    arrow = schema_to_arrow(schema)
    assert not arrow.field("x").nullable and arrow.field("y").nullable
    assert arrow_schema_to_schema(arrow) == schema


def test_arrow_variants_map_to_the_same_python_type():
    variants = pa.schema(
        [
            ("a", pa.int8()),
            ("b", pa.uint32()),
            ("c", pa.string()),
            ("d", pa.string_view()),
            ("e", pa.float32()),
            ("f", pa.list_(pa.int16())),
            ("g", pa.dictionary(pa.int32(), pa.string())),
        ]
    )
    assert arrow_schema_to_schema(pa.schema([f.with_nullable(False) for f in variants])) == {
        "a": int,
        "b": int,
        "c": str,
        "d": str,
        "e": float,
        "f": list[int],
        "g": str,
    }


def test_values_round_trip_including_paths_dicts_and_nulls(tmp_path):
    rows = [
        {
            "i": 1,
            "f": 0.5,
            "s": "x",
            "b": b"\x00",
            "p": tmp_path / "a.txt",
            "l": [1, 2],
            "m": {"k": 1.0},
            "n": None,
            "ts": dt.datetime(2024, 1, 2, tzinfo=dt.UTC),
            "d": dt.date(2024, 1, 2),
            "dec": Decimal("1.25"),
        },
        {
            "i": 2,
            "f": 1.5,
            "s": "y",
            "b": b"",
            "p": tmp_path / "b.txt",
            "l": [],
            "m": {},
            "n": 3,
            "ts": dt.datetime(2024, 1, 3, tzinfo=dt.UTC),
            "d": dt.date(2024, 1, 3),
            "dec": Decimal("-2"),
        },
    ]
    schema = infer_schema(rows)
    assert schema["n"] == int | None and schema["p"] is Path and schema["m"] == dict[str, float]
    table = rows_to_table(rows, schema)
    assert table_schema(table) == schema
    back = table_to_pylist(table, schema)
    assert back == rows


def test_int_and_float_mix_is_float_other_mixes_are_errors_naming_the_column():
    assert infer_schema([{"v": 1}, {"v": 2.5}])["v"] is float
    with pytest.raises(SchemaError, match="'v'.*mixes"):
        infer_schema([{"v": 1}, {"v": "a"}])
    with pytest.raises(SchemaError, match="'v'.*only None"):
        infer_schema([{"v": None}])
    with pytest.raises(SchemaError, match="'v'.*not supported"):
        infer_schema([{"v": object()}])


def test_none_in_a_non_optional_column_is_rejected():
    with pytest.raises(SchemaError, match="'a'.*not optional"):
        rows_to_table([{"a": None}], {"a": int})


def test_unsupported_type_names_the_alternatives():
    with pytest.raises(SchemaError, match="not supported"):
        python_to_arrow_type(set[int])
    with pytest.raises(SchemaError, match="only `T | None`"):
        python_to_arrow_type(int | str)


def test_nullability_comes_from_the_data_not_the_arrow_flag():
    table = pa.table({"a": [1, 2], "b": [1, None]})
    assert table.schema.field("a").nullable
    assert table_schema(table) == {"a": int, "b": int | None}


# --- numpy arrays ------------------------------------------------------------------------


def test_array_columns_round_trip_python_arrow_python():
    import numpy as np

    from orcapod.data.conversion import infer_schema, rows_to_table, table_schema, table_to_pylist
    from orcapod.types import ArrayType

    rows = [
        {"img": np.ones((2, 3), np.float32), "v": np.arange(3, dtype=np.int16)},
        {"img": np.zeros((2, 3), np.float32), "v": np.arange(5, dtype=np.int16)},
    ]
    schema = infer_schema(rows)
    assert schema == {"img": ArrayType("float32", (2, 3)), "v": ArrayType("int16", (None,))}
    table = rows_to_table(rows, schema)
    assert table_schema(table) == schema
    for got, want in zip(table_to_pylist(table), rows, strict=True):
        for key in want:
            assert got[key].dtype == want[key].dtype
            assert np.array_equal(got[key], want[key])


def test_array_inference_keeps_agreeing_dimensions_and_refuses_mixed_dtypes():
    import numpy as np
    import pytest

    from orcapod.data.conversion import infer_schema
    from orcapod.errors import SchemaError
    from orcapod.types import ArrayType

    rows = [{"x": np.zeros((4, 3))}, {"x": np.zeros((5, 3))}, {"x": None}]
    assert infer_schema(rows) == {"x": ArrayType("float64", (None, 3)) | None}
    assert infer_schema([{"x": np.zeros(2)}, {"x": np.zeros((2, 2))}]) == {
        "x": ArrayType("float64")
    }
    with pytest.raises(SchemaError, match=r"dtypes \['float32', 'float64'\]"):
        infer_schema([{"x": np.zeros(2)}, {"x": np.zeros(2, np.float32)}])


def test_lists_of_arrays_round_trip():
    import numpy as np

    from orcapod.data.conversion import rows_to_table, table_schema, table_to_pylist
    from orcapod.types import ArrayType

    schema = {"x": list[ArrayType("int8", (None,))] | None}
    rows = [{"x": [np.arange(2, dtype=np.int8), np.arange(3, dtype=np.int8)]}, {"x": None}]
    table = rows_to_table(rows, schema)
    assert table_schema(table) == schema
    back = table_to_pylist(table)
    assert back[1] == {"x": None}
    assert [a.tolist() for a in back[0]["x"]] == [[0, 1], [0, 1, 2]]
    assert all(a.dtype == np.int8 for a in back[0]["x"])


def test_arrays_as_dict_values_are_refused_with_a_hint():
    import numpy as np
    import pytest
    from numpy.typing import NDArray

    from orcapod.data.conversion import schema_to_arrow
    from orcapod.errors import SchemaError

    with pytest.raises(SchemaError, match="dict values"):
        schema_to_arrow({"x": dict[str, NDArray[np.float32]]})


@pytest.mark.parametrize(
    ("values", "tp", "message"),
    [
        ([1, 2.999], int, r"'v', row 1: expected int, got float 2.999.*round"),
        ([-0.5], int, r"row 0: expected int, got float -0.5"),
        ([2.0], int, r"expected int, got float 2.0"),
        ([np.float64(2.5)], int, r"expected int, got float64 np.float64\(2.5\)"),
        ([True], float, r"expected float, got bool True"),
        ([dt.datetime(2020, 1, 1, 23, 59)], dt.date, r"expected date, got datetime.*v\.date\(\)"),
        ([5], dt.datetime, r"expected datetime, got int 5"),
        ([5], dt.timedelta, r"expected timedelta, got int 5"),
        ([1], Decimal, r"expected Decimal, got int 1"),
        (["a"], bytes, r"expected bytes, got str 'a'"),
        ([b"a"], str, r"expected str, got bytes"),
        ([5], Path, r"expected Path, got int 5"),
        ([[1], None, [2, 2.5]], list[int] | None, r"'v', row 2: expected int, got float 2.5"),
        ([{"k": 1}, {"k": 0.5}], dict[str, int], r"'v', row 1: expected int, got float 0.5"),
        ([{1: 1}], dict[str, int], r"'v', row 0: expected dict\[str, int\]"),
    ],
)
def test_values_that_do_not_fit_the_schema_are_refused_not_converted(values, tp, message):
    with pytest.raises(SchemaError, match=message):
        rows_to_table([{"v": v} for v in values], {"v": tp})


def test_values_of_the_schema_type_and_numpy_scalars_are_taken():
    day = dt.date(2020, 1, 1)
    row = {"i": np.int64(5), "f": 2, "g": np.float32(1.5), "b": np.bool_(True), "d": day}
    table = rows_to_table([row], {"i": int, "f": float, "g": float, "b": bool, "d": dt.date})
    assert table.to_pylist() == [{"i": 5, "f": 2.0, "g": 1.5, "b": True, "d": day}]


def test_a_path_column_takes_paths_written_as_text():
    as_text = rows_to_table([{"p": "/data/a.txt"}], {"p": Path})
    assert as_text.equals(rows_to_table([{"p": Path("/data/a.txt")}], {"p": Path}))


def test_numpy_scalars_infer_as_python_types_and_hash_like_them():
    numpy_row = {"i": np.int64(5), "f": np.float32(1.5), "b": np.bool_(True)}
    python_row = {"i": 5, "f": 1.5, "b": True}
    schema = infer_schema([python_row])
    assert infer_schema([numpy_row]) == schema == {"i": int, "f": float, "b": bool}
    assert rows_to_table([numpy_row], schema).equals(rows_to_table([python_row], schema))
    with pytest.raises(SchemaError, match=r"'t'.*datetime64.*v\.item\(\)"):
        infer_schema([{"t": np.datetime64("2020-01-01")}])


def test_list_items_and_dict_values_are_optional_iff_the_data_holds_a_none_one():
    rows = [
        {"c": [1, None], "d": {"k": None, "j": 2}, "n": [[1], [None]], "f": [1, 2], "g": {"k": 1}}
    ]
    schema = infer_schema(rows)
    assert schema == {
        "c": list[int | None],
        "d": dict[str, int | None],
        "n": list[list[int | None]],
        "f": list[int],
        "g": dict[str, int],
    }
    assert table_schema(rows_to_table(rows, schema)) == schema
    # Arrow marks item fields nullable whatever they hold: the data decides, in both modes
    arrow = pa.table(
        {
            "c": [[1, None]],
            "f": [[1, 2]],
            "d": pa.array([[("k", None)]], pa.map_(pa.string(), pa.int64())),
        }
    )
    assert arrow.schema.field("f").type.value_field.nullable
    expected = {"c": list[int | None], "f": list[int], "d": dict[str, int | None]}
    assert table_schema(arrow) == expected
    assert table_schema(arrow, infer_nullable=False) == {k: v | None for k, v in expected.items()}
    assert table_schema(arrow.slice(1)) == {"c": list[int], "f": list[int], "d": dict[str, int]}
    # a None under a null list is not an item of the column
    offsets, values, mask = pa.array([0, 2, 4]), pa.array([1, None, 3, 4]), pa.array([True, False])
    covered = pa.table({"c": pa.LargeListArray.from_arrays(offsets, values, mask=mask)})
    assert table_schema(covered) == {"c": list[int] | None}


@pytest.mark.parametrize(
    ("value", "tp"),
    [([1, None, 3], list[int]), ({"a": None}, dict[str, int]), ([[1], [None]], list[list[int]])],
)
def test_a_none_item_in_a_column_whose_items_are_not_optional_is_refused(value, tp):
    with pytest.raises(SchemaError, match=r"'v', row 1: expected int, got NoneType.*int \| None"):
        rows_to_table([{"v": None}, {"v": value}], {"v": tp | None})
    optional = {list[int]: list[int | None], dict[str, int]: dict[str, int | None]}
    if tp in optional:
        assert rows_to_table([{"v": value}], {"v": optional[tp]}).column("v").to_pylist() == [
            list(value.items()) if isinstance(value, dict) else value
        ]
