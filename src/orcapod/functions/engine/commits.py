"""Commits of a run's buffered results, counted, and made in a thread of their own while the
calls go on (``CommitThread``).

A writer (``write.RunWriter``) hands its buffered rows over as one *batch* in the calling
thread (cheap: its lists change hands) and commits the batch, either right there (``flush``)
or in a committing thread (``flush_soon``, while ``committing_in_background`` is on), so the
calls go on while a slow store (object storage, several processes committing to one table)
commits. The rules:

* Commits are numbered: ``taken`` counts the batches handed over, ``landed`` those whose
  results are committed (in the same order; the records pointing at them follow, in the same
  commit or, from the committing thread, within ``write.RECORDS_SECONDS``). Every row
  buffered before batch ``n + 1`` was taken has its result stored once ``landed > n``: a
  caller that must not act before some results are stored (``sharing``: a bucket is marked
  done only once the commit holding its results has landed) notes ``taken`` when the rows
  are buffered and waits for ``landed`` to pass it (``flush_results`` waits).
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

``RunWriter`` keeps these rules (its ``flush_soon``, ``flush_results`` and
``committing_in_background`` run its commits in a ``CommitThread``); ``SyncCommits`` gives
the same counts for a plain flush callable, whose commits land before it returns.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from orcapod.errors import FlushError, PacketFunctionError

__all__ = ["BEAT_SECONDS", "CommitThread", "Commits", "SyncCommits", "Unstorable"]

T = TypeVar("T")
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
