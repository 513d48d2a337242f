"""The SQL record stores (SQLiteDatabase, PostgreSQLDatabase) beside DeltaTableDatabase.

Figures (one JSON object per line), for each store:

* ``append``: N rows (an id, an input hash, an int and a float column) added in batches of 10k
  (each batch duplicate-checked, committed when 10k rows are pending) and flushed; rows/s.
  Goal for PostgreSQL: >= 100k rows/s.
* ``append_verified``: the same, each batch written as a ``FunctionNode`` writes results: as
  ids verified absent (``committed_version`` before, ``add_records(..., absent_at=version)``),
  which skips the check against committed rows when nobody else committed since.
* ``lookup_1000_ids``: ``get_records_by_ids`` of 1,000 stored ids in the N-row table (median
  of 7). Goal: <= 50 ms at 1M rows.
* ``function_node_rerun``: a ``FunctionNode`` over R rows run once, then run again by a new
  node over a newly opened store (everything recorded, nothing computed); us/row of the
  rerun (median of 3). Goal: <= 5 us/row at 100k rows.

PostgreSQL runs on a server this script starts in a temporary directory (initdb + pg_ctl on a
free loopback port; as root it runs as the ``postgres`` user), stopped at the end.

    .venv/bin/python benchmarks/sql_stores.py [--quick] [--rows 1000000] [--node-rows 100000]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, PostgreSQLDatabase, SQLiteDatabase
from orcapod.executors import LocalExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import ArrowTableSource

BATCH = 10_000


@contextmanager
def postgres_server() -> Iterator[Callable[[str], str]]:
    """Start a throwaway server; yields ``uri(database)`` making a fresh database."""
    found = shutil.which("initdb")
    bindir = (
        Path(found).resolve().parent
        if found
        else Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
    )
    root = Path(tempfile.mkdtemp(prefix="orcapod-bench-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = root / "data"

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=120)

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root}"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(root / "log"),
        "-w",
        "-o",
        options,
        "start",
    )

    def uri(name: str) -> str:
        import adbc_driver_postgresql.dbapi as pg

        admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with pg.connect(admin, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
        return f"postgresql://postgres@127.0.0.1:{port}/{name}"

    try:
        yield uri
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def batch(start: int, n: int) -> pa.Table:
    ids = np.char.add("id-", np.arange(start, start + n).astype(str))
    hashes = np.char.add("arrow_v1:", np.arange(start, start + n).astype(str))
    return pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "__input_packet_hash": pa.array(hashes, pa.string()),
            "n": pa.array(np.arange(start, start + n), pa.int64()),
            "x": pa.array(np.random.default_rng(start).random(n)),
        }
    )


def append(
    kind: str, make: Callable[[], ArrowDatabase], rows: int, verified: bool = False
) -> ArrowDatabase:
    db = make()
    tables = [batch(start, min(BATCH, rows - start)) for start in range(0, rows, BATCH)]
    start = time.perf_counter()
    for table in tables:
        version = db.committed_version(("bench",)) if verified else None
        db.add_records(("bench",), table, "id", absent_at=version)
    db.flush()
    seconds = time.perf_counter() - start
    name = "append_verified" if verified else "append"
    figure = {"benchmark": f"sql_stores.{name}", "store": kind, "rows": rows}
    figure |= {"seconds": round(seconds, 3), "rows_per_second": round(rows / seconds)}
    if kind == "postgresql":
        figure["goal_rows_per_second"] = 100_000
    print(json.dumps(figure), flush=True)
    return db


def lookup(kind: str, db: ArrowDatabase, rows: int) -> None:
    rng = np.random.default_rng(7)
    times = []
    for _ in range(7):
        wanted = [f"id-{i}" for i in rng.choice(rows, 1000, replace=False)]
        start = time.perf_counter()
        got = db.get_records_by_ids(("bench",), wanted)
        times.append(time.perf_counter() - start)
        assert got is not None and got.num_rows == 1000
    figure = {"benchmark": "sql_stores.lookup_1000_ids", "store": kind, "rows": rows}
    figure |= {"ms": round(statistics.median(times) * 1e3, 2), "goal_ms": 50}
    print(json.dumps(figure), flush=True)


def increment(x: int) -> int:
    return x + 1


def node_rerun(kind: str, make: Callable[[], ArrowDatabase], rows: int) -> None:
    table = pa.table({"id": np.arange(rows, dtype=np.int64), "x": np.arange(rows, dtype=np.int64)})

    def node(db: ArrowDatabase) -> FunctionNode:
        src = ArrowTableSource(table, tag_columns=["id"], source_id="bench", record_id_column="id")
        built = FunctionNode(FunctionPod(PythonPacketFunction(increment, "y")), src, db)
        built.executor = LocalExecutor()
        return built

    start = time.perf_counter()
    first = node(make()).run()
    first_seconds = time.perf_counter() - start
    assert first.computed == rows
    times = []
    for _ in range(3):
        start = time.perf_counter()
        summary = node(make()).run()
        times.append(time.perf_counter() - start)
        assert summary.computed == 0 and summary.reused == rows
    seconds = statistics.median(times)
    figure = {"benchmark": "sql_stores.function_node_rerun", "store": kind, "rows": rows}
    figure |= {
        "first_run_seconds": round(first_seconds, 3),
        "rerun_seconds": round(seconds, 4),
        "rerun_us_per_row": round(seconds / rows * 1e6, 3),
        "goal_us_per_row": 5,
    }
    print(json.dumps(figure), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k rows, 2k-row node")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--node-rows", type=int, default=100_000)
    parser.add_argument("--stores", default="delta,sqlite,postgresql")
    args = parser.parse_args()
    rows, node_rows = (20_000, 2_000) if args.quick else (args.rows, args.node_rows)
    with tempfile.TemporaryDirectory(prefix="orcapod-bench-sql-") as tmp, postgres_server() as pg:
        counter = iter(range(1_000))
        makers: dict[str, Callable[[str], Callable[[], ArrowDatabase]]] = {
            "delta": lambda tag: lambda: DeltaTableDatabase(Path(tmp, tag)),
            "sqlite": lambda tag: lambda: SQLiteDatabase(Path(tmp, f"{tag}.sqlite")),
        }
        pg_uris: dict[str, str] = {}

        def pg_maker(tag: str) -> Callable[[], ArrowDatabase]:
            if tag not in pg_uris:
                pg_uris[tag] = pg(f"bench_{next(counter)}")
            return lambda: PostgreSQLDatabase(pg_uris[tag])

        makers["postgresql"] = pg_maker
        for kind in args.stores.split(","):
            db = append(kind, makers[kind]("append"), rows)
            lookup(kind, db, rows)
            del db
            append(kind, makers[kind]("verified"), rows, verified=True)
            node_rerun(kind, makers[kind]("node"), node_rows)


if __name__ == "__main__":
    main()
