"""``StreamingWriter``: the commit cadence of a streaming function node run.

A streaming run commits as soon as it can - a row is passed downstream only once stored - but
a commit has a fixed cost (a few table commits), so a busy run that committed after every row
would spend its time committing. The cadence: rows are due for a commit once the previous
commit ended at least ``gap`` times its own duration ago (so commits take at most about
``1 / (1 + gap)`` of a busy run's time), and always once the node's ``FlushPolicy`` says so
(``rows``, ``bytes``, or the oldest row waiting ``seconds``). The first rows of a run are due
at once. ``COMMIT_GAP`` is the gap of a writer in a thread of its own (beside slow calls: rows
are passed on promptly) and of any writer while its node waits for input;
``INLINE_COMMIT_GAP`` that of a writer run inline by the node's loop while it calls (a
commit then holds up the calls, which are cheap: commits are few and large, as in a
synchronous run).

The writer also asks ``before_commit`` for the versions its rows were verified absent at, and
calls ``after_commit`` after every commit (the node passes the committed rows on then), and
when it finds nothing buffered (``maybe_flush``: rows that needed no commit are passed on too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from orcapod.functions.engine.write import RunWriter

__all__ = ["COMMIT_GAP", "INLINE_COMMIT_GAP", "StreamingWriter"]

#: the gap of a writer in a thread, and of any writer while its node waits for input
COMMIT_GAP = 1.0
#: the gap of a writer run inline by its node's loop while the loop calls
INLINE_COMMIT_GAP = 16.0


class StreamingWriter(RunWriter):
    """A ``RunWriter`` that commits as soon as the cadence allows (module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: a commit waits until the previous one ended this many times its duration ago
        self.gap = COMMIT_GAP
        self.before_commit: Callable[[], None] | None = None
        self.after_commit: Callable[[], None] | None = None
        self._commit_seconds = 0.0
        self._last_end = float("-inf")

    def due_in(self, gap: float | None = None) -> float | None:
        """Seconds until the buffered rows are due for a commit (None: nothing buffered);
        ``gap``: instead of ``self.gap``."""
        if not self._rows:
            return None
        if self._rows >= self._flush_rows or self._bytes >= self._flush_bytes:
            return 0.0
        now = time.monotonic()
        return max(
            0.0,
            min(
                self._oldest + self._flush_seconds - now,
                self._last_end + (self.gap if gap is None else gap) * self._commit_seconds - now,
            ),
        )

    def maybe_flush(self) -> None:
        """Commit when the buffered rows are due. With nothing buffered, every row handed so
        far is stored (or was before the run): ``after_commit`` passes the settled ones on
        all the same, else a chunk that needed no commit (its rows found stored and
        recorded) would wait for one, and so would a chunk prepared behind it."""
        due = self.due_in()
        if due == 0.0:
            self.flush()
        elif due is None and self.after_commit is not None:
            self.after_commit()

    def flush(self) -> None:
        busy = self._rows > 0
        start = time.monotonic()
        if busy and self.before_commit is not None:
            self.before_commit()
        super().flush()
        if self.after_commit is not None:
            self.after_commit()
        if busy:  # the commit and passing its rows on
            self._last_end = time.monotonic()
            self._commit_seconds = self._last_end - start
