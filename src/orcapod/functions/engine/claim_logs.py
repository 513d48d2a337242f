"""Where a ``ClaimBook`` keeps its claim rows (``ClaimLog``, chosen by the store:
``claim_log``).

* ``ObjectClaimLog``, on a Delta store, local or on object storage (the store's
  ``ArrowDatabase.object_log``, ``orcapod.databases.object_log``): on object storage every
  append is one empty object whose key holds its rows, and a read is one LIST per 1,000
  appends; on local disk an append is one small file and a read lists the directory and reads
  the new files. A Delta table would cost a commit per append and a log replay and a query
  per poll of every process (on object storage a log entry, a listing, checkpoint reads and
  data-file reads). The protocol needs of the log what both give: a listing made after an
  append returned shows it. The appends are never deleted, but they are bounded: one log per
  function, code version and input, holding a few appends per batch of buckets claimed (at
  most 4,096 buckets).
* ``TableClaimLog``: a table of the store (a SQL table on SQLite and PostgreSQL), one commit
  per append, a projected read of the whole table per read.

A Delta store written by an earlier orcapod kept its claims in a Delta table at the same
path; a process of this version does not read that table, so claims held across an upgrade by
processes of the two versions are not shared: at worst both compute the same rows (stored
once), as claims never decide correctness.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from orcapod.databases import ArrowDatabase
from orcapod.databases.object_log import ObjectLog, escaped_length

__all__ = ["ClaimLog", "ClaimRow", "ObjectClaimLog", "StateGroups", "TableClaimLog", "claim_log"]

_TS = pa.timestamp("us", tz="UTC")

#: (owner, state, at, expires_at, process) of one claim row
ClaimRow = tuple[str, str, dt.datetime, dt.datetime, str | None]
_COLUMNS = ("bucket", "owner", "process", "state", "at", "expires_at")


#: the states of the rows of one append, each with its buckets
StateGroups = Sequence[tuple[Sequence[str], str]]


class ClaimLog(Protocol):
    """Where a ``ClaimBook`` keeps its rows: appends that later reads see, from any process
    (module docstring, "Where claims are kept")."""

    def append(
        self, owner: str, process: str, at: dt.datetime, expires: dt.datetime, groups: StateGroups
    ) -> None:
        """Store (and commit, at once) one row per bucket of each ``(buckets, state)``."""
        ...

    def read(self) -> list[tuple[str, ClaimRow]]:
        """Every row appended so far: ``(bucket, row)`` in no particular order."""
        ...


@dataclass
class TableClaimLog:
    """Claim rows in the table at ``path`` of ``database`` (one commit per append, a
    projected read of the whole table per read)."""

    database: ArrowDatabase
    path: tuple[str, ...]
    #: a committed version of the claims (``ArrowDatabase.committed_version``, taken once)
    _absent_at: int | None = field(default=None, repr=False)

    def append(
        self, owner: str, process: str, at: dt.datetime, expires: dt.datetime, groups: StateGroups
    ) -> None:
        names = [b for buckets, _ in groups for b in buckets]
        states = [state for buckets, state in groups for _ in buckets]
        n = len(names)
        table = pa.table(
            {
                "claim_id": pa.array([uuid.uuid4().hex for _ in range(n)], pa.large_string()),
                "bucket": pa.array(names, pa.large_string()),
                "owner": pa.array([owner] * n, pa.large_string()),
                "process": pa.array([process] * n, pa.large_string()),
                "state": pa.array(states, pa.large_string()),
                "at": pa.array([at] * n, _TS),
                "expires_at": pa.array([expires] * n, _TS),
            }
        )
        # claim ids are new random ids, absent at any version: a store need not check them
        # against the rows committed before (on object storage it would read every id once)
        if self._absent_at is None or self._absent_at < 0:  # (-1: no table yet)
            self._absent_at = self.database.committed_version(self.path)
        self.database.add_records(
            self.path, table, "claim_id", flush=True, absent_at=self._absent_at
        )

    def read(self) -> list[tuple[str, ClaimRow]]:
        # every row, projected: a claims table is small, and a read by bucket would make the
        # store keep a lookup index of the column (written on every commit)
        found = self.database.get_records_with_column_value(self.path, {}, columns=list(_COLUMNS))
        if found is None:
            return []
        bucket, owner, process, state, at, expires = (found.column(c).to_pylist() for c in _COLUMNS)
        return [
            (b, (o, s, a, e, p))
            for b, o, p, s, a, e in zip(bucket, owner, process, state, at, expires, strict=True)
        ]


@dataclass(frozen=True)
class ObjectClaimLog:
    """Claim rows as the entries of an ``ObjectLog`` (on object storage one PUT per append,
    one LIST per read of up to 1,000 appends). An entry is one append:
    ``<owner>!<process>!<expires, µs since the epoch>!<state>:<bucket>,<bucket>;<state>:...``
    (owner, process and buckets %-escaped where they hold a separator); its time is the
    log's. An append too long for one entry (an object key) is split over several entries."""

    log: ObjectLog

    def append(
        self, owner: str, process: str, at: dt.datetime, expires: dt.datetime, groups: StateGroups
    ) -> None:
        head = f"{_escape(owner, _FIELD_SAFE)}!{_escape(process, _FIELD_SAFE)}!{_us(expires)}!"
        room = self.log.max_length - escaped_length(head)
        texts: list[str] = []
        parts: list[str] = []  # the groups of the entry being filled, "state:b,b"
        used = 0
        for buckets, state in groups:
            opened = False  # has this state a group in the entry being filled?
            for bucket in buckets:
                piece = _escape(bucket, _BUCKET_SAFE)
                cost = escaped_length(piece) + 1  # with its "," or ":"
                if not opened:
                    cost += len(state) + (1 if parts else 0)  # "state" and its ";"
                if parts and used + cost > room:
                    texts.append(head + ";".join(parts))
                    parts, used, opened = [], 0, False
                    cost = escaped_length(piece) + 1 + len(state)
                if opened:
                    parts[-1] += f",{piece}"
                else:
                    parts.append(f"{state}:{piece}")
                    opened = True
                used += cost
        if parts:
            texts.append(head + ";".join(parts))
        self.log.append(texts, at_us=_us(at))

    def read(self) -> list[tuple[str, ClaimRow]]:
        out: list[tuple[str, ClaimRow]] = []
        for entry in self.log.read():
            fields = entry.text.split("!")
            if len(fields) != 4 or not fields[2].isdigit():
                continue  # not written by a claim book
            owner, process = urllib.parse.unquote(fields[0]), urllib.parse.unquote(fields[1])
            at, expires = _time(entry.at_us), _time(int(fields[2]))
            for group in fields[3].split(";"):
                state, _, buckets = group.partition(":")
                for bucket in buckets.split(","):
                    out.append((urllib.parse.unquote(bucket), (owner, state, at, expires, process)))
        return out


#: characters kept as they are in an owner or process name (the log escapes the rest); the
#: separators of an entry are escaped
_FIELD_SAFE = ":;,=@+/"
_BUCKET_SAFE = "=@+/"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def _escape(text: str, safe: str) -> str:
    return urllib.parse.quote(text, safe=safe)


def _us(when: dt.datetime) -> int:
    return (when - _EPOCH) // _MICROSECOND


def _time(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def claim_log(database: ArrowDatabase, path: tuple[str, ...]) -> ClaimLog:
    """The log the claims at ``path`` of ``database`` are kept in: the store's object log
    when it has one (a Delta store), else its table."""
    log = database.object_log(path)
    return TableClaimLog(database, path) if log is None else ObjectClaimLog(log)
