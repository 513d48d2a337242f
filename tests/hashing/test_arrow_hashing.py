import datetime as dt
import itertools
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orcapod.errors import HashingError, InputValidationError
from orcapod.hashing import hash_rows, hash_table
from orcapod.hashing.arrow_hashing import (
    PATH_STRUCT_TYPE,
    ROW_HASH_METHOD,
    TABLE_HASH_METHOD,
    is_path_struct,
    row_hash,
)
from orcapod.hashing.file_hashing import clear_file_digest_memo, path_content_digest


def same(a: pa.Table, b: pa.Table) -> bool:
    """Both hashers agree that ``a`` and ``b`` hold the same values."""
    table_equal = hash_table(a) == hash_table(b)
    rows_equal = hash_rows(a).equals(hash_rows(b))
    assert table_equal == rows_equal, "hash_table and hash_rows disagree"
    return table_equal


def rows_of(table: pa.Table) -> list[bytes]:
    return hash_rows(table).to_pylist()


def assert_row_consistency(table: pa.Table) -> None:
    digests = rows_of(table)
    assert len(digests) == table.num_rows
    for i in range(table.num_rows):
        assert hash_rows(table.slice(i, 1))[0].as_py() == digests[i]


def with_garbage_under_nulls(arr: pa.Array) -> pa.Array:
    """The same logical int64 array, but with non-zero bytes in the null value slots."""
    valid = arr.is_valid().to_numpy(zero_copy_only=False)
    garbage = np.arange(100, 100 + len(arr), dtype=np.int64)
    values = np.where(valid, arr.fill_null(0).to_numpy(), garbage)
    return pa.Array.from_buffers(pa.int64(), len(arr), [arr.buffers()[0], pa.py_buffer(values)])


# --- basic contract ------------------------------------------------------------------------------


def test_methods_and_shapes():
    t = pa.table({"a": [1, 2, 3]})
    assert hash_table(t).method == TABLE_HASH_METHOD == "arrow_v1"
    assert len(hash_table(t).digest) == 16
    rows = hash_rows(t)
    assert rows.type == pa.binary(16) and len(rows) == 3
    one = row_hash(t.slice(1, 1))
    assert one.method == ROW_HASH_METHOD == "arrow_row_v1"
    assert one.digest == rows[1].as_py()


def test_zero_rows_give_an_empty_array_and_a_schema_dependent_table_hash():
    empty = pa.table({"a": pa.array([], pa.int64())})
    assert len(hash_rows(empty)) == 0 and hash_rows(empty).type == pa.binary(16)
    other = pa.table({"b": pa.array([], pa.int64())})
    assert hash_table(empty) != hash_table(other)


def test_row_hash_requires_exactly_one_row():
    with pytest.raises(InputValidationError, match="exactly one row"):
        row_hash(pa.table({"a": [1, 2]}))


def test_record_batch_equals_table():
    t = pa.table({"a": [1, 2], "s": ["x", "y"]})
    batch = t.to_batches()[0]
    assert hash_table(batch) == hash_table(t)
    assert hash_rows(batch).equals(hash_rows(t))


def test_not_a_table_is_rejected():
    with pytest.raises(HashingError, match="Table or RecordBatch"):
        hash_table({"a": [1]})  # type: ignore[arg-type]


def test_duplicate_column_names_are_rejected():
    t = pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["a", "a"])
    with pytest.raises(HashingError, match="duplicate column names"):
        hash_table(t)
    with pytest.raises(HashingError, match="duplicate column names"):
        hash_rows(t)


def test_unsupported_type_names_the_column():
    union = pa.UnionArray.from_sparse(
        pa.array([0, 1], pa.int8()), [pa.array([1, 2]), pa.array(["a", "b"])]
    )
    t = pa.table({"u": union})
    with pytest.raises(HashingError, match="'u'.*not supported"):
        hash_table(t)
    interval = pa.table({"iv": pa.array([pa.MonthDayNano([1, 2, 3])])})
    with pytest.raises(HashingError, match="'iv'"):
        hash_rows(interval)


