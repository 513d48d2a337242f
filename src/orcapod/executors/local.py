"""``LocalExecutor``: runs a packet function's callable in this process.

Decisions:

* One option, ``max_workers`` (default None). None: calls run in the caller's thread,
  ``supports_concurrent_execution`` is False and ``submit_callable`` runs the call before
  returning a completed future. An integer n: ``submit_callable`` and
  ``async_execute_callable`` (for sync functions) use this executor's own pool of n threads,
  and ``supports_concurrent_execution`` is ``n > 1``; pods and nodes then keep n calls in
  flight (``preferred_concurrency``) unless given ``max_concurrency``. Threads help I/O-bound
  and GIL-releasing functions; CPU-bound Python code wants ``RayExecutor``.
* The thread pool is a runtime resource, not a value: it is created lazily, belongs to one
  instance (``with_options`` gives a new instance with its own pool), is excluded from
  equality, hashing and pickling, and its threads exit when the executor is garbage-collected.
* Any other option name, and any per-call ``executor_options``, raise ``ExecutorError``:
  a misspelt option is reported, never silently ignored.
* Async callables called through ``execute_callable`` run to completion with ``asyncio.run``;
  inside a running loop in a fresh thread per call (see ``orcapod.executors.calling``).
  ``async_execute_callable`` awaits them directly on the running loop.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from orcapod._lazy import lazy_module
from orcapod.errors import ExecutorError
from orcapod.executors.calling import (
    canonical_options_json,
    is_async_callable,
    run_to_completion,
)
from orcapod.executors.capture import OutputCapture, PacketLoggerProtocol, record_capture

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["LocalExecutor"]

_OPTION_NAMES = frozenset({"max_workers"})


@dataclass(frozen=True)
class LocalExecutor:
    """In-process executor for sync and async Python callables (see the module docstring)."""

    max_workers: int | None = None

    def __post_init__(self) -> None:
        if self.max_workers is not None and (
            isinstance(self.max_workers, bool)
            or not isinstance(self.max_workers, int)
            or self.max_workers < 1
        ):
            raise ExecutorError(
                f"LocalExecutor(max_workers={self.max_workers!r}) is invalid; pass a positive "
                "integer for a thread pool, or None to run calls in the caller's thread."
            )
        object.__setattr__(self, "_pool", None)
        object.__setattr__(self, "_pool_lock", threading.Lock())

    # -- value semantics -------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"max_workers": self.max_workers}

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "max_workers", state["max_workers"])
        self.__post_init__()

    @property
    def executor_type_id(self) -> str:
        return "local"

    def supported_function_type_ids(self) -> frozenset[str]:
        return frozenset()

    def supports(self, function_type_id: str) -> bool:
        ids = self.supported_function_type_ids()
        return not ids or function_type_id in ids

    @property
    def supports_concurrent_execution(self) -> bool:
        return self.max_workers is not None and self.max_workers > 1

    @property
    def preferred_concurrency(self) -> int | None:
        """Calls a pod or node keeps in flight: one per worker thread (so ``max_workers=20``
        runs 20 calls at once), or None without a pool."""
        return self.max_workers if self.supports_concurrent_execution else None

    def with_options(self, **opts: Any) -> Self:
        unknown = sorted(set(opts) - _OPTION_NAMES)
        if unknown:
            raise ExecutorError(
                f"LocalExecutor has no option(s) {unknown}; its only option is 'max_workers'. "
                "Remove them, or use an executor that understands them (e.g. RayExecutor)."
            )
        return type(self)(**{"max_workers": self.max_workers, **opts})

    def get_executor_data(self) -> dict[str, Any]:
        options = {} if self.max_workers is None else {"max_workers": self.max_workers}
        return {
            "executor_type": self.executor_type_id,
            "executor_options": canonical_options_json(options),
        }

    # -- execution -------------------------------------------------------------------------

    def execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        _reject_call_options(executor_options)
        if logger is None:
            return run_to_completion(fn(**kwargs))
        error: BaseException | None = None
        with OutputCapture() as capture:
            try:
                result = run_to_completion(fn(**kwargs))
            except BaseException as err:  # noqa: BLE001 - recorded, then re-raised
                error = err
        record_capture(logger, capture.result(error))  # outside the capture: the logger's
        if error is not None:  # own output is not part of the call's
            raise error
        return result

    async def async_execute_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Any:
        _reject_call_options(executor_options)
        if logger is None:
            return await self._run_async(fn, kwargs)
        error: BaseException | None = None
        with OutputCapture() as capture:
            try:
                result = await self._run_async(fn, kwargs)
            except BaseException as err:  # noqa: BLE001 - recorded, then re-raised
                error = err
        record_capture(logger, capture.result(error))  # outside the capture: the logger's
        if error is not None:  # own output is not part of the call's
            raise error
        return result

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        _reject_call_options(executor_options)
        if self.max_workers is None:
            future: Future[Any] = Future()
            try:
                future.set_result(self.execute_callable(fn, kwargs, logger=logger))
            except Exception as err:  # noqa: BLE001 - delivered through the future
                future.set_exception(err)
            return future
        context = contextvars.copy_context()
        return self._thread_pool().submit(
            context.run, self.execute_callable, fn, kwargs, None, logger=logger
        )

    async def _run_async(self, fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
        if is_async_callable(fn):
            return await fn(**kwargs)
        if self.max_workers is None:
            result = await asyncio.to_thread(fn, **kwargs)
        else:
            context = contextvars.copy_context()
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._thread_pool(), lambda: context.run(fn, **kwargs)
            )
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            return await result
        return result

    def _thread_pool(self) -> ThreadPoolExecutor:
        pool: ThreadPoolExecutor | None = self.__dict__["_pool"]
        if pool is None:
            with self.__dict__["_pool_lock"]:
                pool = self.__dict__["_pool"]
                if pool is None:
                    pool = ThreadPoolExecutor(
                        max_workers=self.max_workers, thread_name_prefix="orcapod-local"
                    )
                    object.__setattr__(self, "_pool", pool)
        return pool


def _reject_call_options(executor_options: Mapping[str, Any] | None) -> None:
    if executor_options:
        raise ExecutorError(
            f"LocalExecutor takes no per-call executor_options, got {dict(executor_options)!r}; "
            "configure it with with_options(max_workers=...) or drop the options."
        )
