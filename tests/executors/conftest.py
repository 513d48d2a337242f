"""Shared executor fixtures: a packet logger that keeps captures (Ray: tests/conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from orcapod.executors.capture import CapturedOutput


class RecordingLogger:
    """A real packet logger: keeps every capture it is handed (thread-safe)."""

    def __init__(self) -> None:
        self.records: list[CapturedOutput] = []
        self._lock = threading.Lock()

    def record(self, captured: CapturedOutput) -> None:
        with self._lock:
            self.records.append(captured)

    @property
    def only(self) -> CapturedOutput:
        assert len(self.records) == 1, self.records
        return self.records[0]


@pytest.fixture
def packet_logger() -> RecordingLogger:
    return RecordingLogger()


@pytest.fixture
def new_logger() -> Callable[[], RecordingLogger]:
    """Factory for tests that need several independent loggers."""
    return RecordingLogger
