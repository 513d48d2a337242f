"""The executor protocols: where and how a packet function's callable runs.

An executor is an immutable, hashable value (a frozen dataclass in this package). It is never
part of a content or pipeline hash; ``get_executor_data()`` is stored with results as
provenance only (``__pf_exec_<key>`` columns).

Decisions:

* ``PythonFunctionExecutorProtocol`` also requires ``submit_callable`` (non-blocking,
  returns a ``concurrent.futures.Future``), so a node can dispatch packets concurrently to any
  executor whose ``supports_concurrent_execution`` is True without knowing its class.
* ``executor_options`` are per-call options layered over the executor's own options (for Ray:
  remote options of that one task). An executor rejects options it does not understand with an
  ``ExecutorError`` instead of ignoring them.
* ``logger`` receives one :class:`~orcapod.executors.capture.CapturedOutput` per call. Without a
  logger nothing is captured: the function's output goes where it normally would.
* ``get_executor_data()`` returns exactly two string values, ``executor_type`` and
  ``executor_options`` (canonical JSON), so every executor stores the same columns.
* An executor that holds submitted calls back to group them may also have ``no_more_calls()``
  (``RayExecutor`` does): callers that submit a known set of calls say so after the last one
  (``announce_last_call``), so the calls still held are split for a balanced finish at once.
  It is optional, so it is not part of the protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol, Self, runtime_checkable

from orcapod.executors.capture import PacketLoggerProtocol

__all__ = ["PacketFunctionExecutorProtocol", "PythonFunctionExecutorProtocol", "announce_last_call"]


@runtime_checkable
class PacketFunctionExecutorProtocol(Protocol):
    """Identity, compatibility and configuration of an executor, independent of the language."""

    @property
    def executor_type_id(self) -> str:
        """Stable id of the executor kind, e.g. ``"local"`` or ``"ray"``."""
        ...

    def supported_function_type_ids(self) -> frozenset[str]:
        """Packet function type ids this executor can run; empty means every type."""
        ...

    def supports(self, function_type_id: str) -> bool:
        """True if a packet function of ``function_type_id`` can run on this executor."""
        ...

    @property
    def supports_concurrent_execution(self) -> bool:
        """True if several ``submit_callable`` calls can run at the same time."""
        ...

    def with_options(self, **opts: Any) -> Self:
        """A NEW executor with ``opts`` merged over this one's options (always a new instance)."""
        ...

    def get_executor_data(self) -> dict[str, Any]:
        """Executor type and options as JSON-able scalars, stored with results (never hashed)."""
        ...


@runtime_checkable
class PythonFunctionExecutorProtocol(PacketFunctionExecutorProtocol, Protocol):
    """An executor of raw Python callables: it gets ``fn`` and its keyword arguments and returns
    ``fn``'s raw result (building packets is the packet function's job).

    Every method runs sync and async (coroutine) functions alike, captures the call for
    ``logger`` when one is given (on success and on failure), and re-raises the user's original
    exception: same type and message (and, in-process, the same object).
    """

    def execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        """Run ``fn(**kwargs)`` to completion and return its result; blocks the caller.

        Safe to call from inside a running event loop (it neither deadlocks nor serialises
        unrelated calls).
        """
        ...

    async def async_execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        """Run ``fn(**kwargs)`` without blocking the running event loop; return its result."""
        ...

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        """Start ``fn(**kwargs)`` and return a future of its result (or of its exception).

        A non-concurrent executor may run the call before returning (a completed future).
        """
        ...


def announce_last_call(executor: object) -> None:
    """Tell ``executor`` that no more calls follow, if it has the optional ``no_more_calls()``
    (see the module docstring); a no-op for every other executor."""
    no_more_calls = getattr(executor, "no_more_calls", None)
    if no_more_calls is not None:
        no_more_calls()
