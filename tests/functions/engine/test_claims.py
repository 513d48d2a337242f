"""Work claims: one holder per bucket, expired claims taken over, and processes running one
function node on a shared store sharing its rows (each row computed once, none left over, a
SIGKILLed process's rows finished by the others).

The claim rules run on every persistent store kind (Delta, locally and on object storage,
SQLite, PostgreSQL): they need only that a read after a commit sees every earlier commit, from
any process. Object storage is the test run's S3 API server on loopback (``s3_server``, moto)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, PostgreSQLDatabase, SQLiteDatabase
from orcapod.errors import InputValidationError
from orcapod.functions.engine.claim_logs import ClaimRow, ObjectClaimLog, TableClaimLog
from orcapod.functions.engine.claims import ClaimBook, beating, bucket_index
from orcapod.functions.engine.holders import this_process
from orcapod.functions.engine.sharing import share_work
from orcapod.types import WorkClaims

PATH = ("claims", "f")
_BUCKETS = itertools.count()


@pytest.fixture
def s3(s3_server: Any) -> dict[str, str]:
    """The storage options of the test run's S3 API server (``tests/conftest.py``)."""
    return dict(s3_server.options)


def fresh_s3_base(options: dict[str, str]) -> str:
    """``s3://<a new bucket>/store``."""
    import boto3

    name = f"orcapod-claims-{next(_BUCKETS)}"
    boto3.client(
        "s3",
        endpoint_url=options["AWS_ENDPOINT_URL"],
        aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"],
        region_name=options["AWS_REGION"],
    ).create_bucket(Bucket=name)
    return f"s3://{name}/store"


@pytest.fixture(params=["delta", "delta_s3", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], ArrowDatabase]:
    """A new connection to one shared persistent store per call (as another process has)."""
    if request.param == "delta":
        return lambda: DeltaTableDatabase(tmp_path / "delta")
    if request.param == "delta_s3":
        options = request.getfixturevalue("s3")
        base = fresh_s3_base(options)
        return lambda: DeltaTableDatabase(base, storage_options=options)
    if request.param == "sqlite":
        return lambda: SQLiteDatabase(tmp_path / "claims.sqlite")
    uri = request.getfixturevalue("postgresql_server").fresh_uri()
    return lambda: PostgreSQLDatabase(uri)


def book(store: Callable[[], ArrowDatabase], owner: str, lease: float = 30.0) -> ClaimBook:
    return ClaimBook(store(), PATH, lease, owner=owner)


def test_a_live_claim_holds_the_bucket(store: Callable[[], ArrowDatabase]) -> None:
    a, b = book(store, "a"), book(store, "b")
    assert a.claim(["3"]) == ["3"]
    assert b.claim(["3", "4"]) == ["4"]  # a holds "3": b's claim on it is released
    done, holder = b.status(b.rows(["3"])["3"])
    assert (done, holder) == (None, {"a"})
    a.finish(["3"])
    assert b.status(b.rows(["3"])["3"])[0] == "done"
    assert b.claim(["3"]) == []  # finished buckets are not claimed again


def test_a_claim_marks_the_previous_batch_done_in_the_same_commit(
    store: Callable[[], ArrowDatabase],
) -> None:
    a, b = book(store, "a"), book(store, "b")
    assert a.claim(["1", "2"]) == ["1", "2"]
    assert a.claim(["5"], finished=["1", "2"]) == ["5"]
    rows = b.rows(["1", "2", "5"])
    assert b.status(rows["1"])[0] and b.status(rows["2"])[0]
    assert b.status(rows["5"]) == (None, {"a"})


def test_an_expired_claim_is_taken_over(store: Callable[[], ArrowDatabase]) -> None:
    dead = book(store, "dead", lease=2.0)
    assert dead.claim(["7"]) == ["7"]
    alive = book(store, "alive")
    assert alive.claim(["7"]) == []
    time.sleep(2.1)
    assert alive.claim(["7"]) == ["7"]  # the holder never renewed: its claim expired


def test_a_claim_of_a_process_gone_from_this_machine_is_taken_over_at_once(
    store: Callable[[], ArrowDatabase],
) -> None:
    machine = this_process().split("/")[0]
    gone = ClaimBook(store(), PATH, 600.0, owner="gone", process=f"{machine}/{2**22 + 7}/1")
    remote = ClaimBook(store(), PATH, 600.0, owner="remote", process="other-machine/1/1")
    assert gone.claim(["1"]) == ["1"] and remote.claim(["2"]) == ["2"]
    alive = book(store, "alive")
    # the lease has long to run, but the holder of "1" is surely dead; that of "2" may live
    assert alive.claim(["1", "2"]) == ["1"]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from orcapod.databases import DeltaTableDatabase
    from orcapod.functions.engine.claims import ClaimBook

    book = ClaimBook(DeltaTableDatabase(sys.argv[1]), ("claims", "f"), 600.0, owner="victim")
    print(" ".join(book.claim(["7", "8"])), flush=True)
    time.sleep(300)
    """
)


def test_a_sigkilled_holder_loses_its_claims_at_once(tmp_path: Path) -> None:
    """A real process holds two buckets (600 s lease) and is SIGKILLed: another process on
    the machine takes them over at once, not a lease later."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "delta")], stdout=subprocess.PIPE, text=True
    ) as victim:
        assert victim.stdout is not None
        try:
            assert victim.stdout.readline().split() == ["7", "8"]
            mine = ClaimBook(DeltaTableDatabase(tmp_path / "delta"), PATH, 600.0, owner="mine")
            assert mine.claim(["7"]) == []  # alive: its claims hold
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            assert mine.claim(["7", "8"]) == ["7", "8"]
        finally:
            victim.kill()


