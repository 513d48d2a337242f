"""ObjectLog on object storage (the test run's S3 server on loopback): entries round-trip
through object keys, come back in the order they were stamped, cost one PUT per append and
one LIST per 1,000 entries, refuse texts too long for a key, and concurrent appenders from
threads and processes lose nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.object_log import MAX_KEY_BYTES, LogEntry, ObjectLog, escaped_length
from orcapod.databases.table_files import TableFiles, s3_filesystem
from orcapod.errors import InputValidationError

PATH = ("_claims", "fn", "scope")


def _log(s3_server: Any) -> tuple[DeltaTableDatabase, ObjectLog]:
    db = s3_server.fresh_store()
    log = db.object_log(PATH)
    assert log is not None
    return db, log


def _requests(s3_server: Any, before: dict[str, int]) -> dict[str, int]:
    after = s3_server.counts()
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def test_entries_round_trip_in_stamp_order(s3_server: Any) -> None:
    _, log = _log(s3_server)
    assert log.read() == []  # no log yet: nothing, not an error
    texts = ["plain", "a/b%c~d!e:f;g,h=i@j+k", "spaces and ünïcode ✓", ""]
    for stamp, text in zip([30, 10, 20, 10], texts, strict=True):
        log.append([text], at_us=stamp)
    entries = log.read()
    assert [e.at_us for e in entries] == [10, 10, 20, 30]
    assert sorted(e.text for e in entries[:2]) == sorted(["a/b%c~d!e:f;g,h=i@j+k", ""])
    assert entries[2:] == [LogEntry(20, "spaces and ünïcode ✓"), LogEntry(30, "plain")]


def test_an_append_is_one_put_and_a_read_one_list_per_thousand_entries(s3_server: Any) -> None:
    _, log = _log(s3_server)
    before = s3_server.counts()
    stamp = log.append(["one"])
    assert _requests(s3_server, before) == {"PUT": 1}
    before = s3_server.counts()
    assert log.read() == [LogEntry(stamp, "one")]
    assert _requests(s3_server, before) == {"LIST": 1}
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: log.append([f"e{i}"]), range(1100)))
    before = s3_server.counts()
    assert len(log.read()) == 1101
    assert _requests(s3_server, before) == {"LIST": 2}


def test_a_text_too_long_for_a_key_is_refused_and_one_that_fits_is_kept(
    s3_server: Any,
) -> None:
    _, log = _log(s3_server)
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


def test_views_and_new_instances_share_the_log_of_a_path(s3_server: Any) -> None:
    db, log = _log(s3_server)
    log.append(["from the store"])
    view = db.at("_claims").object_log(("fn", "scope"))
    again = DeltaTableDatabase(db.base_path, storage_options=s3_server.options)
    other = again.object_log(PATH)
    assert view is not None and other is not None
    assert [e.text for e in view.read()] == ["from the store"]
    assert [e.text for e in other.read()] == ["from the store"]
    assert db.object_log(("_claims", "fn", "other")) is not None
    assert db.object_log(("_claims", "fn", "other")).read() == []  # type: ignore[union-attr]


def test_the_log_is_not_a_table_of_the_store(s3_server: Any) -> None:
    db, log = _log(s3_server)
    log.append(["entry"])
    assert db.get_all_records(PATH) is None
    assert db.committed_version(PATH) == -1


def test_concurrent_appenders_in_processes_lose_no_entry(s3_server: Any) -> None:
    """Four processes append 50 entries each at once; every entry is read back."""
    db, _ = _log(s3_server)
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
    argv = [db.base_path, json.dumps(s3_server.options)]
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
