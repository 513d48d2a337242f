"""Fixtures for the function layer: databases (in-memory and a real Delta table), sources,
and a counting function whose calls tests can check."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.sources import DictSource

DATABASES: dict[str, Callable[[Path], ArrowDatabase]] = {
    "in_memory": lambda tmp: InMemoryArrowDatabase(),
    "delta": lambda tmp: DeltaTableDatabase(tmp / "delta"),
}


@pytest.fixture(params=sorted(DATABASES))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    """Every storing backend: results must behave the same in memory and in Delta Lake."""
    return DATABASES[request.param](tmp_path)


@pytest.fixture
def memory_db() -> InMemoryArrowDatabase:
    return InMemoryArrowDatabase()


class Calls:
    """Thread-safe record of the arguments a user function was called with."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self._lock = threading.Lock()

    def add(self, value: Any) -> None:
        with self._lock:
            self.args.append(value)

    def __len__(self) -> int:
        return len(self.args)

    def identity_structure(self) -> str:
        """A recorder does not change what a function computes, so it has a fixed identity
        (a closure value is part of a function's code hash)."""
        return "calls"


@pytest.fixture
def calls() -> Calls:
    return Calls()


def _make_source(n: int = 5, **kwargs: Any) -> DictSource:
    """``id`` tag, ``x`` and ``y`` int packet columns: x = i, y = 10 * i."""
    return DictSource(
        [{"id": i, "x": i, "y": 10 * i} for i in range(n)], tag_columns=["id"], **kwargs
    )


@pytest.fixture
def make_source() -> Callable[..., DictSource]:
    """Factory: ``make_source(n)`` -> a DictSource of n rows (tag ``id``; ``x``, ``y``)."""
    return _make_source


@pytest.fixture
def source() -> DictSource:
    return _make_source()
