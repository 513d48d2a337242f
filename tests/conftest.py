"""Fixtures shared across the whole suite: ONE real local Ray per test run, and an executor
that logs its submissions and the end-of-calls hint (``no_more_calls``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from orcapod.executors import LocalExecutor
from orcapod.executors.capture import PacketLoggerProtocol


@dataclass(frozen=True)
class HintedExecutor(LocalExecutor):
    """A thread-pool executor that logs submissions (``submit <x>``) and the ``no_more_calls``
    hint (``no more calls``) in ``log``."""

    log: list[str] = field(default_factory=list, compare=False)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        self.log.append(f"submit {kwargs['x']}")
        return super().submit_callable(fn, kwargs, executor_options, logger=logger)

    def no_more_calls(self) -> None:
        self.log.append("no more calls")


@pytest.fixture
def hinted_executor() -> Callable[[int], HintedExecutor]:
    """Makes a ``HintedExecutor`` with ``max_workers`` threads."""
    return lambda max_workers: HintedExecutor(max_workers=max_workers)


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
