"""Throughput of orcapod's Arrow hashing on 1,000,000 rows of (int64, float64, string,
list<int64>), next to two baselines over the same data:

* ``xxh3_128`` streamed over the table's raw Arrow buffers (the floor for any buffer hashing;
  no canonicalisation, so not logical);
* writing the table as Arrow IPC into memory and SHA-256-ing the bytes (the issue-2 reference).

Figures: ``hash_rows`` (one 16-byte digest per row) and ``hash_table`` (one digest), each on
the full table and on its fixed-width columns only (int64, float64). Each figure is the best of
``--repeats`` runs (default 5) after one warm-up. Prints one JSON object per figure.
Add more figures by appending to ``FIGURES`` (name, table key, callable).

    .venv/bin/python benchmarks/hashing.py [--quick] [--rows N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import xxhash

from orcapod.hashing import hash_rows, hash_table


def make_table(n: int, seed: int = 0) -> pa.Table:
    """(int64, float64, string, list<int64>); strings ~10 bytes, lists 0-9 items (avg 4.5)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 10, n)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = pa.array(rng.integers(0, 1_000_000, int(offsets[-1])))
    return pa.table(
        {
            "i": pa.array(rng.integers(-(1 << 40), 1 << 40, n)),
            "f": pa.array(rng.random(n)),
            "s": pa.array(np.char.add("name-", rng.integers(0, 10**6, n).astype(str)), pa.string()),
            "l": pa.ListArray.from_arrays(pa.array(offsets), values),
        }
    )


def raw_xxh3(table: pa.Table) -> bytes:
    """xxh3_128 over every raw buffer of every column (no canonicalisation)."""
    hasher = xxhash.xxh3_128()

    def feed(arr: pa.Array) -> None:
        for buf in arr.buffers():
            if buf is not None:
                hasher.update(buf)

    for column in table.columns:
        for chunk in column.chunks:
            feed(chunk)
    return hasher.digest()


def ipc_sha256(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).digest()


FIGURES: list[tuple[str, str, Callable[[pa.Table], Any]]] = [
    ("hash_rows", "full", hash_rows),
    ("hash_rows", "fixed_width", hash_rows),
    ("hash_table", "full", hash_table),
    ("hash_table", "fixed_width", hash_table),
    ("baseline_raw_xxh3_128", "full", raw_xxh3),
    ("baseline_raw_xxh3_128", "fixed_width", raw_xxh3),
    ("baseline_ipc_sha256", "full", ipc_sha256),
    ("baseline_ipc_sha256", "fixed_width", ipc_sha256),
]


def best_seconds(fn: Callable[[pa.Table], Any], table: pa.Table, repeats: int) -> float:
    fn(table)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(table)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 2 repeats")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    n = args.rows or (10_000 if args.quick else 1_000_000)
    repeats = args.repeats or (2 if args.quick else 5)
    full = make_table(n)
    tables = {"full": full, "fixed_width": full.select(["i", "f"])}
    for name, key, fn in FIGURES:
        table = tables[key]
        seconds = best_seconds(fn, table, repeats)
        print(
            json.dumps(
                {
                    "benchmark": f"hashing.{name}",
                    "table": key,
                    "columns": [str(t) for t in table.schema.types],
                    "n": n,
                    "seconds": round(seconds, 5),
                    "rows_per_s": round(n / seconds),
                    "mb_per_s": round(table.nbytes / seconds / 1e6, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
