"""SQLiteDatabase and PostgreSQLDatabase with real processes: a new process sees what was
flushed, two concurrent writers lose and duplicate nothing, SIGKILL mid-write loses no
committed batch and leaves no partial one, and a pipeline rerun in a new process reuses
everything (all marked slow)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from orcapod.databases import ArrowDatabase, PostgreSQLDatabase, SQLiteDatabase

pytestmark = pytest.mark.slow

TIMEOUT = 120

OPEN = """
import sys
from orcapod.databases import PostgreSQLDatabase, SQLiteDatabase

def open_store(kind, target, **options):
    if kind == "sqlite":
        return SQLiteDatabase(target, **options)
    return PostgreSQLDatabase(target, **options)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(kind, target): a SQLite file or the URI of a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "store.sqlite")
    return "postgresql", request.getfixturevalue("postgresql_server").fresh_uri()


def open_store(kind: str, target: str, **options: int) -> ArrowDatabase:
    if kind == "sqlite":
        return SQLiteDatabase(target, **options)
    return PostgreSQLDatabase(target, **options)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(OPEN + textwrap.dedent(body))
    return path


def run(path: Path, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_a_new_process_sees_everything_flushed(tmp_path: Path, store: tuple[str, str]) -> None:
    db = open_store(*store)
    db.add_records(("a", "b"), pa.table({"id": ["x", "y"], "v": [1, 2]}), "id")
    db.flush()
    db.add_records(("a", "b"), pa.table({"id": ["pending-only"], "v": [3]}), "id")
    reader = script(
        tmp_path,
        "reader.py",
        """
        import json
        db = open_store(sys.argv[1], sys.argv[2])
        table = db.get_all_records(("a", "b"), record_id_column="id")
        print(json.dumps(sorted(table.column("id").to_pylist())))
        """,
    )
    done = run(reader, *store)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["x", "y"]


WRITER = """
import time
from pathlib import Path
import pyarrow as pa
import pyarrow.compute as pc

kind, target, worker, batches, size, mode, go = sys.argv[1:]
batches, size = int(batches), int(size)
db = open_store(kind, target, batch_size=size)
db.add_records(("warmup", worker), pa.table({"id": ["w"]}), "id", flush=True)
Path(go + f".ready{worker}").touch()
while not Path(go).exists():
    time.sleep(0.001)
# the writers walk the batches in opposite orders so they meet (and race) in the middle
for b in range(batches) if worker == "1" else reversed(range(batches)):
    if mode == "distinct":
        ids = [f"w{worker}-{b}-{i}" for i in range(size)]
    else:
        ids = [f"id-{b}-{i}" for i in range(size)]
    table = pa.table({"id": ids, "worker": [worker] * size, "b": [b] * size})
    if mode == "verified":  # as a FunctionNode writes: only ids a read just did not find
        version = db.committed_version(("shared",))
        found = db.get_records_by_ids(("shared",), ids, record_id_column="id")
        if found is not None:
            known = found["id"].combine_chunks()
            table = table.filter(pc.invert(pc.is_in(table["id"], value_set=known)))
        db.add_records(("shared",), table, "id", skip_duplicates=True, absent_at=version)
    else:
        db.add_records(("shared",), table, "id", skip_duplicates=mode == "overlap")
db.flush()
"""


def _race(tmp_path: Path, writer: Path, store: tuple[str, str], mode: str) -> pa.Table:
    tmp_path.mkdir(parents=True, exist_ok=True)
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(writer), *store, worker, "40", "25", mode, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in ("1", "2")
    ]
    deadline = time.monotonic() + TIMEOUT
    while not all(Path(f"{go}.ready{w}").exists() for w in (1, 2)):
        assert time.monotonic() < deadline, "writers never became ready"
        ended = [proc for proc in procs if proc.poll() is not None]
        assert not ended, f"a writer ended before it was ready: {ended[0].communicate()}"
        time.sleep(0.01)
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
    table = open_store(*store).get_all_records(("shared",), record_id_column="id")
    assert table is not None
    return table


@pytest.mark.parametrize("mode", ["distinct", "overlap", "verified"])
def test_two_processes_writing_at_once_lose_and_duplicate_nothing(
    tmp_path: Path, store: tuple[str, str], mode: str, request: pytest.FixtureRequest
) -> None:
    writer = script(tmp_path, "writer.py", WRITER)
    for attempt in range(3):
        if store[0] == "sqlite":
            store = ("sqlite", str(tmp_path / f"store{attempt}.sqlite"))
        table = _race(tmp_path / f"run{attempt}", writer, store, mode)
        ids = table.column("id")
        assert pc.count_distinct(ids).as_py() == table.num_rows  # nothing duplicated
        assert table.num_rows == 40 * 25 * (2 if mode == "distinct" else 1)  # nothing lost
        if set(table.column("worker").to_pylist()) == {"1", "2"}:
            return  # the writers really raced (each committed some of the rows first)
        if store[0] == "postgresql":
            store = ("postgresql", request.getfixturevalue("postgresql_server").fresh_uri())
    pytest.fail("the two writers never overlapped in three runs")


