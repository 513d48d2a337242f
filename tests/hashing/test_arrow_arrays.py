"""Arrow layouts of numpy arrays, their database storage form, and their logical hashing."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from orcapod.data.conversion import columns_to_table
from orcapod.errors import HashingError, SchemaError
from orcapod.hashing import hash_rows, hash_table
from orcapod.hashing.arrow_arrays import (
    NDArrayType,
    array_type_of,
    arrays_to_arrow,
    arrow_to_arrays,
    arrow_type_for,
    from_storage,
    storage_field,
    stored_array_type,
    to_storage,
)
from orcapod.types import ArrayType


def _same(left, right):
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        if a is None or b is None:
            assert a is b
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(np.signbit(a), np.signbit(b))


def _table(values, array_type, name="x"):
    return columns_to_table({name: values}, {name: array_type})


VALUES = {
    "float32": [
        np.arange(6, dtype=np.float32).reshape(2, 3),
        None,
        np.full((2, 3), -0.0, np.float32),
    ],
    "uint8": [
        np.arange(6, dtype=np.uint8).reshape(2, 3),
        np.array([[255, 0, 1], [2, 3, 4]], np.uint8),
    ],
    "float16": [np.array([[1.5, np.inf, 0], [1, 2, 3]], np.float16)],
    "bool": [np.array([[True, False, True], [False, False, True]])],
    "int64": [np.array([[-(2**62), 0, 1], [2, 3, 4]], np.int64), None],
}


def test_fixed_shapes_use_the_canonical_tensor_type_and_others_orcapod_ndarray():
    fixed = arrow_type_for(ArrayType("float32", (2, 3)))
    assert isinstance(fixed, pa.FixedShapeTensorType)
    assert fixed.shape == [2, 3] and fixed.value_type == pa.float32()
    ragged = arrow_type_for(ArrayType("uint8", (None, 3)))
    assert isinstance(ragged, NDArrayType) and ragged.declared_shape == (None, 3)
    assert ragged.storage_type == pa.struct(
        [
            pa.field("data", pa.large_list(pa.uint8())),
            pa.field("shape", pa.large_list(pa.int64())),
        ]
    )
    assert array_type_of(fixed) == ArrayType("float32", (2, 3))
    assert array_type_of(arrow_type_for(ArrayType("int8"))) == ArrayType("int8")
    with pytest.raises(SchemaError, match="no dtype"):
        arrow_type_for(ArrayType(None, (2,)))


@pytest.mark.parametrize("dtype", sorted(VALUES))
@pytest.mark.parametrize("shape", [(2, 3), (None, 3), None])
def test_values_round_trip_exactly_through_arrow_and_database_storage(dtype, shape):
    values = VALUES[dtype]
    array_type = ArrayType(dtype, shape)
    arr = arrays_to_arrow(values, array_type)
    back = arrow_to_arrays(arr)
    _same(back, values)
    assert all(v is None or not v.flags.writeable for v in back)
    stored = to_storage(arr)
    field = storage_field("x", arr.type)
    assert stored.type == field.type
    assert stored_array_type(field) == (array_type, 0)
    restored = from_storage(stored, array_type)
    assert restored.type == arr.type
    _same(arrow_to_arrays(restored), values)


def test_sliced_and_chunked_columns_read_back_their_own_rows():
    values = [np.full((2, 3), i, np.float32) for i in range(5)]
    for array_type in (ArrayType("float32", (2, 3)), ArrayType("float32")):
        arr = arrays_to_arrow(values, array_type)
        _same(arrow_to_arrays(arr.slice(2, 2)), values[2:4])
        _same(arrow_to_arrays(from_storage(to_storage(arr.slice(1, 3)), array_type)), values[1:4])
        chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
        _same(arrow_to_arrays(chunked), values)


def test_wrong_values_are_refused_naming_the_row():
    with pytest.raises(SchemaError, match=r"row 1.*dtype float64 instead of float32"):
        arrays_to_arrow([np.zeros(2, np.float32), np.zeros(2)], ArrayType("float32", (2,)))
    with pytest.raises(SchemaError, match=r"row 0.*shape \(3,\) instead of \(2,\)"):
        arrays_to_arrow([np.zeros(3, np.float32)], ArrayType("float32", (2,)))
    with pytest.raises(SchemaError, match="expected a numpy array"):
        arrays_to_arrow([[1.0, 2.0]], ArrayType("float64", (2,)))


# --- hashing ---------------------------------------------------------------------------


def test_the_hash_depends_on_the_arrays_not_on_their_layout_or_chunking():
    values = VALUES["float32"]
    tables = [_table(values, ArrayType("float32", s) | None) for s in [(2, 3), (None, 3), None]]
    assert len({hash_table(t) for t in tables}) == 1
    assert len({tuple(hash_rows(t).to_pylist()) for t in tables}) == 1
    chunked = pa.Table.from_batches(tables[0].to_batches(max_chunksize=1))
    assert chunked.column("x").num_chunks == 3
    assert hash_table(chunked) == hash_table(tables[0])
    assert hash_rows(chunked).equals(hash_rows(tables[0]))
    for i in range(3):
        assert hash_rows(tables[0].slice(i, 1))[0] == hash_rows(tables[0])[i]


def test_dtype_shape_and_values_each_change_the_hash():
    base = [np.arange(6, dtype=np.float32).reshape(2, 3)]
    variants = [
        [base[0].astype(np.float64)],
        [base[0].reshape(3, 2)],
        [base[0].reshape(6)],
        [base[0] + 1],
    ]
    digests = {hash_rows(_table(base, ArrayType("float32")))[0]}
    for values in variants:
        digests.add(hash_rows(_table(values, ArrayType(values[0].dtype)))[0])
    assert len(digests) == 1 + len(variants)


def test_zero_sign_and_nan_payloads_are_canonical_inside_arrays():
    plain = np.array([0.0, np.nan])
    odd = np.array([-0.0, np.frombuffer(b"\x01\x00\x00\x00\x00\x00\xf8\x7f", np.float64)[0]])
    assert hash_table(_table([plain], ArrayType("float64"))) == hash_table(
        _table([odd], ArrayType("float64"))
    )


def test_a_tensor_with_a_permutation_cannot_be_hashed():
    tensor = pa.fixed_shape_tensor(pa.float32(), [2, 2], permutation=[1, 0])
    storage = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(4, np.float32)), 4)
    table = pa.table({"x": pa.ExtensionArray.from_storage(tensor, storage)})
    with pytest.raises(HashingError, match="permutation"):
        hash_table(table)


def golden_table() -> pa.Table:
    return columns_to_table(
        {
            "fixed": [
                np.arange(4, dtype=np.float32).reshape(2, 2),
                None,
                np.array([[-0.0, np.nan], [1.5, 2.5]], dtype=np.float32),
            ],
            "ragged": [
                np.arange(3, dtype=np.uint8),
                np.zeros((2, 2), np.uint8),
                np.array([255], np.uint8),
            ],
        },
        {"fixed": ArrayType("float32", (2, 2)) | None, "ragged": ArrayType("uint8")},
    )


GOLDEN_TABLE = "arrow_v1:07b5b1a66d0cb51d2b705930515b90e0"
GOLDEN_ROWS = [
    "a9234e64471e71c42ac67da05e1ef432",
    "111ff4cd9ed152a1cc7deb452070777e",
    "02b9fb8e411243b70f01f07d0d0bc997",
]


def test_golden_digests_of_array_columns():
    table = golden_table()
    assert hash_table(table).to_string() == GOLDEN_TABLE
    assert [d.hex() for d in hash_rows(table).to_pylist()] == GOLDEN_ROWS


def test_golden_digests_hold_in_a_fresh_process_with_another_hash_seed():
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
        "from test_arrow_arrays import golden_table; "
        "from orcapod.hashing import hash_table; print(hash_table(golden_table()).to_string())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.strip() == GOLDEN_TABLE


def test_lists_of_arrays_hash_logically_and_store_exactly():
    values = [[np.zeros(2), np.ones(2)], None, [], [np.full(2, 7.0)]]
    fixed = columns_to_table({"x": values}, {"x": list[ArrayType("float64", (2,))] | None})
    ragged = columns_to_table({"x": values}, {"x": list[ArrayType("float64")] | None})
    assert hash_table(fixed) == hash_table(ragged)
    chunked = pa.Table.from_batches(fixed.to_batches(max_chunksize=1))
    assert hash_rows(chunked).equals(hash_rows(fixed))
    flat = columns_to_table({"x": [np.zeros(2)]}, {"x": ArrayType("float64", (2,))})
    assert hash_rows(flat)[0] != hash_rows(fixed.slice(0, 1))[0]
    for table in (fixed, ragged):
        column = table.column("x").chunk(0)
        field = storage_field("x", column.type)
        assert stored_array_type(field) == (array_type_of(column.type.value_type), 1)
        back = from_storage(to_storage(column), *stored_array_type(field))
        assert back.type.value_type == column.type.value_type
        for got, want in zip(back.to_pylist(), column.to_pylist(), strict=True):
            assert got == want


def test_a_declared_fixed_shape_with_a_zero_size_round_trips_in_the_variable_layout(tmp_path):
    from orcapod.databases import DeltaTableDatabase

    array_type = ArrayType("float64", (0, 2))
    values = [np.zeros((0, 2)), None, np.zeros((0, 2))]
    arr = arrays_to_arrow(values, array_type)
    assert isinstance(arr.type, NDArrayType) and arr.type.declared_shape == (0, 2)
    assert array_type_of(arr.type) == array_type
    _same(arrow_to_arrays(arr), values)
    stored = to_storage(arr)
    assert stored_array_type(storage_field("x", arr.type)) == (array_type, 0)
    _same(arrow_to_arrays(from_storage(stored, array_type)), values)
    db = DeltaTableDatabase(str(tmp_path / "store"))
    db.add_records(("t",), pa.table({"id": ["a", "b", "c"], "x": arr}), record_id_column="id")
    db.flush()
    _same(arrow_to_arrays(db.get_all_records(("t",)).column("x")), values)