def test_shared_tells_whether_others_hold_live_claims(store: Callable[[], ArrowDatabase]) -> None:
    a, b = book(store, "a"), book(store, "b")
    assert not b.shared()  # no claims table yet
    assert a.claim(["1", "2"]) == ["1", "2"]
    assert b.shared() and not a.shared()  # a's own claims do not count for a
    a.finish(["1"])
    assert b.shared()
    a.release(["2"])
    assert not b.shared()


def test_renewal_keeps_a_claim_alive(store: Callable[[], ArrowDatabase]) -> None:
    holder = book(store, "holder", lease=2.0)
    assert holder.claim(["1", "2"]) == ["1", "2"]
    for _ in range(3):
        time.sleep(0.8)
        holder.renew(["1", "2"])
    assert book(store, "other").claim(["1", "2"]) == []


def test_share_work_computes_every_item_once_and_waits_for_others(
    store: Callable[[], ArrowDatabase],
) -> None:
    other = book(store, "other")
    assert other.claim(["b", "c"]) == ["b", "c"]
    other.release(["c"])  # it stored item 5 of "c" and let go of the bucket
    mine = book(store, "mine")
    computed: list[int] = []
    stored = {5}

    def compute(items: np.ndarray, heartbeat: object) -> None:
        computed.extend(items.tolist())
        stored.update(items.tolist())
        if 6 in items:  # the other process finishes bucket "b" meanwhile
            stored.update([3, 4])
            other.finish(["b"])

    def still_missing(items: np.ndarray) -> np.ndarray:
        return items[~np.isin(items, list(stored))]

    buckets = {"a": np.array([0, 1, 2]), "b": np.array([3, 4]), "c": np.array([5, 6])}
    share_work(mine, buckets, compute, still_missing, poll_seconds=0.01)
    assert sorted(computed) == [0, 1, 2, 6]


def test_share_work_starts_with_the_buckets_held(store: Callable[[], ArrowDatabase]) -> None:
    """Buckets claimed before sharing began (the buckets of a run's timed first calls) are the
    first batch: computed before anything else is claimed, and not claimed a second time."""
    mine = book(store, "mine")
    assert mine.claim(["5"]) == ["5"]
    batches: list[list[int]] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        batches.append(sorted(items.tolist()))

    buckets = {f"{i:x}": np.array([i]) for i in range(8)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01, held=["5"])
    assert batches[0] == [5]
    assert sorted(x for batch in batches for x in batch) == list(range(8))
    rows = book(store, "other").rows(None)
    assert all(book(store, "other").status(bucket_rows)[0] for bucket_rows in rows.values())
    assert [state for _, state, _, _, _ in rows["5"]].count("claimed") == 1


def test_waiting_for_the_others_last_buckets_costs_one_look_up(
    store: Callable[[], ArrowDatabase],
) -> None:
    """With nothing left to claim and the others' remaining work short, a process looks the
    results of the buckets done elsewhere up once, when every bucket is done: not once while
    it waits and again at the end (each look-up reads what the others committed since)."""
    other = book(store, "other")
    assert other.claim(["b", "c"]) == ["b", "c"]
    other.finish(["b"])  # done before this process waits
    mine = book(store, "mine")
    looked: list[list[int]] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        return None

    def still_missing(items: np.ndarray) -> np.ndarray:
        looked.append(sorted(items.tolist()))
        return items[:0]

    with ThreadPoolExecutor(1) as pool:
        later = pool.submit(lambda: (time.sleep(0.3), other.finish(["c"])))
        buckets = {"a": np.array([0]), "b": np.array([1]), "c": np.array([2])}
        share_work(mine, buckets, compute, still_missing, poll_seconds=0.05)
        later.result()
    assert looked == [[1, 2]]