# --- logical invariances -------------------------------------------------------------------------


row_values = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
        st.one_of(st.none(), st.text(max_size=12)),
        st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=5)),
        st.one_of(st.none(), st.floats(allow_nan=True)),
    ),
    min_size=1,
    max_size=30,
)


def build(rows: list[tuple[object, ...]]) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    return pa.table(
        {
            "i": pa.array(cols[0], pa.int64()),
            "s": pa.array(cols[1], pa.string()),
            "l": pa.array(cols[2], pa.list_(pa.int64())),
            "f": pa.array(cols[3], pa.float64()),
        }
    )


@settings(max_examples=60, deadline=None)
@given(rows=row_values, data=st.data())
def test_chunking_does_not_matter(rows, data):
    table = build(rows)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), max_size=4)))
    bounds = [0, *cuts, len(rows)]
    pieces = [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    chunked = pa.concat_tables(pieces)
    assert same(table, chunked)
    assert same(table, table.combine_chunks())


@settings(max_examples=60, deadline=None)
@given(rows=row_values, order=st.permutations(["i", "s", "l", "f"]))
def test_column_order_does_not_matter(rows, order):
    table = build(rows)
    assert same(table, table.select(order))


@settings(max_examples=40, deadline=None)
@given(rows=row_values)
def test_row_hashes_match_single_row_slices(rows):
    assert_row_consistency(build(rows))


def test_string_binary_and_list_layouts_are_equivalent():
    base = pa.table(
        {
            "s": pa.array(["a", None, "", "xyz" * 10], pa.string()),
            "b": pa.array([b"ab", None, b"", b"\0\0"], pa.binary()),
            "l": pa.array([[1, 2], None, [], [3]], pa.list_(pa.int64())),
        }
    )
    variants = [
        {"s": pa.large_string(), "b": pa.large_binary(), "l": pa.large_list(pa.int64())},
        {"s": pa.string_view(), "b": pa.binary_view(), "l": pa.list_(pa.int32())},
    ]
    for types in variants:
        other = pa.table({name: base[name].cast(t) for name, t in types.items()})
        assert same(base, other)
    dictionary = base.set_column(0, "s", base["s"].dictionary_encode())
    assert same(base, dictionary)


def test_fixed_size_variants_are_their_variable_size_equivalents():
    fixed = pa.table({"b": pa.array([b"ab", None, b"cd"], pa.binary(2))})
    var = pa.table({"b": pa.array([b"ab", None, b"cd"], pa.binary())})
    assert same(fixed, var)
    fl = pa.table({"l": pa.array([[1, 2], None, [3, 4]], pa.list_(pa.int64(), 2))})
    vl = pa.table({"l": pa.array([[1, 2], None, [3, 4]], pa.list_(pa.int64()))})
    assert same(fl, vl)


def test_integer_widths_normalise_but_signedness_and_kind_do_not():
    values = [1, None, 5]
    as_int64 = pa.table({"x": pa.array(values, pa.int64())})
    for t in (pa.int8(), pa.int16(), pa.int32()):
        assert same(as_int64, pa.table({"x": pa.array(values, t)}))
    as_uint64 = pa.table({"x": pa.array(values, pa.uint64())})
    for t in (pa.uint8(), pa.uint16(), pa.uint32()):
        assert same(as_uint64, pa.table({"x": pa.array(values, t)}))
    assert not same(as_int64, as_uint64)
    assert not same(as_int64, pa.table({"x": pa.array([1.0, None, 5.0])}))
    assert not same(as_int64, pa.table({"x": pa.array([True, None, True])}))


def test_float_widths_normalise_exactly():
    f64 = pa.table({"x": pa.array([1.5, None, -2.25], pa.float64())})
    f32 = pa.table({"x": pa.array([1.5, None, -2.25], pa.float32())})
    f16 = pa.table(
        {"x": pa.array(np.array([1.5, 0, -2.25], np.float16), mask=np.array([0, 1, 0], bool))}
    )
    assert same(f64, f32) and same(f64, f16)
    # 0.1 in float32 is a different number from 0.1 in float64
    assert not same(pa.table({"x": pa.array([0.1], pa.float32())}), pa.table({"x": [0.1]}))


def test_negative_zero_and_nan_payloads_are_canonical():
    nan_bits = np.array([0x7FF8000000000000, 0x7FF0000000000001, 0xFFF8000000000123], np.uint64)
    nans = nan_bits.view(np.float64)
    assert np.isnan(nans).all()
    a = pa.table({"x": pa.array(np.concatenate([[0.0], nans]))})
    b = pa.table({"x": pa.array(np.concatenate([[-0.0], nans[::-1]]))})
    assert same(a, b)
    assert rows_of(a)[1] == rows_of(a)[2] == rows_of(a)[3]
    assert not same(pa.table({"x": [0.0]}), pa.table({"x": [1e-300]}))


def test_nulls_differ_from_empty_and_zero():
    def col(values, t):
        return pa.table({"c": pa.array(values, t)})

    assert not same(col([None], pa.string()), col([""], pa.string()))
    assert not same(col([None], pa.int64()), col([0], pa.int64()))
    assert not same(col([None], pa.float64()), col([0.0], pa.float64()))
    assert not same(col([None], pa.bool_()), col([False], pa.bool_()))
    assert not same(col([None], pa.list_(pa.int64())), col([[]], pa.list_(pa.int64())))
    assert not same(col([[None]], pa.list_(pa.int64())), col([[]], pa.list_(pa.int64())))
    assert not same(col([[None]], pa.list_(pa.int64())), col([[0]], pa.list_(pa.int64())))
    struct = pa.struct([("a", pa.int64())])
    assert not same(col([None], struct), col([{"a": None}], struct))
    # empty string vs "\0": trailing zero bytes are not padding
    assert not same(col([""], pa.binary()), col([b"\0"], pa.binary()))
    assert not same(col([b"a"], pa.binary()), col([b"a\0"], pa.binary()))
    # null-type column vs a null int column: different logical types
    assert not same(pa.table({"c": pa.nulls(2)}), col([None, None], pa.int64()))


def test_values_hidden_under_nulls_do_not_matter():
    clean = pa.array([1, None, 3, None], pa.int64())
    dirty = with_garbage_under_nulls(clean)
    assert dirty.to_pylist() == clean.to_pylist()
    assert same(pa.table({"x": clean}), pa.table({"x": dirty}))
    # A null list slot backed by a non-empty range of child values.
    backed = pa.ListArray.from_arrays(
        pa.array([0, 2, 4, 5], pa.int32()),
        pa.array([1, 2, 9, 9, 3]),
        mask=pa.array([False, True, False]),
    )
    plain = pa.array([[1, 2], None, [3]], pa.list_(pa.int64()))
    assert same(pa.table({"l": backed}), pa.table({"l": plain}))
    # A null string slot backed by bytes.
    backed_str = pa.Array.from_buffers(
        pa.string(),
        3,
        [
            pa.array([True, False, True]).buffers()[1],
            pa.py_buffer(np.array([0, 1, 4, 5], np.int32)),
            pa.py_buffer(b"aXYZb"),
        ],
    )
    assert backed_str.to_pylist() == ["a", None, "b"]
    assert same(pa.table({"s": backed_str}), pa.table({"s": ["a", None, "b"]}))
    # Struct children under a null struct.
    children = [pa.array([1, 2, 3]), pa.array(["x", "y", "z"])]
    masked = pa.StructArray.from_arrays(
        children, names=["a", "b"], mask=pa.array([False, True, False])
    )
    zeroed = pa.array([{"a": 1, "b": "x"}, None, {"a": 3, "b": "z"}], masked.type)
    assert same(pa.table({"st": masked}), pa.table({"st": zeroed}))


def test_sliced_inputs_equal_fresh_ones():
    t = pa.table(
        {
            "i": pa.array([1, None, 3, 4, 5]),
            "s": pa.array(["a", "bb", None, "dddd", ""]),
            "l": pa.array([[1], [2, 3], None, [], [4, 5, 6]]),
            "b": pa.array([True, False, None, True, False]),
            "st": pa.array([{"a": 1}, None, {"a": 3}, {"a": None}, {"a": 5}]),
        }
    )
    for start in range(5):
        for length in range(6 - start):
            sliced = t.slice(start, length)
            fresh = pa.Table.from_pylist(sliced.to_pylist(), schema=t.schema)
            assert same(sliced, fresh)


def test_row_order_column_names_and_types_matter():
    t = pa.table({"a": [1, 2], "b": ["x", "y"]})
    assert not same(t, t.take([1, 0]))
    assert not same(t, t.rename_columns(["a", "c"]))
    assert not same(t, pa.table({"a": [1, 2], "b": [b"x", b"y"]}))
    # swapping values between two same-typed columns changes the row
    assert not same(pa.table({"x": [1], "y": [2]}), pa.table({"x": [2], "y": [1]}))
    # the same value in a different column name is a different row
    assert rows_of(pa.table({"a": [1]})) != rows_of(pa.table({"b": [1]}))


def test_struct_field_order_does_not_matter_but_names_do():
    ab = pa.array([{"a": 1, "b": "x"}], pa.struct([("a", pa.int64()), ("b", pa.string())]))
    ba = pa.array([{"b": "x", "a": 1}], pa.struct([("b", pa.string()), ("a", pa.int64())]))
    assert same(pa.table({"s": ab}), pa.table({"s": ba}))
    ac = pa.array([{"a": 1, "c": "x"}])
    assert not same(pa.table({"s": ab}), pa.table({"s": ac}))


def test_strings_and_lists_respect_order_and_boundaries():
    t = pa.table({"s": ["ab", "ba", "a", "abc", "abcdefgh", "abcdefghi", "abcdefgi"]})
    assert len(set(rows_of(t))) == t.num_rows
    lists = pa.table({"l": [[1, 2], [2, 1], [1], [1, 2, 3], [12], [], [1, None], [None, 1]]})
    assert len(set(rows_of(lists))) == lists.num_rows
    nested = pa.table({"n": [[[1], [2]], [[1, 2]], [[2], [1]], [[], [1, 2]], [[1, 2], []]]})
    assert len(set(rows_of(nested))) == nested.num_rows


# --- every listed type -------------------------------------------------------------------------


UTC = dt.UTC
TYPED_COLUMNS: dict[str, pa.Array] = {
    "int8": pa.array([1, -2, None], pa.int8()),
    "uint16": pa.array([1, 2, None], pa.uint16()),
    "int64": pa.array([2**62, -(2**62), None]),
    "uint64": pa.array([2**64 - 1, 0, None], pa.uint64()),
    "float16": pa.array(np.array([1.0, 0.5, 2.0], np.float16)),
    "float32": pa.array([1.25, None, -0.0], pa.float32()),
    "float64": pa.array([1e300, float("nan"), None]),
    "bool": pa.array([True, False, None]),
    "string": pa.array(["a", "", None]),
    "binary": pa.array([b"\x00\xff", b"", None]),
    "fixed_binary": pa.array([b"abcd", b"efgh", None], pa.binary(4)),
    "date32": pa.array([dt.date(2024, 1, 2), dt.date(1900, 1, 1), None]),
    "date64": pa.array([dt.date(2024, 1, 2), dt.date(1970, 1, 1), None], pa.date64()),
    "time32": pa.array([dt.time(1, 2, 3), dt.time(0), None], pa.time32("s")),
    "time64": pa.array([dt.time(1, 2, 3, 4), dt.time(0), None], pa.time64("us")),
    "timestamp": pa.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5), None, dt.datetime(1960, 1, 1)], pa.timestamp("us")
    ),
    "timestamp_tz": pa.array(
        [dt.datetime(2024, 1, 2, tzinfo=UTC), None, dt.datetime(1999, 1, 1, tzinfo=UTC)],
        pa.timestamp("ns", tz="UTC"),
    ),
    "duration": pa.array(
        [dt.timedelta(seconds=3), dt.timedelta(microseconds=-1), None], pa.duration("us")
    ),
    "decimal128": pa.array([Decimal("1.25"), Decimal("-3.50"), None], pa.decimal128(10, 2)),
    "decimal256": pa.array([Decimal("1.25"), Decimal("-3.50"), None], pa.decimal256(40, 2)),
    "list": pa.array([[1, 2], [], None]),
    "large_list": pa.array([["a"], [None], None], pa.large_list(pa.string())),
    "fixed_list": pa.array([[1.0, 2.0], [3.0, 4.0], None], pa.list_(pa.float64(), 2)),
    "struct": pa.array([{"x": 1, "y": [1.5]}, {"x": None, "y": None}, None]),
    "map": pa.array([[("a", 1), ("b", 2)], [], None], pa.map_(pa.string(), pa.int64())),
    "null": pa.nulls(3),
    "nested": pa.array([[{"k": [b"x"]}], [None], None]),
}


