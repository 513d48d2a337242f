"""Benchmarks for orcapod.databases (DeltaTableDatabase, with InMemory for reference).

Figures (one JSON object per line):

* ``append``: N rows in batches of B via ``add_records`` (each batch duplicate-checked and
  committed); rows/s. Goal: >= 500k rows/s for 1M rows in batches of 10k.
  ``append_raw_write_deltalake`` is the same data through bare ``write_deltalake`` (no checks).
* ``lookup``: ``get_records_by_ids`` for K existing ids in the N-row table, against raw
  filtered deltalake scans of the same table (``QueryBuilder`` with a plain ``IN`` list, and
  with the semi-join SQL orcapod itself sends); ratio = orcapod / raw. Goal: within 2x.
* ``column_value``: ``get_records_with_column_value`` on the N-row table, a selective and a
  broad constraint, with a projection.
* ``add_one`` / ``add_batch_to_full``: the cost of adding (check and commit) to a full table.
* ``first_add_new_instance``: the first add by a fresh ``DeltaTableDatabase`` to the N-row
  table, which builds its committed-id index (one read of the id column, hashed).
* ``first_add_verified_new_instance``: the same for ids the caller verified absent
  (``committed_version`` then ``add_records(..., absent_at=version)``): no index build.
* ``readd_existing_skip``: re-adding B already stored ids with ``skip_duplicates=True`` (every
  id is an index hit, confirmed by one pushed-down query).

Run ``.venv/bin/python benchmarks/databases.py`` (1M rows) or ``--quick`` (20k rows).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import DeltaTable, QueryBuilder, write_deltalake

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.databases.sql import in_predicate
from orcapod.types.columns import RECORD_ID

PATH = ("bench", "records")


def emit(**figure: object) -> None:
    print(json.dumps(figure), flush=True)


def make_batch(start: int, size: int, rng: np.random.Generator) -> pa.Table:
    index = np.arange(start, start + size)
    ids = [f"{i:016x}-{rng.integers(1 << 62):016x}" for i in index]
    return pa.table(
        {
            "id": ids,
            "x": index,
            "y": rng.random(size),
            "group": index % 7,
            "label": [f"label-{i % 1000}" for i in index],
        }
    )


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke-test sizes")
    args = parser.parse_args()
    n, batch, lookups, repeat = (
        (20_000, 2_000, 100, 3) if args.quick else (1_000_000, 10_000, 1_000, 5)
    )
    rng = np.random.default_rng(7)
    batches = [make_batch(start, batch, rng) for start in range(0, n, batch)]

    memory = InMemoryArrowDatabase()
    start = time.perf_counter()
    for table in batches:
        memory.add_records(PATH, table, "id")
    seconds = time.perf_counter() - start
    emit(
        benchmark="append",
        backend="in_memory",
        n=n,
        batch=batch,
        seconds=round(seconds, 4),
        rows_per_s=round(n / seconds),
    )

    with tempfile.TemporaryDirectory() as tmp:
        db = DeltaTableDatabase(Path(tmp), batch_size=batch)
        start = time.perf_counter()
        for table in batches:
            db.add_records(PATH, table, "id")
        db.flush()
        seconds = time.perf_counter() - start
        emit(
            benchmark="append",
            backend="delta",
            n=n,
            batch=batch,
            seconds=round(seconds, 4),
            rows_per_s=round(n / seconds),
        )

        raw_dir = Path(tmp) / "raw"
        start = time.perf_counter()
        for table in batches:
            write_deltalake(raw_dir, table, mode="append")
        seconds = time.perf_counter() - start
        emit(
            benchmark="append_raw_write_deltalake",
            n=n,
            batch=batch,
            seconds=round(seconds, 4),
            rows_per_s=round(n / seconds),
            note="no duplicate checks: the floor the database's append can approach",
        )

        all_ids = [i for table in batches for i in table.column("id").to_pylist()]
        wanted = random.Random(3).sample(all_ids, lookups)
        reader = DeltaTableDatabase(Path(tmp))
        ours, got = timed(lambda: reader.get_records_by_ids(PATH, wanted, "id"), repeat)
        assert got is not None and got.num_rows == lookups  # type: ignore[attr-defined]

        uri = reader.table_uri(PATH)
        quoted = ", ".join("'" + i + "'" for i in wanted)
        plain_sql = f"SELECT * FROM t WHERE {RECORD_ID} IN ({quoted})"
        semi_sql = f"SELECT * FROM t WHERE {in_predicate(RECORD_ID, pa.array(wanted))}"

        def raw(sql: str) -> int:
            table = DeltaTable(uri)
            return pa.table(QueryBuilder().register("t", table).execute(sql)).num_rows

        raw_plain, rows_plain = timed(lambda: raw(plain_sql), repeat)
        raw_semi, rows_semi = timed(lambda: raw(semi_sql), repeat)
        assert rows_plain == rows_semi == lookups
        emit(
            benchmark="lookup",
            backend="delta",
            n=n,
            ids=lookups,
            seconds=round(ours, 4),
            raw_in_list_seconds=round(raw_plain, 4),
            raw_semi_join_seconds=round(raw_semi, 4),
            ratio_vs_raw_in_list=round(ours / raw_plain, 3),
            ratio_vs_raw_semi_join=round(ours / raw_semi, 3),
        )
        mem_seconds, _ = timed(lambda: memory.get_records_by_ids(PATH, wanted, "id"), repeat)
        emit(
            benchmark="lookup", backend="in_memory", n=n, ids=lookups, seconds=round(mem_seconds, 4)
        )

        cases = {
            "selective": ({"x": [n // 2, n // 3]}, ["y"]),
            "broad": ({"group": 3}, ["x", "label"]),
            "string_in": ({"label": ["label-1", "label-2"]}, ["x"]),
        }
        for name, (constraints, columns) in cases.items():
            for backend, store in (("delta", reader), ("in_memory", memory)):
                seconds, result = timed(
                    lambda s=store, c=constraints, p=columns: s.get_records_with_column_value(
                        PATH, c, "id", p
                    ),
                    repeat,
                )
                matched = 0 if result is None else result.num_rows  # type: ignore[attr-defined]
                emit(
                    benchmark="column_value",
                    backend=backend,
                    case=name,
                    n=n,
                    matched=matched,
                    seconds=round(seconds, 4),
                )

        extra = make_batch(n, batch, rng)
        start = time.perf_counter()
        db.add_records(PATH, extra, "id")
        emit(
            benchmark="add_batch_to_full",
            backend="delta",
            n=n,
            batch=batch,
            seconds=round(time.perf_counter() - start, 4),
        )
        one = make_batch(n + batch, 1, rng)
        start = time.perf_counter()
        db.add_records(PATH, one, "id")
        emit(
            benchmark="add_one",
            backend="delta",
            n=n + batch,
            seconds=round(time.perf_counter() - start, 4),
        )
        db.flush()

        verified = DeltaTableDatabase(Path(tmp), batch_size=batch)
        start = time.perf_counter()
        version = verified.committed_version(PATH)
        verified.add_records(PATH, make_batch(n + batch + 2, 1, rng), "id", absent_at=version)
        emit(
            benchmark="first_add_verified_new_instance",
            backend="delta",
            n=n + batch + 1,
            seconds=round(time.perf_counter() - start, 4),
            note="ids verified absent at committed_version: no read of the id column",
        )
        verified.flush()

        fresh = DeltaTableDatabase(Path(tmp), batch_size=batch)
        start = time.perf_counter()
        fresh.add_records(PATH, make_batch(n + batch + 1, 1, rng), "id")
        emit(
            benchmark="first_add_new_instance",
            backend="delta",
            n=n + batch + 2,
            seconds=round(time.perf_counter() - start, 4),
        )
        start = time.perf_counter()
        fresh.add_records(PATH, batches[len(batches) // 2], "id", skip_duplicates=True)
        emit(
            benchmark="readd_existing_skip",
            backend="delta",
            n=n + batch + 3,
            batch=batch,
            seconds=round(time.perf_counter() - start, 4),
        )
        fresh.flush()


if __name__ == "__main__":
    main()
