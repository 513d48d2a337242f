"""Fixtures shared across the whole suite: ONE real local Ray per test run."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest


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