@pytest.mark.parametrize("name", sorted(TYPED_COLUMNS))
def test_every_supported_type_hashes_consistently(name):
    column = TYPED_COLUMNS[name]
    table = pa.table({name: column})
    assert_row_consistency(table)
    assert same(table, pa.concat_tables([table.slice(0, 1), table.slice(1)]))
    if name != "null":
        digests = rows_of(table)
        assert len(set(digests)) == 3, "the three test values are distinct and must hash apart"
        assert hash_table(table) != hash_table(table.take([1, 0, 2]))


def test_temporal_units_normalise_and_time_zone_is_part_of_the_type():
    seconds = pa.array([0, 1_700_000_000, None], pa.timestamp("s"))
    assert same(pa.table({"t": seconds}), pa.table({"t": seconds.cast(pa.timestamp("ns"))}))
    assert same(pa.table({"t": seconds}), pa.table({"t": seconds.cast(pa.timestamp("ms"))}))
    utc = pa.table({"t": seconds.cast(pa.timestamp("s", tz="UTC"))})
    assert not same(pa.table({"t": seconds}), utc)
    assert not same(utc, pa.table({"t": seconds.cast(pa.timestamp("s", tz="Europe/Paris"))}))
    # far-future seconds do not overflow the nanosecond normalisation
    far = pa.table({"t": pa.array([32_503_680_000, 32_503_680_001], pa.timestamp("s"))})
    assert len(set(rows_of(far))) == 2
    dur = pa.array([1, -1, None], pa.duration("s"))
    assert same(pa.table({"d": dur}), pa.table({"d": dur.cast(pa.duration("us"))}))
    t32 = pa.array([1, 2, None], pa.time32("ms"))
    assert same(pa.table({"t": t32}), pa.table({"t": t32.cast(pa.time64("ns"))}))
    d = pa.array([dt.date(2020, 2, 29), None])
    assert same(pa.table({"d": d}), pa.table({"d": d.cast(pa.date64())}))


