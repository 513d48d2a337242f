"""Fixtures: every backend, so one contract suite runs over all of them.

``db`` covers the storing backends: in-memory, and Delta, SQLite and PostgreSQL each with rows
left pending (large batch) and committing every write at once (``batch_size=1``), so reads are
checked against pending rows, committed rows and their mix. ``any_db`` adds
``NoOpArrowDatabase`` for the parts of the contract that it also honours (validation, views,
accepting writes). PostgreSQL stores get a fresh schema of the test run's server each.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orcapod.databases import (
    ArrowDatabase,
    DeltaTableDatabase,
    InMemoryArrowDatabase,
    NoOpArrowDatabase,
    PostgreSQLDatabase,
    SQLiteDatabase,
)

#: name -> make(tmp_path, fresh PostgreSQL URI)
BACKENDS: dict[str, Callable[[Path, Callable[[], str]], ArrowDatabase]] = {
    "in_memory": lambda tmp, pg: InMemoryArrowDatabase(),
    "delta_pending": lambda tmp, pg: DeltaTableDatabase(tmp / "delta", batch_size=100_000),
    "delta_autocommit": lambda tmp, pg: DeltaTableDatabase(tmp / "delta", batch_size=1),
    "sqlite_pending": lambda tmp, pg: SQLiteDatabase(tmp / "db.sqlite", batch_size=100_000),
    "sqlite_autocommit": lambda tmp, pg: SQLiteDatabase(tmp / "db.sqlite", batch_size=1),
    "postgresql_pending": lambda tmp, pg: PostgreSQLDatabase(pg(), batch_size=100_000),
    "postgresql_autocommit": lambda tmp, pg: PostgreSQLDatabase(pg(), batch_size=1),
}


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    def fresh_uri() -> str:
        return request.getfixturevalue("postgresql_server").fresh_uri()  # type: ignore[no-any-return]

    return BACKENDS[name](tmp_path, fresh_uri)


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    return make_backend(request.param, request, tmp_path)


@pytest.fixture(params=[*sorted(BACKENDS), "noop"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    if request.param == "noop":
        return NoOpArrowDatabase()
    return make_backend(request.param, request, tmp_path)


@pytest.fixture
def delta_db(tmp_path: Path) -> DeltaTableDatabase:
    return DeltaTableDatabase(tmp_path / "delta", batch_size=100_000)
