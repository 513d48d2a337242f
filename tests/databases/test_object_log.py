"""ObjectLog on local disk and on object storage (the test run's S3 server on loopback):
entries round-trip, come back in the order they were stamped, and concurrent appenders from
threads and processes lose nothing. On object storage entries are object keys: an append is
one PUT, a read one LIST per 1,000 entries, and a text too long for a key is refused. On local
disk entries are files: any length fits, and files that are not entries are ignored."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.object_log import MAX_KEY_BYTES, LogEntry, ObjectLog, escaped_length
from orcapod.databases.object_stores import s3_filesystem
from orcapod.databases.table_files import TableFiles
from orcapod.errors import InputValidationError

PATH = ("_claims", "fn", "scope")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> functools.partial[DeltaTableDatabase]:
    """A new connection to one new Delta store per call, on local disk or on the S3 server."""
    if request.param == "local":
        return functools.partial(DeltaTableDatabase, str(tmp_path / "store"), storage_options={})
    server = request.getfixturevalue("s3_server")
    base = f"s3://{server.fresh_bucket()}/store"
    return functools.partial(DeltaTableDatabase, base, storage_options=server.options)


def _log(db: DeltaTableDatabase) -> tuple[DeltaTableDatabase, ObjectLog]:
    log = db.object_log(PATH)
    assert log is not None
    return db, log


def test_entries_round_trip_in_stamp_order(store: Callable[[], DeltaTableDatabase]) -> None:
    _, log = _log(store())
    assert log.read() == []  # no log yet: nothing, not an error
    texts = ["plain", "a/b%c~d!e:f;g,h=i@j+k", "spaces and ünïcode ✓", ""]
    for stamp, text in zip([30, 10, 20, 10], texts, strict=True):
        log.append([text], at_us=stamp)
    entries = log.read()
    assert [e.at_us for e in entries] == [10, 10, 20, 30]
    assert sorted(e.text for e in entries[:2]) == sorted(["a/b%c~d!e:f;g,h=i@j+k", ""])
    assert entries[2:] == [LogEntry(20, "spaces and ünïcode ✓"), LogEntry(30, "plain")]


def test_an_append_is_one_put_and_a_read_one_list_per_thousand_entries(s3_server: Any) -> None:
    _, log = _log(s3_server.fresh_store())
    before = s3_server.counts()
    stamp = log.append(["one"])
    assert s3_server.since(before) == {"PUT": 1}
    before = s3_server.counts()
    assert log.read() == [LogEntry(stamp, "one")]
    assert s3_server.since(before) == {"LIST": 1}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.append([f"e{i}"]), range(1100)))
    before = s3_server.counts()
    assert len(log.read()) == 1101
    assert s3_server.since(before) == {"LIST": 2}


def test_a_text_too_long_for_a_key_is_refused_and_one_that_fits_is_kept(
    s3_server: Any,
) -> None:
    _, log = _log(s3_server.fresh_store())
    assert log.max_length < MAX_KEY_BYTES - len("store/_claims/fn/scope")
    fits = "x" * log.max_length
    log.append([fits])
    assert [e.text for e in log.read()] == [fits]
    with pytest.raises(InputValidationError, match="split it"):
        log.append(["x" * (log.max_length + 1)])
    with pytest.raises(InputValidationError, match="split it"):  # escaped, "/" takes three
        log.append(["/" * (log.max_length // 3 + 1)])
    assert escaped_length("/" * 10) == 30
    assert len(log.read()) == 1


def test_views_and_new_instances_share_the_log_of_a_path(
    store: Callable[[], DeltaTableDatabase],
) -> None:
    db, log = _log(store())
    log.append(["from the store"])
    view = db.at("_claims").object_log(("fn", "scope"))
    other = store().object_log(PATH)
    assert view is not None and other is not None
    assert [e.text for e in view.read()] == ["from the store"]
    assert [e.text for e in other.read()] == ["from the store"]
    log.append(["later"])  # an entry appended after a read shows in the next read
    assert [e.text for e in other.read()] == ["from the store", "later"]
    assert db.object_log(("_claims", "fn", "other")) is not None
    assert db.object_log(("_claims", "fn", "other")).read() == []  # type: ignore[union-attr]


def test_the_log_is_not_a_table_of_the_store(store: Callable[[], DeltaTableDatabase]) -> None:
    db, log = _log(store())
    log.append(["entry"])
    assert db.get_all_records(PATH) is None
    assert db.committed_version(PATH) == -1


def test_concurrent_appenders_in_processes_lose_no_entry(
    store: functools.partial[DeltaTableDatabase],
) -> None:
    """Four processes append 50 entries each at once; every entry is read back."""
    db, _ = _log(store())
    script = textwrap.dedent(
        """
        import json, sys
        from orcapod.databases import DeltaTableDatabase
        base, options, me = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
        log = DeltaTableDatabase(base, storage_options=options).object_log(
            ("_claims", "fn", "scope")
        )
        for i in range(50):
            log.append([f"{me}-{i}"])
        """
    )
    argv = [db.base_path, json.dumps(store.keywords["storage_options"])]
    procs = [
        subprocess.Popen([sys.executable, "-c", script, *argv, str(p)], stderr=subprocess.PIPE)
        for p in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
    log = db.object_log(PATH)
    assert log is not None
    texts = [e.text for e in log.read()]
    assert sorted(texts) == sorted(f"{p}-{i}" for p in range(4) for i in range(50))


def test_a_store_prefix_too_deep_for_object_keys_is_refused(s3_server: Any) -> None:
    filesystem = s3_filesystem(s3_server.options)
    with pytest.raises(InputValidationError, match="shorter"):
        files = TableFiles.for_table("s3://bucket/" + "d" * 1000, filesystem)
        assert files is not None
        ObjectLog(files, "_entries")


def test_on_local_disk_an_entry_of_any_length_fits(tmp_path: Path) -> None:
    """File names hold 255 bytes; an entry is a file's content, so long texts (longer than
    any file name, with separators and non-ASCII characters) round-trip whole."""
    _, log = _log(DeltaTableDatabase(tmp_path / "store"))
    long = "/~%ü" * 5000
    log.append([long], at_us=5)
    log.append(["short"], at_us=6)
    assert log.read() == [LogEntry(5, long), LogEntry(6, "short")]
    again = DeltaTableDatabase(tmp_path / "store").object_log(PATH)
    assert again is not None and again.read() == [LogEntry(5, long), LogEntry(6, "short")]


def test_on_local_disk_files_that_are_not_entries_are_ignored(tmp_path: Path) -> None:
    """A half-written entry (its temporary file) and files others put in the directory are
    not entries."""
    _, log = _log(DeltaTableDatabase(tmp_path / "store"))
    stamp = log.append(["kept"])
    directory = next((tmp_path / "store").rglob("_entries"))
    (directory / "00000000000000001-0123abcd.0f0f0f.tmp").write_text("half")
    (directory / "notes.txt").write_text("not an entry")
    assert log.read() == [LogEntry(stamp, "kept")]
    again = DeltaTableDatabase(tmp_path / "store").object_log(PATH)
    assert again is not None and again.read() == [LogEntry(stamp, "kept")]
