import numpy as np
import pyarrow as pa

from orcapod.operators.indices import take_rows


def test_parallel_gather_of_a_large_table_equals_arrow_take():
    n = 100_000  # above the threshold where columns are gathered on threads
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "i": pa.array(rng.integers(0, 1 << 40, n)),
            "s": pa.array([f"v{i}" for i in range(n)], pa.large_string()),
            "l": pa.array([[i, i + 1] if i % 7 else None for i in range(n)]),
        }
    )
    chunked = pa.concat_tables([table.slice(0, n // 3), table.slice(n // 3)])
    positions = pa.array(rng.permutation(n)[: n // 2])
    taken = take_rows(chunked, positions)
    assert taken.schema == table.schema
    assert taken.equals(table.take(positions))


def test_small_tables_take_the_plain_path():
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    assert take_rows(table, pa.array([2, 0])).to_pylist() == [
        {"a": 3, "b": "z"},
        {"a": 1, "b": "x"},
    ]
