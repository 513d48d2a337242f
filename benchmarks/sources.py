"""Build an ArrowTableSource of 1M rows and take its content hash, next to the baseline of
writing the same table as Arrow IPC and SHA-256-ing the bytes (issue 2 goal: within 5x)."""

from __future__ import annotations

import argparse
import hashlib
import json
import time

import numpy as np
import pyarrow as pa

from orcapod.sources import ArrowTableSource


def make_table(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 1 << 40, n)
    return pa.table(
        {
            "id": pa.array(np.arange(n)),
            "i": pa.array(ints),
            "f": pa.array(rng.random(n)),
            "s": pa.array(
                [f"name-{v}" for v in ints[: min(n, 1000)]] * (n // min(n, 1000)), pa.large_string()
            ),
            "l": pa.LargeListArray.from_arrays(
                pa.array(np.arange(0, 3 * n + 1, 3)), pa.array(rng.integers(0, 100, 3 * n))
            ),
        }
    )


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def ipc_sha256(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 10_000 if parser.parse_args().quick else 1_000_000
    table = make_table(n)
    baseline = best_of(lambda: ipc_sha256(table))
    build_hash = best_of(lambda: ArrowTableSource(table, ["id"]).content_hash())
    build_rows = best_of(lambda: ArrowTableSource(table, ["id"]).as_table(all_info=True))
    print(
        json.dumps(
            {
                "benchmark": "source_build_and_content_hash",
                "n": n,
                "seconds": round(build_hash, 4),
                "baseline_ipc_sha256_seconds": round(baseline, 4),
                "ratio_to_baseline": round(build_hash / baseline, 2),
            }
        )
    )
    print(
        json.dumps(
            {
                "benchmark": "source_enriched_table_all_info",
                "n": n,
                "seconds": round(build_rows, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
