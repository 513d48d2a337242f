"""Shared executor fixtures: a packet logger that keeps captures, and ONE real local Ray per run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from types import ModuleType

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


@pytest.fixture(scope="session")
def ray_session() -> Iterator[ModuleType]:
    """A real local Ray (2 CPUs, no dashboard), started once per test run and shut down after.

    ``RAY_AUTH_MODE=disabled`` keeps Ray from writing ``~/.ray/auth_token``; session files go to
    Ray's temp dir (/tmp/ray).
    """
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        try:
            yield ray
        finally:
            ray.shutdown()