def test_date64_with_partial_days_is_rejected_clearly():
    bad = pa.table({"d": pa.array([1], pa.date64())})
    with pytest.raises(HashingError, match="'d'.*date64"):
        hash_table(bad)


def test_decimal_width_and_precision_normalise_but_scale_matters():
    d128 = pa.array([Decimal("1.50"), None], pa.decimal128(5, 2))
    assert same(pa.table({"d": d128}), pa.table({"d": d128.cast(pa.decimal256(30, 2))}))
    assert same(pa.table({"d": d128}), pa.table({"d": d128.cast(pa.decimal128(12, 2))}))
    assert not same(pa.table({"d": d128}), pa.table({"d": d128.cast(pa.decimal128(6, 3))}))


def test_map_differs_from_list_of_pairs_and_its_widths_normalise():
    m1 = pa.array([[("a", 1), ("b", 2)]], pa.map_(pa.string(), pa.int64()))
    pairs = pa.array([[{"key": "a", "value": 1}, {"key": "b", "value": 2}]])
    assert not same(pa.table({"m": m1}), pa.table({"m": pairs}))
    large = m1.cast(pa.map_(pa.large_string(), pa.int32()))
    assert same(pa.table({"m": m1}), pa.table({"m": large}))


# --- path values -------------------------------------------------------------------------------


