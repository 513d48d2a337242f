"""``ObjectLog``: an append-only log of short text entries on object storage, one empty object
per entry, whose key holds the entry.

A store on object storage hands one out for a path (``ArrowDatabase.object_log``) where a
table would cost too many requests: a Delta table costs a log entry, a listing and reads of
checkpoints and data files per commit and per read. Here

* an append is ONE request: a PUT of an empty object named
  ``<directory>/<time in µs, 17 digits>-<8 random hex digits>~<escaped text>``;
* a read of every entry is ONE LIST per 1,000 entries: the keys are the entries, so no object
  is read. Listings of S3 are strongly consistent (read-after-write, and a LIST after a PUT
  returned shows it), so a read sees every append that finished before it, from any process.

Entries come back ordered by their time (the appender's clock), then by the random part.
The text is any string; it is escaped into the key (``%XX`` for every character outside
letters, digits and ``-_.~:;,=@+!``), and the whole key must fit object storage's limit of
1,024 bytes: ``max_length`` is the room left for the escaped text under this log's directory
(``escaped_length`` measures a text), and a longer text raises ``InputValidationError``.
Callers that write long records split them over several appends.

Nothing is ever deleted: the number of objects grows with the appends, so a log suits small
bounded records (such as the work claims of one function over one input) and a read costs
one LIST per 1,000 of them.
"""

from __future__ import annotations

import time
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError, InputValidationError

__all__ = ["MAX_KEY_BYTES", "LogEntry", "ObjectLog", "escaped_length"]

#: the longest object key object storage accepts (S3: 1,024 bytes of UTF-8)
MAX_KEY_BYTES = 1024
#: characters kept as they are in a key (besides letters, digits and ``-_.~``)
_SAFE = ":;,=@+!"
_STAMP_DIGITS = 17
#: ``<time>-<random>~``
_HEAD = _STAMP_DIGITS + 1 + 8 + 1


@dataclass(frozen=True)
class LogEntry:
    """One appended text, with the time (µs since the epoch, the appender's clock) it was
    appended at."""

    at_us: int
    text: str


def escaped_length(text: str) -> int:
    """The length ``text`` takes in a key (compare with ``ObjectLog.max_length``)."""
    return len(urllib.parse.quote(text, safe=_SAFE))


class ObjectLog:
    """The log in the directory ``rel`` of a table's files on object storage (``files``).
    See the module docstring."""

    def __init__(self, files: TableFiles, rel: str) -> None:
        self._files = files
        self._rel = rel.strip("/")
        self._display = f"{files.uri}/{self._rel}"
        # the key is the path after the bucket
        key_prefix = self._display.split("://", 1)[-1].partition("/")[2]
        self.max_length = MAX_KEY_BYTES - len(key_prefix.encode()) - 1 - _HEAD
        if self.max_length < 64:
            raise InputValidationError(
                f"The log {self._display!r} is nested too deep for object keys of "
                f"{MAX_KEY_BYTES} bytes; use a shorter store prefix or shorter names."
            )

    def __repr__(self) -> str:
        return f"ObjectLog({self._display!r})"

    def append(self, texts: Sequence[str], at_us: int | None = None) -> int:
        """Append each of ``texts`` (one PUT each, in order), stamped ``at_us`` (default:
        now); returns the stamp."""
        keys = [urllib.parse.quote(text, safe=_SAFE) for text in texts]
        for text, key in zip(texts, keys, strict=True):
            if len(key.encode()) > self.max_length:
                raise InputValidationError(
                    f"A log entry of {len(key)} escaped characters does not fit in an object "
                    f"key of {self._display!r} (at most {self.max_length}); split it: "
                    f"{text[:80]!r}..."
                )
        stamp = time.time_ns() // 1000 if at_us is None else at_us
        for key in keys:
            name = f"{stamp:0{_STAMP_DIGITS}d}-{uuid.uuid4().hex[:8]}~{key}"
            try:
                self._files.write(f"{self._rel}/{name}", b"")
            except OSError as err:
                raise DatabaseError(
                    f"Cannot append to the log {self._display!r}: {err}. Check that the store "
                    "is reachable and writable with these credentials."
                ) from err
        return stamp

    def read(self) -> list[LogEntry]:
        """Every entry appended so far, oldest first (one LIST per 1,000 entries)."""
        out: list[LogEntry] = []
        for name in sorted(self._files.list_files(self._rel)):
            head, sep, key = name.partition("~")
            stamp = head[:_STAMP_DIGITS]
            if not sep or not stamp.isdigit():
                continue  # not an entry (e.g. a file someone put here)
            out.append(LogEntry(int(stamp), urllib.parse.unquote(key)))
        return out