def test_a_strict_duplicate_committed_by_another_process_fails_the_flush_naming_it(
    store: tuple[str, str],
) -> None:
    mine, theirs = open_store(*store), open_store(*store)
    mine.add_records(("p",), pa.table({"id": ["a", "b"], "v": [1, 2]}), "id")
    theirs.add_records(("p",), pa.table({"id": ["b"], "v": [20]}), "id", flush=True)
    with pytest.raises(Exception, match=r"\['b'\]") as info:
        mine.flush()
    assert type(info.value).__name__ == "DuplicateRecordError"
    got = mine.get_all_records(("p",), record_id_column="id")
    assert got is not None
    assert sorted(got.to_pylist(), key=lambda r: r["id"]) == [
        {"id": "a", "v": 1},
        {"id": "b", "v": 20},
    ]


CRASHER = """
import pyarrow as pa
kind, target, prefix, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
db = open_store(kind, target, batch_size=size)
payload = "x" * 200
b = 0
while True:
    ids = [f"{prefix}-{b}-{i}" for i in range(size)]
    db.add_records(("crash",), pa.table({"id": ids, "b": [b] * size, "p": [payload] * size}), "id")
    print(b, flush=True)  # batch b is committed (batch_size rows commit at once)
    b += 1
"""


def _writing(store: tuple[str, str]) -> bool:
    """Whether a writer is inside a write transaction right now."""
    kind, target = store
    if kind == "sqlite":
        import adbc_driver_sqlite.dbapi as sqlite_dbapi

        with sqlite_dbapi.connect(target, autocommit=True) as conn, conn.cursor() as cur:
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite_dbapi.Error:
                return True  # the database's write lock is held
            cur.execute("ROLLBACK")
            return False
    import adbc_driver_postgresql.dbapi as pg_dbapi

    with pg_dbapi.connect(target, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND xact_start IS NOT NULL AND query NOT LIKE '%pg_stat_activity%'"
        )
        return bool(cur.fetchone()[0])


def test_sigkill_mid_write_keeps_every_committed_batch_and_no_partial_one(
    tmp_path: Path, store: tuple[str, str]
) -> None:
    crasher = script(tmp_path, "crasher.py", CRASHER)
    size, mid_write = 5_000, 0
    for round_no in range(6):
        with subprocess.Popen(
            [sys.executable, str(crasher), *store, f"r{round_no}", str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            last = -1
            while last < 1:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                last = int(line)
            deadline = time.monotonic() + 20
            while not _writing(store) and time.monotonic() < deadline:
                pass
            caught = _writing(store)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
            rest = proc.stdout.read().split()
        last = max([last, *map(int, rest)])
        mid_write += caught
        table = open_store(*store).get_all_records(("crash",), record_id_column="id")
        assert table is not None
        assert pc.count_distinct(table.column("id")).as_py() == table.num_rows
        assert table.num_rows % size == 0  # no partial batch
        this_round = pc.sum(pc.starts_with(table.column("id"), f"r{round_no}-")).as_py()
        assert this_round >= (last + 1) * size  # every acknowledged batch is there
        if mid_write >= 2:
            break
    assert mid_write, "no kill landed while a batch was being written"
    db = open_store(*store)  # a later writer can still append
    before = db.get_all_records(("crash",))
    assert before is not None
    db.add_records(("crash",), pa.table({"id": ["after"], "b": [-1]}), "id", flush=True)
    after = db.get_all_records(("crash",))
    assert after is not None and after.num_rows == before.num_rows + 1


PIPELINE = """
import json
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline
from orcapod.sources import DictSource

calls = []

@function_pod("doubled")
def double(x: int) -> int:
    calls.append(x)
    return 2 * x

source = DictSource([{"k": i, "x": i} for i in range(20)], tag_columns=["k"], source_id="s")
pipeline = Pipeline("study", open_store(sys.argv[1], sys.argv[2]))
with pipeline:
    double.pod(source)
summary = pipeline.run()
table = pipeline.double.as_table()
print(json.dumps({"computed": summary.computed, "reused": summary.reused, "calls": len(calls),
                  "sum": sum(table.column("doubled").to_pylist())}))
"""


def test_a_pipeline_rerun_in_a_new_process_reuses_every_result(
    tmp_path: Path, store: tuple[str, str]
) -> None:
    path = script(tmp_path, "pipeline.py", PIPELINE)
    first, second = run(path, *store), run(path, *store)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert (one["computed"], one["calls"]) == (20, 20)
    assert (two["computed"], two["reused"], two["calls"]) == (0, 20, 0)
    assert one["sum"] == two["sum"] == 2 * sum(range(20))
