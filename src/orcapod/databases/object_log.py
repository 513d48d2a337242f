"""``ObjectLog``: an append-only log of short text entries, one file per entry, for the
records a table would make slow (such as work claims, appended and read again and again by
every process sharing a function). A store hands one out for a path
(``ArrowDatabase.object_log``); a Delta table would cost a commit per append and a log replay
or a query per read.

On object storage the entry's text is its object's key, so

* an append is ONE request: a PUT of an empty object named
  ``<directory>/<time in µs, 17 digits>-<8 random hex digits>~<escaped text>``;
* a read of every entry is ONE LIST per 1,000 entries: the keys are the entries, so no object
  is read. Listings of S3 are strongly consistent (read-after-write, and a LIST after a PUT
  returned shows it), so a read sees every append that finished before it, from any process.

The text is escaped into the key (``%XX`` for every character outside letters, digits and
``-_.~:;,=@+!``), and the whole key must fit object storage's limit of 1,024 bytes:
``max_length`` is the room left for the escaped text under this log's directory
(``escaped_length`` measures a text), and a longer text raises ``InputValidationError``.
Callers that write long records split them over several appends.

On local disk file names are too short for entries (255 bytes), so an entry is a file named
``<time>-<random>`` holding the text (UTF-8), written under a temporary name and renamed
into place (a reader never sees half an entry). A read lists the directory and reads only
the files this log has not read before (entries never change), so it costs microseconds
where a table's query costs milliseconds. ``max_length`` is 1 MiB there.

Either way entries come back ordered by their time (the appender's clock), then by the random
part. Nothing is ever deleted: the number of entries grows with the appends, so a log suits
small bounded records (such as the work claims of one function over one input).
"""

from __future__ import annotations

import re
import time
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from orcapod.databases.table_files import TableFiles
from orcapod.errors import DatabaseError, InputValidationError

__all__ = ["MAX_KEY_BYTES", "MAX_LOCAL_BYTES", "LogEntry", "ObjectLog", "escaped_length"]

#: the longest object key object storage accepts (S3: 1,024 bytes of UTF-8)
MAX_KEY_BYTES = 1024
#: the longest escaped text of an entry on local disk (the file's content)
MAX_LOCAL_BYTES = 1 << 20
#: characters kept as they are in a key (besides letters, digits and ``-_.~``)
_SAFE = ":;,=@+!"
_STAMP_DIGITS = 17
#: ``<time>-<random>~``
_HEAD = _STAMP_DIGITS + 1 + 8 + 1
#: the name of an entry's file on local disk: ``<time>-<random>`` (a temporary file has more)
_LOCAL_NAME = re.compile(r"[0-9]{17}-[0-9a-f]{8}")


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
    """The log in the directory ``rel`` of a table's files (``files``), on object storage or
    local disk. See the module docstring."""

    def __init__(self, files: TableFiles, rel: str) -> None:
        self._files = files
        self._rel = rel.strip("/")
        self._display = f"{files.uri}/{self._rel}"
        #: on local disk: the entries read so far, by file name (they never change)
        self._seen: dict[str, LogEntry] = {}
        if not files.remote:
            self.max_length = MAX_LOCAL_BYTES
            return
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
        """Append each of ``texts`` (one PUT or file each, in order), stamped ``at_us``
        (default: now); returns the stamp."""
        keys = [urllib.parse.quote(text, safe=_SAFE) for text in texts]
        for text, key in zip(texts, keys, strict=True):
            if len(key.encode()) > self.max_length:
                raise InputValidationError(
                    f"A log entry of {len(key)} escaped characters does not fit in an entry "
                    f"of {self._display!r} (at most {self.max_length}); split it: "
                    f"{text[:80]!r}..."
                )
        stamp = time.time_ns() // 1000 if at_us is None else at_us
        for text, key in zip(texts, keys, strict=True):
            name = f"{stamp:0{_STAMP_DIGITS}d}-{uuid.uuid4().hex[:8]}"
            try:
                if self._files.remote:
                    self._files.write(f"{self._rel}/{name}~{key}", b"")
                else:
                    self._files.write(f"{self._rel}/{name}", text.encode())
            except OSError as err:
                raise DatabaseError(
                    f"Cannot append to the log {self._display!r}: {err}. Check that the store "
                    "is reachable and writable with these credentials."
                ) from err
        return stamp

    def read(self) -> list[LogEntry]:
        """Every entry appended so far, oldest first (on object storage one LIST per 1,000
        entries; on local disk a listing and a read of each file not read before)."""
        if not self._files.remote:
            return self._read_local()
        out: list[LogEntry] = []
        for name in sorted(self._files.list_files(self._rel)):
            head, sep, key = name.partition("~")
            stamp = head[:_STAMP_DIGITS]
            if not sep or not stamp.isdigit():
                continue  # not an entry (e.g. a file someone put here)
            out.append(LogEntry(int(stamp), urllib.parse.unquote(key)))
        return out

    def _read_local(self) -> list[LogEntry]:
        names = sorted(n for n in self._files.list_files(self._rel) if _LOCAL_NAME.fullmatch(n))
        for name in names:
            if name not in self._seen:
                text = self._files.read(f"{self._rel}/{name}")
                if text is None:  # (deleted meanwhile: the log was removed)
                    continue
                self._seen[name] = LogEntry(int(name[:_STAMP_DIGITS]), text.decode())
        return [self._seen[n] for n in names if n in self._seen]
