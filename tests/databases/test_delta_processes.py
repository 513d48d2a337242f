"""DeltaTableDatabase with real processes: reopening, concurrent writers, SIGKILL mid-write,
and a clean interpreter exit after writing and reading (all marked slow). Concurrent writers
and SIGKILL run on a local store and on S3 (the test run's server on loopback, where commits
are conditional PUTs); the writer scripts read the storage options from
``ORCAPOD_TEST_STORAGE_OPTIONS`` (JSON)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable

from orcapod.databases import DeltaTableDatabase

pytestmark = pytest.mark.slow

TIMEOUT = 120
OPTIONS_VAR = "ORCAPOD_TEST_STORAGE_OPTIONS"


@dataclass(frozen=True)
class Store:
    """Where the processes of one test write: a local directory or an S3 prefix."""

    base: str
    options: dict[str, str] | None
    #: the names of the files (objects) directly in a table's directory, but its log
    table_files: Callable[[str], set[str]]

    def open(self) -> DeltaTableDatabase:
        return DeltaTableDatabase(self.base, storage_options=self.options)

    def env(self) -> dict[str, str]:
        return {**os.environ, OPTIONS_VAR: json.dumps(self.options)}

    def referenced(self, table_uri: str) -> set[str]:
        """The names of the data files the table's log references."""
        table = DeltaTable(table_uri, storage_options=self.options)
        return {uri.rsplit("/", 1)[-1] for uri in table.file_uris()}


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return Store(str(tmp_path / "db"), None, _table_files)
    server: Any = request.getfixturevalue("s3_server")
    bucket = server.fresh_bucket()

    def objects(table_uri: str) -> set[str]:
        prefix = table_uri.removeprefix(f"s3://{bucket}/") + "/"
        keys = server.keys(bucket, prefix)
        names = {key.removeprefix(prefix) for key in keys}
        return {name for name in names if "/" not in name}

    return Store(f"s3://{bucket}/db", server.options, objects)


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def run(
    path: Path, *args: object, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(path), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=env,
    )


def test_a_new_process_sees_everything_flushed(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "db")
    db.add_records(("a", "b"), _table(["x", "y"]), "id")
    db.flush()
    db.add_records(("a", "b"), _table(["pending-only"]), "id")
    reader = script(
        tmp_path,
        "reader.py",
        """
        import json, sys
        from orcapod.databases import DeltaTableDatabase
        db = DeltaTableDatabase(sys.argv[1])
        table = db.get_all_records(("a", "b"), record_id_column="id")
        print(json.dumps(sorted(table.column("id").to_pylist())))
        """,
    )
    done = run(reader, tmp_path / "db")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["x", "y"]


def _table(ids: list[str]) -> pa.Table:
    return pa.table({"id": ids, "v": list(range(len(ids)))})


WRITER = """
import json, os, sys, time
from pathlib import Path
import pyarrow as pa
import pyarrow.compute as pc
from orcapod.databases import DeltaTableDatabase

base, worker, batches, size, mode, go = sys.argv[1:]
batches, size = int(batches), int(size)
options = json.loads(os.environ.get("ORCAPOD_TEST_STORAGE_OPTIONS") or "null")
db = DeltaTableDatabase(base, batch_size=size, storage_options=options)
# warm up (first write and query in a process pay one-off costs), then meet at the barrier
db.add_records(("warmup", worker), pa.table({"id": ["w"]}), "id")
db.flush()
db.get_records_by_ids(("warmup", worker), ["w"])
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
            known = found["id"].combine_chunks().cast(pa.string())
            table = table.filter(pc.invert(pc.is_in(table["id"], value_set=known)))
        db.add_records(("shared",), table, "id", skip_duplicates=True, absent_at=version)
    else:
        db.add_records(("shared",), table, "id", skip_duplicates=mode == "overlap")
db.flush()
"""


def _race(
    tmp_path: Path, store: Store, writer: Path, mode: str, batches: int, size: int
) -> pa.Table:
    """Start two writer processes at one barrier; return the shared table they produced."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    go = tmp_path / "go"
    args = [store.base, "", str(batches), str(size), mode, str(go)]
    procs = []
    for worker in ("1", "2"):
        args[1] = worker
        procs.append(
            subprocess.Popen(
                [sys.executable, str(writer), *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=store.env(),
            )
        )
    deadline = time.monotonic() + TIMEOUT
    while not all(Path(f"{go}.ready{w}").exists() for w in (1, 2)):
        assert time.monotonic() < deadline, "writers never became ready"
        assert all(proc.poll() is None for proc in procs), "a writer died before the start"
        time.sleep(0.01)
    go.touch()  # both writers are warmed up and waiting: start them together
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
    table = store.open().get_all_records(("shared",), record_id_column="id")
    assert table is not None
    return table


@pytest.mark.parametrize("mode", ["distinct", "overlap", "verified"])
def test_two_processes_appending_at_once_lose_and_duplicate_nothing(
    tmp_path: Path, store: Store, mode: str
) -> None:
    writer = script(tmp_path, "writer.py", WRITER)
    batches, size = 60, 40
    for attempt in range(3):
        run_store = Store(f"{store.base}/run{attempt}", store.options, store.table_files)
        table = _race(tmp_path / f"run{attempt}", run_store, writer, mode, batches, size)
        ids = table.column("id")
        assert pc.count_distinct(ids).as_py() == table.num_rows  # nothing duplicated
        assert table.num_rows == batches * size * (2 if mode == "distinct" else 1)  # nothing lost
        # Evidence that the writers really raced (for "overlap" and "verified": each committed
        # some of the shared ids first; "verified" writes skip the full id index, having
        # checked their ids with a read). A loaded machine can starve one process for the
        # whole run, so that run is repeated; the correctness checks above hold for every run.
        if set(table.column("worker").to_pylist()) == {"1", "2"}:
            return
    pytest.fail("the two writers never overlapped in three runs")


CRASHER = """
import json, os, sys
import pyarrow as pa
from orcapod.databases import DeltaTableDatabase

