"""Commits of a run's buffered results, counted, and made in a thread of their own while the
calls go on (``CommitThread``).

A writer (``write.RunWriter``) hands its buffered rows over as one *batch* in the calling
thread (cheap: its lists change hands) and commits the batch, either right there (``flush``)
or in a committing thread (``flush_soon``, while ``committing_in_background`` is on), so the
calls go on while a slow store (object storage, several processes committing to one table)
commits. The rules:

* Commits are numbered: ``taken`` counts the batches handed over, ``landed`` those whose
  results are committed (in the same order; the records pointing at them follow in the same
  commit). Every row buffered before batch ``n + 1`` was taken has its result stored once
  ``landed > n``: a caller that must not act before some results are stored (``sharing``: a
  bucket is marked done only once the commit holding its results has landed) notes ``taken``
  when the rows are buffered and waits for ``landed`` to pass it (``flush_results`` waits).
* At most one commit is in flight. A flush asked for meanwhile waits in the buffer and starts
  once that commit has ended, at the writer's next row or flush (the rows buffered until
  then join it); but ``flush_results`` (a caller waiting for its results) hands its rows over
  to the commit in flight while that commit still stores results: their results are stored
  next, and the records of both follow together.
* A failed commit is raised in the calling thread at the next flush or row, as a
  ``FlushError`` chained to the original error; ``landed`` does not move unless its results
  were stored before the failure (in its records), so nothing else of it counts as stored.
  Leaving ``committing_in_background`` waits for the commit in flight (and raises its
  error, or notes it on an error already on its way).

A process killed at any point loses at most its uncommitted rows: a commit is the store's
own (results, then the records pointing at them), whichever thread runs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

from orcapod.errors import FlushError, PacketFunctionError

__all__ = ["BEAT_SECONDS", "CommitThread", "Commits", "CommitsInBackground", "SyncCommits"]

T = TypeVar("T")
B = TypeVar("B")
#: the rows of a commit whose outputs could not be stored, with their errors
Unstorable = dict[int, PacketFunctionError]
#: a caller waiting for a commit (``flush_results``) is called back at least this often
BEAT_SECONDS = 0.05


class Commits(Protocol):
    """What ``sharing.share_work`` needs of the commits of a run's results (module docstring)."""

    #: batches of buffered rows taken to be committed so far
    taken: int
    #: of them, those whose results are committed (in order)
    landed: int

    def flush(self) -> None:
        """Commit every buffered row and wait until it has landed (with the one in flight)."""
        ...

    def flush_soon(self) -> None:
        """Commit every buffered row, in the committing thread where there is one."""
        ...

    def flush_results(self, beat: Callable[[], None] | None = None) -> None:
        """Commit every buffered row; return once their results have landed (the records
        pointing at them may still be committing in the committing thread), calling
        ``beat()`` every ``BEAT_SECONDS`` while it waits."""
        ...


class SyncCommits:
    """``Commits`` of a plain ``flush`` callable: every commit lands before it returns."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self.taken = self.landed = 0

    def flush(self) -> None:
        self.taken += 1
        self._flush()
        self.landed = self.taken

    def flush_soon(self) -> None:
        self.flush()

    def flush_results(self, beat: Callable[[], None] | None = None) -> None:
        self.flush()


class CommitThread(Generic[T]):
    """One commit at a time in a thread of its own (module docstring). ``start`` runs a
    commit there (none may be in flight: ``busy``); ``collect`` gives its outcome."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="orcapod-commit")
        self._running: Future[T] | None = None

    def busy(self) -> bool:
        """Is a commit in flight?"""
        return self._running is not None and not self._running.done()

    def start(self, commit: Callable[[], T]) -> None:
        assert self._running is None, "collect the last commit before starting the next"
        self._running = self._pool.submit(commit)

    def collect(self, wait: bool) -> tuple[bool, T | None]:
        """``(True, what the commit returned)`` once the last commit has ended (waiting for
        it with ``wait``), ``(False, None)`` while it is in flight or when there is none; a
        failed commit raises ``FlushError`` from its error."""
        running = self._running
        if running is None or (not wait and not running.done()):
            return False, None
        self._running = None
        try:
            return True, running.result()
        except Exception as err:
            raise FlushError(
                f"committing the run's results in the background failed: "
                f"{type(err).__name__}: {err}. The rows of that commit whose results were not "
                "stored are not marked done, so the next run (or another process sharing the "
                "work) computes them again; fix the cause (the error this one is chained to) "
                "and run again."
            ) from err

    def close(self, error: BaseException | None) -> None:
        """Wait for the commit in flight and stop the thread. Without ``error`` (an error
        already on its way, which gets a note instead), raises what the commit raised."""
        try:
            if error is None:
                self.collect(wait=True)
            elif self._running is not None:
                try:
                    self.collect(wait=True)
                except FlushError as failed:
                    error.add_note(f"also: {failed}")
        finally:
            self._pool.shutdown(wait=True)