def path_table(paths: list[str | None]) -> pa.Table:
    return pa.table(
        {"p": pa.array([None if p is None else {"path": p} for p in paths], PATH_STRUCT_TYPE)}
    )


def test_path_struct_representation():
    assert is_path_struct(PATH_STRUCT_TYPE)
    assert is_path_struct(pa.struct([("path", pa.string())]))
    assert not is_path_struct(pa.struct([("path", pa.string()), ("x", pa.int64())]))
    assert not is_path_struct(pa.struct([("file", pa.string())]))
    assert not is_path_struct(pa.struct([("path", pa.int64())]))
    assert not is_path_struct(pa.string())


def test_paths_are_identified_by_file_content(tmp_path: Path):
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    c.write_bytes(b"different")
    assert same(path_table([str(a), None]), path_table([str(b), None]))
    assert not same(path_table([str(a)]), path_table([str(c)]))
    assert not same(path_table([str(a)]), path_table([None]))
    # the path string itself (a plain string column) is a different thing
    assert not same(path_table([str(a)]), pa.table({"p": [{"path": "x", "other": 1}]}))
    string_struct = pa.table(
        {"p": pa.array([{"path": str(a)}], pa.struct([("path", pa.string())]))}
    )
    assert same(path_table([str(a)]), string_struct)
    assert_row_consistency(path_table([str(a), None, str(c)]))