def test_share_work_looks_results_up_with_each_claim(store: Callable[[], ArrowDatabase]) -> None:
    """With ``look_up``, the results of each claimed batch's buckets that another process held
    before are looked up as they are claimed (ahead of their compute, off the calling thread)
    and ``still_missing`` gets that answer; the buckets nobody else held are not looked up."""
    other = book(store, "other")
    assert other.claim(["2", "4"]) == ["2", "4"]
    other.release(["2", "4"])  # it stored items 5 and 9 and let go
    mine = book(store, "mine")
    stored = {5, 9}
    looked: list[int] = []
    computed: list[int] = []

    def look_up(items: np.ndarray) -> set[int]:
        looked.extend(items.tolist())
        return stored.intersection(items.tolist())

    def still_missing(items: np.ndarray, found: set[int]) -> np.ndarray:
        assert found == stored.intersection(items.tolist())  # the answer for these items
        return items[~np.isin(items, list(found))]

    def compute(items: np.ndarray, heartbeat: object) -> None:
        computed.extend(items.tolist())

    buckets = {f"{i:x}": np.array([2 * i, 2 * i + 1]) for i in range(8)}
    share_work(mine, buckets, compute, still_missing, poll_seconds=0.01, look_up=look_up)
    assert sorted(looked) == [4, 5, 8, 9]
    assert sorted(computed) == sorted(set(range(16)) - stored)


def test_a_bucket_that_failed_in_an_earlier_run_is_open_again_and_a_done_one_stays_done(
    store: Callable[[], ArrowDatabase],
) -> None:
    """A bucket finished with failed rows is marked ``failed``, not ``done``. For a book whose
    first read of the claims came after that mark (a later run), the bucket is open again and
    is claimed afresh; one marked ``failed`` after that read is finished (in this run); a
    ``done`` bucket is finished for every run."""
    earlier = book(store, "earlier")
    earlier.failing.add("1")
    assert earlier.claim(["1", "2"]) == ["1", "2"]
    earlier.finish(["1", "2"])
    rows = earlier.rows(None)
    assert [r[1] for r in rows["1"]] == ["claimed", "failed"]
    assert [r[1] for r in rows["2"]] == ["claimed", "done"]
    now, other = book(store, "now"), book(store, "other")
    other.rows(None)  # other's run begins too
    assert now.claim(["1", "2"]) == ["1"]  # failed in an earlier run: open; done: finished
    rows = now.rows(None)
    assert now.status(rows["1"]) == (None, {"now"})
    now.release(["1"])
    other.failing.add("1")
    assert other.claim(["1"]) == ["1"]
    other.finish(["1"])  # it failed again, in this run
    rows = now.rows(None)
    assert now.status(rows["1"]) == ("failed", set())
    assert book(store, "later").claim(["1", "2"]) == ["1"]  # a later run's book


def test_share_work_does_not_retry_the_rows_another_process_saw_fail_in_this_run(
    store: Callable[[], ArrowDatabase],
) -> None:
    """Items still missing in a bucket another process marked ``failed`` in this run go to
    ``failed_elsewhere``, not computed again; those missing in a bucket done without failures
    are computed here. A bucket whose items failed here is marked ``failed`` (``failed``)."""
    other, mine = book(store, "other"), book(store, "mine")
    mine.rows(None)  # this process's run begins
    assert other.claim(["b", "c"]) == ["b", "c"]
    other.failing.add("b")
    other.finish(["b", "c"])  # item 3 failed there; item 5 was not stored for this process
    stored = {2, 4}
    computed: list[int] = []
    reported: list[int] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        computed.extend(items.tolist())
        stored.update(x for x in items.tolist() if x != 1)  # item 1 fails here

    buckets = {"a": np.array([0, 1]), "b": np.array([2, 3]), "c": np.array([4, 5])}
    share_work(
        mine,
        buckets,
        compute,
        lambda items: items[~np.isin(items, list(stored))],
        poll_seconds=0.01,
        failed=lambda bucket: bucket == "a" and 1 not in stored,
        failed_elsewhere=lambda items: reported.extend(items.tolist()),
    )
    assert sorted(computed) == [0, 1, 5] and reported == [3]
    rows = book(store, "reader").rows(None)
    assert [r[1] for r in rows["a"] if r[0] == "mine"][-1] == "failed"


def test_share_work_claims_bounded_batches(store: Callable[[], ArrowDatabase]) -> None:
    """Alone, a process claims a sixteenth of the work at first (before a claim's cost is
    known), never more than four sixteenths, and every bucket ends up done."""
    mine = book(store, "mine")
    batches: list[int] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        batches.append(len(items))

    buckets = {f"{i:02x}": np.array([2 * i, 2 * i + 1]) for i in range(64)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01)
    assert sum(batches) == 128 and batches[0] == 8 and max(batches) <= 32
    rows = mine.rows(list(buckets))
    assert all(mine.status(rows[b])[0] for b in buckets)


class SlowBook(ClaimBook):
    """Claims on a store that answers slowly (as object storage does)."""

    def rows(self, buckets: Sequence[str] | None) -> dict[str, list[ClaimRow]]:
        time.sleep(0.05)
        return super().rows(buckets)