class CommitsInBackground(Generic[B]):
    """``Commits`` made in a committing thread within ``committing_in_background`` (module
    docstring), for a writer that gives ``_buffered`` (are rows buffered?), ``_take`` (hand
    the buffered rows over as one batch, counted in ``taken``; None when nothing is
    buffered, counted as landed at once), ``_commit`` (commit a batch, in any thread,
    calling ``_results_landed`` once its results are stored, and storing the results of the
    batch it returns, if any, before the records; ``background``: in the committing thread;
    returns the rows whose outputs could not be stored), ``_fail_unstorable`` (hand those
    on, in the calling thread) and ``flush``."""

    def _init_commits(self) -> None:
        self.taken = self.landed = 0
        self._thread: CommitThread[Unstorable] | None = None
        self._wanted = False  # a flush was asked for while a commit was in flight
        self._landing = threading.Condition()
        #: a batch may join the commit in flight (its results not all landed yet), and the
        #: batch handed over to join it (``flush_results``)
        self._joinable = False
        self._joining: B | None = None

    def _buffered(self) -> bool:
        raise NotImplementedError

    def _take(self) -> B | None:
        raise NotImplementedError

    def _commit(self, batch: B, background: bool = False) -> Unstorable:
        raise NotImplementedError

    def _fail_unstorable(self, unstorable: Mapping[int, PacketFunctionError]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError

    def _results_landed(self) -> B | None:  # (in the thread that commits)
        """Count a batch's results as landed; the batch handed over meanwhile to join this
        commit (its results are stored next, before the records of both), if any."""
        with self._landing:
            self.landed += 1
            self._landing.notify_all()
            joining, self._joining = self._joining, None
            self._joinable = joining is not None
            return joining

    @contextmanager
    def committing_in_background(self) -> Iterator[None]:
        """Within it, ``flush_soon`` (and the flush policy's commits) run in a committing
        thread while the caller goes on; ``flush`` still commits everything before it
        returns. Leaving it waits for the commit in flight."""
        thread: CommitThread[Unstorable] = CommitThread()
        self._thread = thread
        try:
            yield
        except BaseException as err:
            self._thread = None
            thread.close(err)
            raise
        self._thread = None
        _, unstorable = thread.collect(wait=True)
        thread.close(None)
        if unstorable:
            self._fail_unstorable(unstorable)

    def flush_soon(self) -> None:
        """Commit every buffered row: in the committing thread within
        ``committing_in_background`` (after the commit in flight: at the next row or flush
        once it has landed), else at once (``flush``)."""
        if self._thread is None:
            self.flush()
        else:
            self._wanted = True
            self._start(wait=False)

    def _start(self, wait: bool) -> None:
        """Start committing the buffered rows in the committing thread once the commit in
        flight has ended (``wait``: wait for it; else start only if there is none), handing
        on what the last one could not store."""
        thread = self._thread
        assert thread is not None
        if thread.busy() and not wait:
            return
        _, unstorable = thread.collect(wait=True)
        self._wanted = False
        batch = self._take()
        if batch is not None:
            with self._landing:
                self._joinable = True
            thread.start(lambda: self._commit(batch, background=True))
        if unstorable:
            self._fail_unstorable(unstorable)

    def flush_results(self, beat: Callable[[], None] | None = None) -> None:
        """Commit every buffered row; return once their results have landed (within
        ``committing_in_background``, the records pointing at them may still be committing),
        calling ``beat()`` every ``BEAT_SECONDS`` while it waits (e.g. to renew claims)."""
        thread = self._thread
        if thread is None:
            self.flush()
            return
        if self._buffered():
            with self._landing:  # join the commit in flight while its results are stored
                joined = self._joinable and thread.busy()
                if joined:
                    self._joining, self._wanted = self._take(), False
            if not joined:  # else after it
                self._wait(thread, lambda: not thread.busy(), beat)
                self._start(wait=True)
        self._wait(thread, lambda: self.landed >= self.taken, beat)
        if self.landed < self.taken:  # the commit ended before its results landed: it failed
            with self._landing:
                self._joining = None  # (lost with it: nothing of it is marked done)
            thread.collect(wait=True)

    def _wait(
        self,
        thread: CommitThread[Unstorable],
        done: Callable[[], bool],
        beat: Callable[[], None] | None,
    ) -> None:
        """Until ``done()`` or the commit in flight has ended, beating meanwhile."""
        while not done() and thread.busy():
            with self._landing:
                self._landing.wait_for(done, timeout=BEAT_SECONDS)
            if beat is not None:
                beat()
