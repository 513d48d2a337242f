"""Fixtures: every backend, so one contract suite runs over all of them.

``db`` covers the storing backends: in-memory, and Delta, SQLite and PostgreSQL each with rows
left pending (large batch) and committing every write at once (``batch_size=1``), so reads are
checked against pending rows, committed rows and their mix, and Delta on object storage
(``s3://``, the test run's S3 API server on loopback). ``any_db`` adds ``NoOpArrowDatabase`` for
the parts of the contract that it also honours (validation, views, accepting writes).
PostgreSQL stores get a fresh schema of the test run's server each, S3 stores a fresh bucket.

``s3_server`` is that server (``tests/conftest.py``: ``s3_server.py`` beside this file, moto's
server app behind a request counter, started once per test run in a subprocess on 127.0.0.1).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orcapod.databases import (
    ArrowDatabase,
    DeltaTableDatabase,
    InMemoryArrowDatabase,
    NoOpArrowDatabase,
    PostgreSQLDatabase,
    SQLiteDatabase,
)

#: name -> make(tmp_path, fixture getter); the getter gives the test run's servers
BACKENDS: dict[str, Callable[[Path, Callable[[str], Any]], ArrowDatabase]] = {
    "in_memory": lambda tmp, fixture: InMemoryArrowDatabase(),
    "delta_pending": lambda tmp, fixture: DeltaTableDatabase(tmp / "delta", batch_size=100_000),
    "delta_autocommit": lambda tmp, fixture: DeltaTableDatabase(tmp / "delta", batch_size=1),
    "delta_s3_pending": lambda tmp, fixture: fixture("s3_server").fresh_store(batch_size=100_000),
    "delta_s3_autocommit": lambda tmp, fixture: fixture("s3_server").fresh_store(batch_size=1),
    "sqlite_pending": lambda tmp, fixture: SQLiteDatabase(tmp / "db.sqlite", batch_size=100_000),
    "sqlite_autocommit": lambda tmp, fixture: SQLiteDatabase(tmp / "db.sqlite", batch_size=1),
    "postgresql_pending": lambda tmp, fixture: PostgreSQLDatabase(
        fixture("postgresql_server").fresh_uri(), batch_size=100_000
    ),
    "postgresql_autocommit": lambda tmp, fixture: PostgreSQLDatabase(
        fixture("postgresql_server").fresh_uri(), batch_size=1
    ),
}


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    return BACKENDS[name](tmp_path, request.getfixturevalue)


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