def test_share_work_claims_more_per_pass_when_claims_cost_more(tmp_path: Path) -> None:
    """When a claim pass costs much more than computing an item, a batch grows to twice the
    items the pass costs (at most four sixteenths of the work): few passes, every bucket
    done."""
    mine = SlowBook(DeltaTableDatabase(tmp_path / "delta"), PATH, 30.0, owner="mine")
    batches: list[int] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        time.sleep(0.001 * len(items))
        batches.append(len(items))

    buckets = {f"{i:02x}": np.array([2 * i, 2 * i + 1]) for i in range(64)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01)
    assert sum(batches) == 128 and batches[0] <= 8
    assert max(batches[1:]) > 8 and max(batches) <= 32
    rows = mine.rows(list(buckets))
    assert all(mine.status(rows[b])[0] for b in buckets)


class CollidingBook(ClaimBook):
    """Claims whose second claim (the one made ahead, while the first batch computes) meets
    a rival's claim of the same buckets, committed at the same moment."""

    rival: ClaimBook | None = None
    claims = 0
    contested: Sequence[str] = ()

    def claim(self, buckets: Sequence[str], *args: object, **kwargs: object) -> list[str]:
        self.claims += 1
        if self.claims != 2:
            return super().claim(buckets, *args, **kwargs)  # type: ignore[arg-type]
        assert self.rival is not None
        self.rival.claim(buckets, release_lost=False)  # (it sees only its own claim)
        kept = super().claim(buckets, *args, **kwargs)  # type: ignore[arg-type]
        self.contested = list(buckets)
        return kept


def test_a_claim_made_ahead_that_loses_every_bucket_lets_them_go_at_once(
    tmp_path: Path,
) -> None:
    """Two processes claiming the same buckets at once may both lose them. A claim made
    ahead (while a batch computes) that lost every bucket lets them go at once, so the other
    process holds them alone before this process's batch ends; every bucket ends up done."""
    mine = CollidingBook(DeltaTableDatabase(tmp_path / "delta"), PATH, 30.0, owner="mine")
    rival = book(lambda: DeltaTableDatabase(tmp_path / "delta"), "rival")
    mine.rival = rival
    rival_alone: list[bool] = []

    def compute(items: np.ndarray, heartbeat: Callable[[], None]) -> None:
        if rival_alone:
            return
        heartbeat()  # (starts the claim of the next batch)
        until = time.monotonic() + 10
        alone = False
        while not alone and time.monotonic() < until:
            time.sleep(0.01)
            if mine.contested:
                rows = rival.rows(mine.contested)
                alone = all(rival.status(rows[b])[1] == {"rival"} for b in mine.contested)
        rival_alone.append(alone)
        rival.finish(mine.contested)

    buckets = {f"{i:x}": np.array([i]) for i in range(16)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01, flush=_no_op)
    assert rival_alone == [True]
    rows = mine.rows(list(buckets))
    assert all(mine.status(rows[b])[0] for b in buckets)


def test_share_work_commits_results_when_it_must_not_per_batch(
    store: Callable[[], ArrowDatabase],
) -> None:
    """With ``flush``, results are committed before waiting and at the end (or every half
    lease), not per batch, and a bucket is marked done only after a commit of its results."""
    mine = book(store, "mine")
    batches: list[int] = []
    flushed_at: list[dt.datetime] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        batches.append(len(items))

    def flush() -> None:
        flushed_at.append(dt.datetime.now(dt.UTC))

    buckets = {f"{i:x}": np.array([2 * i, 2 * i + 1]) for i in range(16)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01, flush=flush)
    assert len(batches) > 1 and len(flushed_at) == 1
    rows = mine.rows(list(buckets))
    for bucket in buckets:
        assert mine.status(rows[bucket])[0]
        assert all(at >= flushed_at[0] for _, state, at, _, _ in rows[bucket] if state == "done")


def test_an_error_releases_the_buckets_held(store: Callable[[], ArrowDatabase]) -> None:
    """A run stopped by an error lets go of its buckets (the one it was computing, those
    computed but not committed, and the next batch claimed ahead): others take them at once."""
    mine = book(store, "mine")
    calls: list[int] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        calls.append(len(items))
        if len(calls) == 2:
            raise RuntimeError("boom")

    buckets = {f"{i:x}": np.array([i]) for i in range(16)}
    with pytest.raises(RuntimeError, match="boom"):
        share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01, flush=_no_op)
    other = book(store, "other")
    assert other.claim(sorted(buckets)) == sorted(buckets)  # nothing held, nothing done
    # ... and so does one stopped in the buckets it held when it began (its timed calls')
    other.release(sorted(buckets))

    def fail(items: np.ndarray, heartbeat: object) -> None:
        raise RuntimeError("boom")

    assert mine.claim(["5"]) == ["5"]
    with pytest.raises(RuntimeError, match="boom"):
        share_work(mine, buckets, fail, lambda items: items, poll_seconds=0.01, held=["5"])
    assert other.claim(sorted(buckets)) == sorted(buckets)


def _no_op() -> None:
    return None


