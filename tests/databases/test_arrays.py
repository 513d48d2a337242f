"""Numpy array columns through every storing backend (see ``conftest.BACKENDS``)."""

import numpy as np
import pyarrow as pa
import pytest

from orcapod.data.conversion import column_to_pylist, columns_to_table
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import SchemaError
from orcapod.types import ArrayType

SCHEMA = {
    "id": str,
    "img": ArrayType("uint8", (2, 3)) | None,
    "ragged": ArrayType("float16") | None,
    "feat": ArrayType("float64", (2,)),
}


def _records():
    return columns_to_table(
        {
            "id": ["a", "b", "c"],
            "img": [
                np.arange(6, dtype=np.uint8).reshape(2, 3),
                None,
                np.full((2, 3), 255, np.uint8),
            ],
            "ragged": [np.arange(3, dtype=np.float16), np.zeros((2, 2), np.float16), None],
            "feat": [np.array([1.5, -0.0]), np.array([np.nan, 3.0]), np.array([2.0, 4.0])],
        },
        SCHEMA,
    )


def _assert_same(got: pa.Table, want: pa.Table):
    for name in ("img", "ragged", "feat"):
        assert got.column(name).type == want.column(name).type
        for a, b in zip(
            column_to_pylist(got.column(name)), column_to_pylist(want.column(name)), strict=True
        ):
            if a is None or b is None:
                assert a is b
                continue
            assert a.dtype == b.dtype and a.shape == b.shape
            assert np.array_equal(a, b, equal_nan=True)
            assert np.array_equal(np.signbit(a), np.signbit(b))


def test_arrays_round_trip_exactly(db):
    records = _records()
    db.add_records(("arrays",), records, "id")
    _assert_same(db.get_all_records(("arrays",), record_id_column="id"), records)
    db.flush()
    _assert_same(db.get_all_records(("arrays",), record_id_column="id"), records)
    by_id = db.get_records_by_ids(("arrays",), ["b"], record_id_column="id")
    _assert_same(by_id, records.slice(1, 1))
    projected = db.get_records_with_column_value(
        ("arrays",), {"id": "c"}, record_id_column="id", columns=["img", "ragged", "feat"]
    )
    _assert_same(projected, records.slice(2, 1))


def test_a_new_database_instance_reads_arrays_back_from_delta(tmp_path):
    records = _records()
    writer = DeltaTableDatabase(tmp_path / "store")
    writer.add_records(("arrays",), records, "id")
    writer.flush()
    reader = DeltaTableDatabase(tmp_path / "store")
    _assert_same(reader.get_all_records(("arrays",), record_id_column="id"), records)


def test_rows_of_another_array_type_are_refused(db):
    db.add_records(("arrays",), _records(), "id")
    db.flush()
    other = columns_to_table(
        {"id": ["z"], "feat": [np.zeros(3)]}, {"id": str, "feat": ArrayType("float64", (3,))}
    )
    with pytest.raises(SchemaError, match="'feat'"):
        db.add_records(("arrays",), other, "id")


def test_committed_and_pending_array_rows_read_back_together(db):
    records = _records()
    db.add_records(("arrays",), records.slice(0, 2), "id")
    db.flush()
    db.add_records(("arrays",), records.slice(2), "id")
    got = db.get_all_records(("arrays",), record_id_column="id")
    _assert_same(got.sort_by("id"), records)  # rows of several commits come in any order


def test_lists_of_arrays_round_trip(db):
    schema = {"id": str, "xs": list[ArrayType("float32", (2,))] | None}
    values = [[np.zeros(2, np.float32), np.ones(2, np.float32)], None, []]
    records = columns_to_table({"id": ["a", "b", "c"], "xs": values}, schema)
    db.add_records(("batched",), records, "id")
    db.flush()
    got = db.get_all_records(("batched",), record_id_column="id").sort_by("id")
    back = column_to_pylist(got.column("xs"))
    assert back[1] is None and back[2] == []
    assert [a.tolist() for a in back[0]] == [[0.0, 0.0], [1.0, 1.0]]
    assert all(a.dtype == np.float32 for a in back[0])
