"""Fixtures: every backend, so one contract suite runs over all of them.

``db`` covers the storing backends: in-memory, Delta with rows left pending (large batch),
and Delta committing every write at once (``batch_size=1``), so reads are checked against
pending rows, committed rows and their mix. ``any_db`` adds ``NoOpArrowDatabase`` for the
parts of the contract that it also honours (validation, views, accepting writes).
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
)

BACKENDS: dict[str, Callable[[Path], ArrowDatabase]] = {
    "in_memory": lambda tmp: InMemoryArrowDatabase(),
    "delta_pending": lambda tmp: DeltaTableDatabase(tmp / "delta", batch_size=100_000),
    "delta_autocommit": lambda tmp: DeltaTableDatabase(tmp / "delta", batch_size=1),
}


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    return BACKENDS[request.param](tmp_path)


@pytest.fixture(params=[*sorted(BACKENDS), "noop"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    if request.param == "noop":
        return NoOpArrowDatabase()
    return BACKENDS[request.param](tmp_path)


@pytest.fixture
def delta_db(tmp_path: Path) -> DeltaTableDatabase:
    return DeltaTableDatabase(tmp_path / "delta", batch_size=100_000)