def test_heartbeats_keep_the_buckets_of_a_long_compute(store: Callable[[], ArrowDatabase]) -> None:
    """A batch that computes for several leases keeps its buckets: the heartbeats between its
    items renew them (in the claims thread), so another process never takes them over."""
    mine = book(store, "mine", lease=1.5)
    other = book(store, "other", lease=1.5)
    stolen: list[str] = []

    def compute(items: np.ndarray, heartbeat: Callable[[], None]) -> None:
        until = time.monotonic() + 3.2
        while time.monotonic() < until:
            heartbeat()
            time.sleep(0.02)
        stolen.extend(other.claim(["0"]))

    share_work(mine, {"0": np.array([0])}, compute, lambda items: items, poll_seconds=0.01)
    assert stolen == []
    assert mine.status(mine.rows(["0"])["0"])[0]  # and it was finished


def _holders_meanwhile(
    store: Callable[[], ArrowDatabase], bucket: str, after: float
) -> tuple[ThreadPoolExecutor, Future[set[str]]]:
    """Ask another process's book, ``after`` seconds from now, who holds ``bucket``."""
    pool = ThreadPoolExecutor(1)

    def holders() -> set[str]:
        time.sleep(after)
        other = book(store, "other")
        return other.status(other.rows([bucket]).get(bucket, []))[1]

    return pool, pool.submit(holders)


def test_a_call_longer_than_the_lease_keeps_its_bucket(store: Callable[[], ArrowDatabase]) -> None:
    """One call runs for more than two leases without a beat between calls: a watcher renews
    the bucket meanwhile, so no other process takes it over."""
    lease = 1.5
    mine = book(store, "mine", lease=lease)
    pool, seen = _holders_meanwhile(store, "a", 2 * lease)

    def compute(items: np.ndarray, heartbeat: object) -> None:
        time.sleep(2.5 * lease)  # one long call

    with pool:
        share_work(mine, {"a": np.array([0])}, compute, lambda items: items, poll_seconds=0.05)
        assert seen.result() == {"mine"}


def test_keeping_renews_claims_held_outside_share_work(
    store: Callable[[], ArrowDatabase],
) -> None:
    """``ClaimBook.keeping`` (around a run's timed first calls) renews the buckets while the
    block runs longer than the lease, and stops when it ends."""
    lease = 1.5
    mine = book(store, "mine", lease=lease)
    assert mine.claim(["a"]) == ["a"]
    pool, seen = _holders_meanwhile(store, "a", 2 * lease)
    with pool:
        with mine.keeping(["a"]):
            time.sleep(2.5 * lease)
        assert seen.result() == {"mine"}
    mine.release(["a"])
    time.sleep(lease / 2)  # (a renewal landing after the release would hold it again)
    other = book(store, "other")
    assert other.status(other.rows(["a"])["a"])[1] == set()


def test_a_failed_beat_stops_the_beats_and_is_raised_when_the_block_ends() -> None:
    beats: list[float] = []

    def beat() -> None:
        beats.append(time.monotonic())
        if len(beats) == 2:
            raise OSError("the claims log is gone")

    with pytest.raises(OSError, match="the claims log is gone"), beating(beat, 0.05, "t"):
        time.sleep(0.5)
    assert len(beats) == 2  # none after the failure
    with beating(beat, 0.05, "t"):  # a block shorter than a beat: none
        pass
    assert len(beats) == 2
    # a block that raised keeps its own error, which names the beat's
    beats.clear()
    with pytest.raises(ValueError, match="the call failed") as raised, beating(beat, 0.05, "t"):
        time.sleep(0.5)
        raise ValueError("the call failed")
    assert "the claims log is gone" in "".join(raised.value.__notes__)


def test_buckets_depend_only_on_the_input_size() -> None:
    hashes = pa.array(["arrow_row_v1:a07", "arrow_row_v1:3f1", "arrow_row_v1:a92"])
    names, which = bucket_index(hashes, 16)
    assert (names, which.tolist()) == (["3", "a"], [1, 0, 1])
    assert bucket_index(hashes, 17)[0] == ["3f", "a0", "a9"]
    assert bucket_index(hashes, 5000)[0] == ["3f1", "a07", "a92"]


def test_bucket_index_places_every_hash_in_its_sorted_bucket() -> None:
    """The vectorised index agrees with the buckets read one hash at a time, chunked or not."""
    rng = np.random.default_rng(7)
    digits = rng.integers(0, 16, size=(3000, 5))
    hashes = ["arrow_row_v1:" + "".join(f"{d:x}" for d in row) for row in digits]
    for n in (16, 17, 5000):
        width = 1 if n <= 16 else 2 if n <= 4096 else 3
        heads = [h[13 : 13 + width] for h in hashes]
        for given in (pa.array(hashes), pa.chunked_array([hashes[:1000], hashes[1000:]])):
            names, which = bucket_index(given, n)
            assert names == sorted(set(heads))
            assert [names[i] for i in which] == heads


def test_work_claims_reject_nonsense() -> None:
    for bad in ({"lease_seconds": 0}, {"poll_seconds": -1}, {"min_work_seconds": "5"}):
        with pytest.raises(InputValidationError, match="WorkClaims"):
            WorkClaims(**bad)  # type: ignore[arg-type]