def test_editing_a_file_changes_the_hash(tmp_path: Path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"version 1")
    before = hash_table(path_table([str(f)]))
    assert hash_table(path_table([str(f)])) == before  # memoised, unchanged
    f.write_bytes(b"version 2")
    stat = f.stat()
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert hash_table(path_table([str(f)])) != before
    clear_file_digest_memo()
    assert hash_table(path_table([str(f)])) != before


def test_a_directory_path_hashes_its_tree(tmp_path: Path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "x.txt").write_text("x")
    first = hash_table(path_table([str(tmp_path / "d")]))
    (tmp_path / "d" / "y.txt").write_text("y")
    assert hash_table(path_table([str(tmp_path / "d")])) != first


def test_nested_paths_are_identified_by_content(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same")
    b.write_text("same")
    list_type = pa.list_(PATH_STRUCT_TYPE)
    first = pa.table({"ps": pa.array([[{"path": str(a)}, None]], list_type)})
    second = pa.table({"ps": pa.array([[{"path": str(b)}, None]], list_type)})
    assert same(first, second)
    b.write_text("changed")
    clear_file_digest_memo()
    assert not same(first, second)


def test_a_missing_file_in_a_column_is_identified_by_its_path_until_it_exists(tmp_path: Path):
    missing, other = tmp_path / "nope.csv", tmp_path / "other.csv"
    rows = hash_rows(path_table([None, str(missing), str(other)])).to_pylist()
    assert len(set(rows)) == 3  # hashing does not fail; each missing path has its own identity
    assert hash_rows(path_table([str(missing)])).to_pylist() == rows[1:2]  # stable
    missing.write_text("now here")
    clear_file_digest_memo()
    assert hash_rows(path_table([str(missing)])).to_pylist() != rows[1:2]
    other.write_text("now here")
    assert hash_rows(path_table([str(other)])) == hash_rows(path_table([str(missing)]))


def test_a_missing_path_value_outside_a_column_names_the_path(tmp_path: Path):
    with pytest.raises(HashingError, match="nope.csv"):
        path_content_digest(tmp_path / "nope.csv")


# --- hash_rows specifics -----------------------------------------------------------------------


def test_equal_rows_get_equal_digests_and_distinct_rows_differ():
    rng = np.random.default_rng(7)
    n = 20_000
    t = pa.table(
        {
            "i": rng.integers(0, 50, n),
            "s": pa.array([f"v{x}" for x in rng.integers(0, 50, n)]),
            "l": pa.array([[int(x)] * int(x % 3) for x in rng.integers(0, 50, n)]),
        }
    )
    digests = rows_of(t)
    keys = list(
        zip(t["i"].to_pylist(), t["s"].to_pylist(), map(tuple, t["l"].to_pylist()), strict=True)
    )
    by_key: dict[tuple[object, ...], bytes] = {}
    for key, digest in zip(keys, digests, strict=True):
        assert by_key.setdefault(key, digest) == digest
    assert len(set(by_key.values())) == len(by_key)


def test_many_distinct_rows_do_not_collide():
    n = 200_000
    t = pa.table(
        {"i": np.arange(n), "f": np.arange(n) * 0.5, "s": pa.array(np.arange(n).astype(str))}
    )
    digests = rows_of(t)
    assert len(set(digests)) == n
    lanes = np.frombuffer(b"".join(digests), dtype="<u8").reshape(n, 2)
    assert len(np.unique(lanes[:, 0])) == n and len(np.unique(lanes[:, 1])) == n


def test_long_values_span_kernel_blocks():
    # values longer than one processing block, and a block boundary inside a value
    long_strings = pa.table({"s": ["a" * 300_000, "a" * 300_001, "b" + "a" * 299_999, ""]})
    assert len(set(rows_of(long_strings))) == 4
    assert_row_consistency(long_strings)
    long_list = pa.table({"l": [list(range(40_000)), list(range(1, 40_001)), [0] * 40_000]})
    assert len(set(rows_of(long_list))) == 3
    assert_row_consistency(long_list)


def test_nested_nulls_inside_lists_of_structs():
    t = pa.table({"x": pa.array([[{"a": 1}, None], [None, {"a": 1}], [{"a": None}], None, []])})
    assert len(set(rows_of(t))) == 5
    assert_row_consistency(t)


def test_dictionary_chunks_with_different_dictionaries():
    c1 = pa.array(["a", "b", "a"]).dictionary_encode()
    c2 = pa.array(["c", "a"]).dictionary_encode()
    chunked = pa.table({"s": pa.chunked_array([c1, c2])})
    assert same(chunked, pa.table({"s": ["a", "b", "a", "c", "a"]}))


def test_pc_take_output_hashes_like_the_original_rows():
    t = pa.table({"s": ["x", None, "zz"], "l": [[1], None, [2, 3]]})
    taken = pc.take(t, pa.array([2, 0]))
    assert rows_of(taken) == [rows_of(t)[2], rows_of(t)[0]]


# --- golden digests ----------------------------------------------------------------------------
# These pin the arrow_v1 / arrow_row_v1 algorithms. If a change to the hashing code makes them
# fail, that change alters every stored hash: bump TABLE_HASH_METHOD / ROW_HASH_METHOD to a new
# version on purpose instead of editing the expected values.


def golden_table() -> pa.Table:
    return pa.table(
        {
            "i": pa.array([1, None, -3], pa.int32()),
            "f": pa.array([0.5, float("nan"), -0.0]),
            "s": pa.array(["alpha", "", None]),
            "l": pa.array([[1, 2], None, []], pa.list_(pa.int64())),
            "b": pa.array([True, None, False]),
            "st": pa.array([{"k": "v", "n": 1}, None, {"k": None, "n": 2}]),
            "t": pa.array([0, 1_700_000_000_123, None], pa.timestamp("ms", tz="UTC")),
            "d": pa.array([Decimal("1.5"), None, Decimal("-2.25")], pa.decimal128(6, 2)),
            "m": pa.array([[("a", 1)], [], None], pa.map_(pa.string(), pa.int64())),
        }
    )


GOLDEN_TABLE = "arrow_v1:487829cfb90f7e80f8d292eb2d013c4e"
GOLDEN_ROWS = [
    "38483c4725462be21be2a24fd855545e",
    "8f822871a9f19b87b7d5a3e00304a914",
    "8abf7a505791d0dd037d69226fec0754",
]


def test_golden_digests():
    t = golden_table()
    assert hash_table(t).to_string() == GOLDEN_TABLE
    assert [d.hex() for d in rows_of(t)] == GOLDEN_ROWS
