"""Telling a damaged Delta table from other read failures, and saying what to do about it.

When deltalake fails to open or query a table, its error names a kernel or Parquet failure,
often with a Rust backtrace, rarely the file at fault. :func:`damage_error` looks at the
table's files itself (only after a failure, so a healthy table pays nothing) and, when one of
them is damaged, returns a ``DatabaseError`` naming the record path, the table and the damaged
file, with the remedy: restore the table from a backup, or delete the table's folder so that
its rows are recomputed by the next run. The damage it recognises:

* a commit file of ``_delta_log/`` that is not valid JSON (a torn or overwritten write);
* a gap in the commit versions (a commit file deleted by hand or lost in a copy);
* a checkpoint (``*.checkpoint.parquet``) that is not a readable Parquet file;
* a data file the query names that is not a readable Parquet file.

Anything else is reported as a read failure of the table with the first line of the
underlying error (never the backtrace).
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.databases.paths import RecordPath
from orcapod.errors import DatabaseError

if TYPE_CHECKING:
    import pyarrow.parquet as pq
else:
    pq = lazy_module("pyarrow.parquet")

__all__ = ["damage_error", "first_line"]

_COMMIT = re.compile(r"^(\d{20})\.json$")
_PARQUET_NAME = re.compile(r"([\w.~-]+\.parquet)")


def first_line(err: BaseException) -> str:
    """The first line of an error's text (deltalake appends a Rust backtrace)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _bad_parquet(path: Path) -> bool:
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return True
    return False


def _log_damage(log: Path) -> tuple[str, Path] | None:
    commits: dict[int, Path] = {}
    for entry in log.iterdir():
        match = _COMMIT.match(entry.name)
        if match:
            commits[int(match.group(1))] = entry
    for version in sorted(commits):
        try:
            for line in commits[version].read_text(encoding="utf-8").splitlines():
                if line.strip():
                    json.loads(line)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return "a commit file of its log is not valid JSON", commits[version]
    checkpoints = sorted(log.glob("*.checkpoint*.parquet"))
    floor = min(
        (int(p.name[:20]) for p in checkpoints if p.name[:20].isdigit()),
        default=min(commits, default=0),
    )
    present = sorted(v for v in commits if v >= floor)
    for before, after in itertools.pairwise(present):
        if after != before + 1:
            missing = log / f"{before + 1:020d}.json"
            return "a commit file of its log is missing (a gap in the versions)", missing
    for checkpoint in checkpoints:
        if _bad_parquet(checkpoint):
            return "a checkpoint of its log is not a readable Parquet file", checkpoint
    return None


def _data_damage(table_dir: Path, err: BaseException) -> tuple[str, Path] | None:
    names = _PARQUET_NAME.findall(str(err))
    candidates = [c for name in names for c in (table_dir / name, *table_dir.rglob(name))]
    if not names:  # an error that names no file (a direct pyarrow read): check them all
        candidates = sorted(table_dir.rglob("*.parquet"))
    for candidate in candidates:
        if "_delta_log" not in candidate.parts and candidate.is_file() and _bad_parquet(candidate):
            return "a data file is not a readable Parquet file", candidate
    return None


def damage_error(key: RecordPath, uri: str, err: BaseException, doing: str) -> DatabaseError:
    """The error to raise for a failed read of the table of ``key`` at ``uri`` (``doing``:
    what failed, e.g. "read" or "query")."""
    table_dir = Path(uri)
    found: tuple[str, Path] | None = None
    if "://" not in uri and table_dir.is_dir():
        log = table_dir / "_delta_log"
        found = _data_damage(table_dir, err)
        if found is None and log.is_dir():
            found = _log_damage(log)
    if found is None:
        return DatabaseError(
            f"Cannot {doing} the Delta table of path {key!r} at {uri}: {first_line(err)}. "
            "Check that the location exists and is readable."
        )
    what, damaged = found
    return DatabaseError(
        f"The Delta table of path {key!r} at {uri} is damaged: {what}: {damaged}. Restore the "
        f"table from a backup, or delete the folder {uri} to have the next run recompute its "
        f"rows (other tables are not affected). Underlying error: {first_line(err)}"
    )