# -- processes sharing one node --------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from orcapod.databases import DeltaTableDatabase, SQLiteDatabase
    from orcapod.functions import FunctionPod, PythonPacketFunction
    from orcapod.types import WorkClaims
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource

    # log is a str: a Path constant would be hashed by its (changing) content
    store, log, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    kind, barrier, together = sys.argv[4], Path(sys.argv[5]), int(sys.argv[6])
    chunk_rows, lease = int(sys.argv[7]), float(sys.argv[8])

    def slow(x: int) -> int:
        time.sleep(0.03)
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()} {x}\\n")
        return 2 * x

    rows = [{"id": i, "x": i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"], source_id="src", record_id_column="id")
    pod = FunctionPod(PythonPacketFunction(slow, "y"))
    if kind == "delta":
        db = DeltaTableDatabase(store)
    elif kind == "delta_s3":
        options = json.loads(os.environ["CLAIMS_S3_OPTIONS"])
        db = DeltaTableDatabase(os.environ["CLAIMS_S3_BASE"], storage_options=options)
    else:
        db = SQLiteDatabase(store / "db.sqlite")
    node = FunctionNode(pod, source, db)
    if chunk_rows:
        node.chunk_rows = chunk_rows
    node.work_claims = WorkClaims(lease_seconds=lease, min_work_seconds=0, poll_seconds=0.05)
    # processes started together begin together (start-up takes seconds on a busy machine)
    (barrier / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(barrier.iterdir())) < together and time.monotonic() < deadline:
        time.sleep(0.02)
    summary = node.run()
    print(summary.computed, summary.reused, summary.failed)
    """
)


def _start(
    tmp_path: Path,
    n: int,
    kind: str = "delta",
    together: int = 1,
    chunk_rows: int = 0,
    lease: float = 20.0,
    s3: tuple[str, dict[str, str]] | None = None,
) -> subprocess.Popen[str]:
    """A worker process; ``together``: the workers started now begin running the node at
    the same time (each waits for that many to be ready); ``chunk_rows``: the node's chunk
    size (0: the default); ``lease``: its claims' lease (long, so that a worker starved of
    CPU on a busy machine does not lose its claims and duplicate work, unless a test is
    about a dead holder); ``s3``: (base URI, storage options) of the store for kind
    ``delta_s3``."""
    script = tmp_path / "worker.py"
    if not script.exists():  # (rewriting it could truncate it under a worker still starting)
        staged = tmp_path / "worker.py.tmp"
        staged.write_text(WORKER)
        staged.replace(script)
    (tmp_path / "store").mkdir(exist_ok=True)
    barriers = tmp_path / "barriers"
    barriers.mkdir(exist_ok=True)
    barrier = barriers / str(together) if together > 1 else barriers / f"alone-{time.time_ns()}"
    barrier.mkdir(exist_ok=True)
    store, log = str(tmp_path / "store"), str(tmp_path / "calls.log")
    return subprocess.Popen(
        [
            *(sys.executable, str(script), store, log, str(n), kind),
            *(str(barrier), str(together), str(chunk_rows), str(lease)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ
        if s3 is None
        else {**os.environ, "CLAIMS_S3_BASE": s3[0], "CLAIMS_S3_OPTIONS": json.dumps(s3[1])},
    )


def _calls(tmp_path: Path) -> list[tuple[int, int]]:
    """(pid, x) of every finished call (a killed process may leave a partial last line)."""
    lines = [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]
    return [(int(line[0]), int(line[1])) for line in lines if len(line) == 2]


def _stored(tmp_path: Path, n: int) -> None:
    """Every row has exactly one result and one pipeline record."""
    logs = list((tmp_path / "store").rglob("_delta_log"))
    areas = ("_claims", "_identity")
    results = [
        p.parent for p in logs if "_result" in p.parts and not any(a in p.parts for a in areas)
    ]
    records = [p.parent for p in logs if "_result" not in p.parts and "_failures" not in p.parts]
    assert len(results) == 1 and len(records) == 1
    stored = DeltaTable(str(results[0])).to_pyarrow_table()
    assert sorted(stored.column("y").to_pylist()) == [2 * i for i in range(n)]
    recorded = DeltaTable(str(records[0])).to_pyarrow_table()
    assert sorted(recorded.column("id").to_pylist()) == list(range(n))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["delta", "delta_s3", "sqlite"])
def test_processes_share_a_node_and_compute_each_row_once(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    n = 96
    s3 = None
    if kind == "delta_s3":
        options = request.getfixturevalue("s3")
        s3 = (fresh_s3_base(options), options)
    workers = [_start(tmp_path, n, kind, together=3, s3=s3) for _ in range(3)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    calls = _calls(tmp_path)
    xs = [x for _, x in calls]
    assert sorted(set(xs)) == list(range(n))  # nothing left uncomputed
    # each row once: the timed first calls too (made under a claim of their buckets)
    assert len(xs) == n
    assert len({pid for pid, _ in calls}) >= 2  # the work was shared
    assert all(out.split() for out, _ in outputs), outputs
    assert sum(int(out.split()[0]) for out, _ in outputs) == n
    # every row has its result stored: one more process finds them all
    again = _start(tmp_path, n, kind, s3=s3)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.split()[:3] == ["0", str(n), "0"]  # computed, reused, failed
    if kind == "delta":
        _stored(tmp_path, n)


@pytest.mark.slow
def test_a_killed_process_rows_are_finished_by_the_others(tmp_path: Path) -> None:
    n = 96
    victim = _start(tmp_path, n, lease=1.5)
    time.sleep(1.0)  # the victim has claimed a bucket and is computing it
    others = [_start(tmp_path, n, together=2, lease=1.5) for _ in range(2)]
    time.sleep(0.5)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    outputs = [w.communicate(timeout=300) for w in others]
    assert all(w.returncode == 0 for w in others), [err for _, err in outputs]
    xs = [x for _, x in _calls(tmp_path)]
    assert sorted(set(xs)) == list(range(n))  # the victim's bucket was taken over
    _stored(tmp_path, n)


def _kill_a_holder(
    tmp_path: Path,
    victim: subprocess.Popen[str],
    others: list[subprocess.Popen[str]],
    n: int,
) -> None:
    """SIGKILL ``victim`` once it holds claims and the others share the work; the others
    then finish every row."""
    _wait_for_calls(tmp_path, {victim.pid: 3, others[0].pid: 1, others[1].pid: 1}, victim)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate()
    outputs = [w.communicate(timeout=240) for w in others]
    assert all(w.returncode == 0 for w in others), [err for _, err in outputs]
    xs = [x for _, x in _calls(tmp_path)]
    assert sorted(set(xs)) == list(range(n))


def _wait_for_calls(tmp_path: Path, wanted: dict[int, int], victim: subprocess.Popen[str]) -> None:
    """Until each process ``pid`` of ``wanted`` has made ``wanted[pid]`` calls (while
    ``victim`` runs)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None:
        log = tmp_path / "calls.log"
        made = Counter(pid for pid, _ in _calls(tmp_path)) if log.exists() else Counter()
        if all(made[pid] >= count for pid, count in wanted.items()):
            return
        time.sleep(0.01)
    raise AssertionError(f"the workers did not make {wanted} calls while the victim ran")


@pytest.mark.slow
def test_a_sigkilled_process_rows_are_taken_over_without_waiting_for_its_lease(
    tmp_path: Path,
) -> None:
    """Leases of 600 s: the survivors would wait that long for a dead holder's buckets if they
    could not see on this machine that its process is gone."""
    n = 160
    victim, *others = (_start(tmp_path, n, together=3, lease=600.0) for _ in range(3))
    # the victim holds claims (it made calls past its two timed ones); all share the work
    _kill_a_holder(tmp_path, victim, others, n)
    _stored(tmp_path, n)


@pytest.mark.slow
def test_on_object_storage_a_sigkilled_process_rows_are_taken_over(
    tmp_path: Path, s3: dict[str, str]
) -> None:
    """The same on S3 (leases of 600 s): the survivors finish the dead holder's rows at once,
    and one more process finds every result stored."""
    n = 120
    store = (fresh_s3_base(s3), s3)
    victim, *others = (
        _start(tmp_path, n, "delta_s3", together=3, lease=600.0, s3=store) for _ in range(3)
    )
    _kill_a_holder(tmp_path, victim, others, n)
    again = _start(tmp_path, n, "delta_s3", s3=store)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert out.split()[:3] == ["0", str(n), "0"]  # computed, reused, failed


@pytest.mark.slow
def test_a_run_over_new_rows_shares_them_afresh(tmp_path: Path) -> None:
    """The claims of a finished run do not stand in the way of the next run over more rows:
    its new rows are shared again, each computed once."""
    first = _start(tmp_path, 48)
    assert first.communicate(timeout=300) and first.returncode == 0
    n = 144
    workers = [_start(tmp_path, n, together=2) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    calls = _calls(tmp_path)
    new = [x for _, x in calls if x >= 48]
    assert sorted(set(new)) == list(range(48, n))
    assert len(new) == n - 48  # each once
    assert len({pid for pid, x in calls if x >= 48}) == 2  # both processes took part
    _stored(tmp_path, n)


def test_share_work_batches_keep_the_executor_busy(tmp_path: Path) -> None:
    """A batch holds at least ``min_batch`` items (the calls the executor runs at once), so a
    concurrent executor is never fed one short bucket at a time."""
    mine = ClaimBook(DeltaTableDatabase(tmp_path / "delta"), PATH, 30.0, owner="mine")
    batches: list[int] = []

    def compute(items: np.ndarray, heartbeat: object) -> None:
        batches.append(len(items))

    buckets = {f"{i:x}": np.array([i]) for i in range(16)}
    share_work(mine, buckets, compute, lambda items: items, poll_seconds=0.01, min_batch=4)
    assert batches == [4, 4, 4, 4]


@pytest.mark.slow
def test_a_chunked_run_shares_every_chunk(tmp_path: Path) -> None:
    """Each chunk of a run over a large input is shared afresh: its buckets are not taken for
    the previous chunk's finished ones."""
    n = 120
    workers = [_start(tmp_path, n, together=2, chunk_rows=60) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    calls = _calls(tmp_path)
    xs = [x for _, x in calls]
    assert sorted(set(xs)) == list(range(n))
    assert len(xs) == n  # each once, in every chunk
    for chunk in (range(0, 60), range(60, n)):  # both processes took part in each chunk
        assert len({pid for pid, x in calls if x in chunk}) == 2
    _stored(tmp_path, n)


# ---------------------------------------------------------------- where claims are kept


def test_the_store_chooses_where_claims_are_kept(store: Callable[[], ArrowDatabase]) -> None:
    """A Delta store (local or on object storage) keeps claims in an object log; the SQL
    stores in a table."""
    db = store()
    log = ClaimBook(db.at("_claims"), PATH, 30.0).log
    is_delta = isinstance(db, DeltaTableDatabase)
    assert isinstance(log, ObjectClaimLog if is_delta else TableClaimLog)


def test_the_claim_log_keeps_every_row_in_order(store: Callable[[], ArrowDatabase]) -> None:
    """Rows read back as written (owner, state, times, process), oldest first per bucket;
    separators and odd characters in names survive."""
    mine = book(store, "host:1:ab!c,d;e/f%g")
    mine.process = "machine/12/345"
    assert mine.claim(["1", "2"]) == ["1", "2"]
    mine.renew(["1"], finished=["2"], released=["x,y!z"])
    rows = book(store, "other").rows(None)
    assert sorted(rows) == ["1", "2", "x,y!z"]
    assert [r[1] for r in rows["1"]] == ["claimed", "renewed"]
    assert [r[1] for r in rows["2"]] == ["claimed", "done"]
    owner, state, at, expires, process = rows["x,y!z"][0]
    assert (owner, state, process) == ("host:1:ab!c,d;e/f%g", "released", "machine/12/345")
    assert expires - at == dt.timedelta(seconds=30)
    assert rows["1"][0][2] < rows["1"][1][2] <= dt.datetime.now(dt.UTC)


def test_a_claim_of_every_bucket_is_kept_whole(store: Callable[[], ArrowDatabase]) -> None:
    """4,096 buckets in one claim (on object storage: more than one object key holds)."""
    buckets = [f"{i:03x}" for i in range(4096)]
    mine = book(store, "m" * 200)
    assert mine.claim(buckets[:2048], finished=buckets[2048:]) == buckets[:2048]
    rows = book(store, "other").rows(None)
    assert sorted(rows) == buckets
    assert {rows[b][-1][1] for b in buckets[:2048]} == {"claimed"}
    assert {rows[b][-1][1] for b in buckets[2048:]} == {"done"}
    if isinstance(mine.log, ObjectClaimLog) and mine.log.log.max_length < 2048:
        assert len(mine.log.log.read()) > 10  # (object keys: split over many entries)


def test_claims_from_concurrent_threads_lose_no_row(store: Callable[[], ArrowDatabase]) -> None:
    """Eight books claim at once: every row lands, and a contested bucket has one holder."""
    books = [book(store, f"t{i}") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        kept = list(pool.map(lambda b: b.claim([b.owner, "contested"]), books))
    assert all(b.owner in got for b, got in zip(books, kept, strict=True))
    assert sum("contested" in got for got in kept) <= 1
    rows = book(store, "reader").rows(None)
    assert sorted(rows) == sorted([*(b.owner for b in books), "contested"])
    assert all(len(rows[b.owner]) == 1 for b in books)
    # each claim on the contested bucket, and a release for every claim that lost it
    assert len(rows["contested"]) == 16 - sum("contested" in got for got in kept)


def test_on_object_storage_a_claim_is_one_put_and_one_list(s3: dict[str, str]) -> None:
    """A claim appends its rows (one PUT) and reads every claim again (one LIST); a Delta
    table would cost a commit and a read of its log, checkpoint and data files."""
    db = DeltaTableDatabase(fresh_s3_base(s3), storage_options=s3)
    mine = ClaimBook(db.at("_claims"), PATH, 30.0, owner="mine")
    assert mine.claim(["0"]) == ["0"]

    def counts() -> Counter[str]:
        url = f"{s3['AWS_ENDPOINT_URL']}/_counts"
        with urllib.request.urlopen(url, timeout=10) as response:
            return Counter(json.loads(response.read()))

    before = counts()
    assert mine.claim(["1", "2"], finished=["0"]) == ["1", "2"]
    assert counts() - before == Counter({"PUT": 1, "LIST": 1})
