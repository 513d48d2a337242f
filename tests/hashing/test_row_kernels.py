"""row_kernels: the shortcut kernels give the general kernels' hashes exactly."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest

from orcapod.hashing import hash_rows, row_kernels
from orcapod.hashing.arrow_canonical import canonical_column


@pytest.mark.parametrize("length", [1, 5, 7, 8, 9, 16, 32, 45, 100])
def test_values_of_one_length_hash_as_values_of_any_length(length):
    """Values that all have one byte length (ids, hashes, a constant column) take a shortcut
    kernel; it gives the hash of the general one, byte for byte, so stored hashes are the same
    whatever the column's other values are."""
    rng = np.random.default_rng(length)
    values = [bytes(rng.integers(0, 256, length, dtype=np.uint8)) for _ in range(3000)]
    seed = os.urandom(16)
    for column in (pa.array(values, pa.binary()), pa.array([values[0]] * 50, pa.binary())):
        canon = canonical_column(column, "v")
        assert np.array_equal(
            row_kernels._equal_length_rows(canon.data, len(column), length, seed),
            row_kernels._any_length_rows(canon, seed),
        )
    # one value of another length in the column: the general kernel, and the same hashes
    mixed = hash_rows(pa.table({"v": pa.array([*values[:10], b"x" * (length + 1)])}))
    assert mixed[:10].equals(hash_rows(pa.table({"v": pa.array(values[:10])})))