base, prefix, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
options = json.loads(os.environ.get("ORCAPOD_TEST_STORAGE_OPTIONS") or "null")
db = DeltaTableDatabase(base, batch_size=size, storage_options=options)
payload = "x" * 200
b = 0
while True:
    ids = [f"{prefix}-{b}-{i}" for i in range(size)]
    db.add_records(("crash",), pa.table({"id": ids, "b": [b] * size, "p": [payload] * size}), "id")
    print(b, flush=True)  # batch b is committed (batch_size rows commit at once)
    b += 1
"""


def _table_files(table_dir: str) -> set[str]:
    return {name for name in os.listdir(table_dir) if name != "_delta_log"}


def test_sigkill_mid_write_leaves_every_committed_batch_and_no_partial_one(
    tmp_path: Path, store: Store
) -> None:
    """Kill the writer the moment a new data file appears (the write is under way), until
    one kill has demonstrably landed mid-write (a data file the log never references): every
    acknowledged batch survives, no partial batch appears, and a later process appends."""
    crasher = script(tmp_path, "crasher.py", CRASHER)
    size = 20_000
    table_dir = store.open().table_uri(("crash",))
    killed_mid_write = 0
    for round_no in range(12):
        with subprocess.Popen(
            [sys.executable, str(crasher), store.base, f"r{round_no}", str(size)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=store.env(),
        ) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            last = -1
            while last < 1:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                last = int(line)
            before = store.table_files(table_dir)
            deadline = time.monotonic() + TIMEOUT
            while store.table_files(table_dir) <= before and time.monotonic() < deadline:
                pass
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=TIMEOUT)
            assert proc.returncode == -signal.SIGKILL

        table = store.open().get_all_records(("crash",), record_id_column="id")
        assert table is not None
        assert pc.count_distinct(table.column("id")).as_py() == table.num_rows
        assert table.num_rows % size == 0  # no partial batch
        this_round = pc.sum(pc.starts_with(table.column("id"), f"r{round_no}-")).as_py()
        assert this_round >= (last + 1) * size  # every acknowledged batch is there
        orphans = store.table_files(table_dir) - store.referenced(table_dir)
        orphans = {name for name in orphans if name.endswith(".parquet")}
        killed_mid_write = len(orphans)
        if killed_mid_write:
            break
    # On S3 a data file becomes visible only once complete and the commit follows within two
    # requests, so a kill between them is likely but not certain (it landed in isolated runs);
    # every round's checks above hold either way. Locally the evidence is required.
    if store.options is None:
        assert killed_mid_write, "no kill landed while a data file was being written"

    # a later process can still append
    writer = script(
        tmp_path,
        "after.py",
        """
        import json, os, sys
        import pyarrow as pa
        from orcapod.databases import DeltaTableDatabase
        options = json.loads(os.environ.get("ORCAPOD_TEST_STORAGE_OPTIONS") or "null")
        db = DeltaTableDatabase(sys.argv[1], storage_options=options)
        db.add_records(("crash",), pa.table({"id": ["after"], "b": [-1]}), "id")
        db.flush()
        print(db.get_all_records(("crash",)).num_rows)
        """,
    )
    before = store.open().get_all_records(("crash",))
    assert before is not None
    done = run(writer, store.base, env=store.env())
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == before.num_rows + 1


CLEAN_EXIT = """
import sys
import pyarrow as pa
from orcapod.databases import DeltaTableDatabase

db = DeltaTableDatabase(sys.argv[1], batch_size=50)
for b in range(3):
    ids = [f"{b}-{i}" for i in range(100)]
    db.add_records(("t",), pa.table({"id": ids, "v": list(range(100))}), "id")
db.flush()
assert db.get_all_records(("t",)).num_rows == 300
assert db.get_records_by_ids(("t",), ["0-1", "2-99"]).num_rows == 2
assert db.get_records_with_column_value(("t",), {"v": 7}).num_rows == 3
"""


def test_write_then_read_processes_always_exit_cleanly(tmp_path: Path) -> None:
    path = script(tmp_path, "clean_exit.py", CLEAN_EXIT)

    def one(index: int) -> subprocess.CompletedProcess[str]:
        return run(path, tmp_path / f"db{index}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, range(20)))
    failures = [(r.returncode, r.stderr[-500:]) for r in results if r.returncode != 0]
    assert failures == []
    assert not any("terminate called" in r.stderr for r in results)
