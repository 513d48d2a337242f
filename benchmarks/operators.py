"""Operator throughput: joins, iteration of joined rows, and the unary operators.

Figures (one JSON object per line; each the best of ``--repeat`` runs):

* ``join``: ``Join()(a, b)`` computed, for two N-row sources sharing the tag ``id`` (the second
  in shuffled order), against ``pyarrow.Table.join`` of the same user columns
  (``raw_pyarrow_seconds``; ``ratio`` = join / raw, goal <= 2). The operator also carries and
  renames every hidden column (system tags, source info) and fixes the row order.
* ``iterate_joined``: iterating ``(tag, packet)`` over M joined rows (goal for M = 100,000:
  < 0.5 s; the earlier implementation took 22.6 s).
* ``semi_join``, ``merge_join``, ``batch``, ``polars_filter``, ``map_packets``: the other
  operators over the same N-row inputs.

Sizes: N = 1,000,000 and M = 100,000 (``--quick``: 20,000 and 5,000). Building the sources
(their system tags and source info) is outside every timing and reported as ``source_build``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from orcapod.operators import (
    Batch,
    GroupBy,
    Join,
    MapPackets,
    MergeJoin,
    PolarsFilter,
    SemiJoin,
    TagsToPacket,
)
from orcapod.sources import ArrowTableSource


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def emit(**figure: Any) -> None:
    print(json.dumps(figure), flush=True)


def tables(n: int, seed: int = 0) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    left = pa.table({"id": ids, "x": rng.random(n)})
    right = pa.table({"id": rng.permutation(ids), "y": rng.random(n)})
    return left, right


def sources(left: pa.Table, right: pa.Table) -> tuple[ArrowTableSource, ArrowTableSource]:
    a = ArrowTableSource(left, ["id"], source_id="left")
    b = ArrowTableSource(right, ["id"], source_id="right")
    a.stream.table, b.stream.table  # noqa: B018 - build the enriched tables up front
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small smoke size")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--iter-rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = 20_000 if args.quick else args.n
    m = 5_000 if args.quick else args.iter_rows

    left, right = tables(n)
    start = time.perf_counter()
    a, b = sources(left, right)
    emit(benchmark="source_build", n=n, sources=2, seconds=time.perf_counter() - start)

    raw = best(lambda: left.join(right, "id"), args.repeat)
    joined = best(lambda: Join()(a, b).table, args.repeat)
    emit(
        benchmark="join",
        n=n,
        seconds=joined,
        raw_pyarrow_seconds=raw,
        ratio=joined / raw,
        rows_per_s=n / joined,
        goal_ratio=2.0,
    )

    small_a, small_b = sources(*tables(m, seed=1))
    stream = Join()(small_a, small_b)
    stream.table  # noqa: B018 - compute outside the iteration timing

    def iterate() -> None:
        for _tag, _packet in stream:
            pass

    seconds = best(iterate, args.repeat)
    emit(
        benchmark="iterate_joined",
        n=m,
        seconds=seconds,
        rows_per_s=m / seconds,
        us_per_row=seconds / m * 1e6,
        goal_seconds_per_100k=0.5,
    )

    half = ArrowTableSource(right.slice(0, n // 2), ["id"], source_id="half")
    twin = ArrowTableSource(right.rename_columns(["id", "x"]), ["id"], source_id="twin")
    # 100 rows per group, groups interleaved (row i is in group i % (n / 100))
    keys = pa.array(np.arange(n, dtype=np.int64) % max(n // 100, 1))
    grouped = ArrowTableSource(left.append_column("g", keys), ["g", "id"], source_id="grouped")
    grouped.stream.table  # noqa: B018 - build the enriched table up front
    cases: dict[str, Callable[[], Any]] = {
        "semi_join": lambda: SemiJoin()(a, half).table,
        "merge_join": lambda: MergeJoin()(a, twin).table,
        "batch": lambda: Batch(100)(a).table,
        "polars_filter": lambda: PolarsFilter([pl.col("x") > 0.5])(a).table,
        "map_packets": lambda: MapPackets({"x": "renamed"})(a).table,
        "group_by": lambda: GroupBy("g")(grouped).table,
        "tags_to_packet": lambda: TagsToPacket("id")(a).table,
    }
    for name, fn in cases.items():
        seconds = best(fn, args.repeat)
        emit(benchmark=name, n=n, seconds=seconds, rows_per_s=n / seconds)


if __name__ == "__main__":
    main()
