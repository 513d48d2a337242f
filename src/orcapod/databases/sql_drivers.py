"""The ADBC drivers behind the SQL record stores and SQL sources, imported on first use.

The drivers are optional extras (``pip install 'orcapod[sqlite]'`` / ``'orcapod[postgresql]'``),
so ``import orcapod`` works without them: this module imports them lazily - the one kind of
function-local import the project allows - and a store or source used without its driver
raises ``DatabaseError`` naming the extra to install.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from orcapod.errors import DatabaseError

__all__ = ["SQLITE_ONE_BATCH", "connect_postgresql", "connect_sqlite", "driver_error"]

#: statement options of the ADBC SQLite driver for reading a result as one batch: the driver
#: infers each column's Arrow type from the first batch's values, and a later batch whose
#: values differ (e.g. text after a first batch of only NULLs) would fail the read
SQLITE_ONE_BATCH = {"adbc.sqlite.query.batch_rows": str(2**30)}


def _missing(extra: str, err: ImportError) -> DatabaseError:
    return DatabaseError(
        f"The {extra} ADBC driver is not installed ({err}); install it with "
        f"pip install 'orcapod[{extra}]'."
    )


def _manager(extra: str) -> ModuleType:
    try:
        from adbc_driver_manager import dbapi  # lazy on purpose: an optional extra
    except ImportError as err:
        raise _missing(extra, err) from err
    return dbapi


def driver_error(extra: str) -> type[Exception]:
    """The base class of every error the ADBC drivers raise (``extra``: the orcapod extra
    that installs them, named if they are missing)."""
    error: type[Exception] = _manager(extra).Error
    return error


def connect_sqlite(path: str | os.PathLike[str]) -> Any:
    """An autocommit ADBC connection to the SQLite file ``path``."""
    try:
        import adbc_driver_sqlite.dbapi as sqlite_dbapi  # lazy on purpose: an optional extra
    except ImportError as err:
        raise _missing("sqlite", err) from err
    return sqlite_dbapi.connect(os.fspath(path), autocommit=True)


def connect_postgresql(uri: str) -> Any:
    """An autocommit ADBC connection to the PostgreSQL database at ``uri``."""
    try:
        import adbc_driver_postgresql.dbapi as pg_dbapi  # lazy on purpose: an optional extra
    except ImportError as err:
        raise _missing("postgresql", err) from err
    try:
        return pg_dbapi.connect(uri, autocommit=True)
    except driver_error("postgresql") as err:
        raise DatabaseError(
            f"Cannot connect to PostgreSQL: {err}; check the URI, that the server runs and "
            "that the user may log in."
        ) from err
