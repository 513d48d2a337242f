"""``PostgreSQLDatabase``: the record store in a PostgreSQL database (see ``sql_store`` for
the layout and the write protocol, ``sql_types`` for how columns are stored).

Several machines can write results to one server: writers of one path serialise on a row lock
of the path's catalog row, and every batch commits in one transaction. Rows are copied in with
PostgreSQL's binary ``COPY`` (through the ADBC driver) and read back as Arrow.
"""

from __future__ import annotations

from typing import Any

from orcapod.databases.sql_drivers import connect_postgresql
from orcapod.databases.sql_store import SQLArrowDatabase
from orcapod.databases.sql_types import POSTGRESQL
from orcapod.errors import InputValidationError

__all__ = ["PostgreSQLDatabase"]


class PostgreSQLDatabase(SQLArrowDatabase):
    """Records stored in the PostgreSQL database at ``uri``
    (``postgresql://user:password@host:port/dbname``)."""

    def __init__(self, uri: str, batch_size: int = 10_000) -> None:
        if not isinstance(uri, str) or not uri.startswith(("postgresql://", "postgres://")):
            raise InputValidationError(
                f"PostgreSQLDatabase needs a URI like 'postgresql://user@host:5432/dbname', "
                f"got {uri!r}."
            )
        self._uri = uri
        super().__init__(lambda: connect_postgresql(uri), POSTGRESQL, batch_size)

    @property
    def uri(self) -> str:
        """The URI given (with its password, if it holds one)."""
        return self._uri

    def _prepare_cursor(self, cursor: Any) -> None:
        cursor.execute("SET standard_conforming_strings = on")
        cursor.execute("SET client_min_messages = warning")

    def __repr__(self) -> str:
        return f"PostgreSQLDatabase(batch_size={self.batch_size})"
