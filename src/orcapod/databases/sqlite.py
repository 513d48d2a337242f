"""``SQLiteDatabase``: the record store in one SQLite file (see ``sql_store`` for the layout
and the write protocol, ``sql_types`` for how columns are stored).

The file is opened in WAL mode, so readers never block the writer and a reader in another
process sees every committed batch; ``synchronous=NORMAL`` keeps every commit safe from a
killed process (not from a power cut before the next checkpoint). Writers serialise on
SQLite's database lock (``BEGIN IMMEDIATE``), waiting up to ``timeout`` seconds for it.

Read-side decision: the ADBC SQLite driver infers each result column's Arrow type from the
values of its first batch, so the store reads every result as one batch (a later batch could
not change a column's type) and converts the columns to the types kept in the catalog.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from orcapod.databases.sql_drivers import SQLITE_ONE_BATCH, connect_sqlite, driver_error
from orcapod.databases.sql_store import SQLArrowDatabase
from orcapod.databases.sql_types import SQLITE
from orcapod.errors import InputValidationError

__all__ = ["SQLiteDatabase"]


class SQLiteDatabase(SQLArrowDatabase):
    """Records stored in the SQLite file ``path`` (created if missing; ``":memory:"`` keeps
    them in this process only)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        batch_size: int = 10_000,
        timeout: float = 60.0,
    ) -> None:
        raw = os.fspath(path)
        if raw != ":memory:":
            file = Path(raw).expanduser().absolute()
            if file.is_dir():
                raise InputValidationError(
                    f"The SQLite store path {str(file)!r} is a directory; pass a file path "
                    "(e.g. store.sqlite inside it)."
                )
            if not file.parent.is_dir():
                raise InputValidationError(
                    f"The directory of the SQLite store {str(file)!r} does not exist; create it "
                    "first."
                )
            raw = str(file)
        if timeout <= 0:
            raise InputValidationError(f"timeout must be positive, got {timeout!r}.")
        self._path = raw
        self._timeout_ms = int(timeout * 1000)
        super().__init__(lambda: connect_sqlite(raw), SQLITE, batch_size)

    @property
    def path(self) -> str:
        """The SQLite file holding the records."""
        return self._path

    def _prepare_cursor(self, cursor: Any) -> None:
        cursor.adbc_statement.set_options(**SQLITE_ONE_BATCH)
        cursor.execute(f"PRAGMA busy_timeout = {self._timeout_ms}")
        cursor.fetchall()
        # switching to WAL needs the database to itself, and SQLite answers "database is
        # locked" at once (without its busy handler) while another connection opens it:
        # retry within the timeout
        deadline = time.monotonic() + self._timeout_ms / 1000
        while True:
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.fetchall()
                break
            except driver_error("sqlite") as err:
                if "not a database" in str(err):
                    self.close()
                    raise InputValidationError(
                        f"The SQLite store path {self._path!r} exists but is not an SQLite "
                        "database; pass a new path (the store creates the file) or an SQLite "
                        "file that an orcapod store wrote."
                    ) from err
                if "locked" not in str(err) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)
        cursor.execute("PRAGMA synchronous = NORMAL")

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self._path!r}, batch_size={self.batch_size})"
