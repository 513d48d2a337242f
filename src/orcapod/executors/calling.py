"""Small helpers shared by the executors: running a call to completion and describing options.

``run_to_completion`` is the sync-to-async bridge. With no event loop running in the calling
thread it uses ``asyncio.run``. Inside a running loop (a coroutine, Jupyter) it cannot block
that loop's thread on the loop itself, so it runs ``asyncio.run`` in a FRESH thread per call and
waits for it: never a shared single-thread pool (which would serialise unrelated calls) and no
pool that nested calls could exhaust (which could deadlock). A thread start costs tens of
microseconds, small next to creating an event loop. The caller's ``contextvars`` (including an
active output capture) are copied into that thread.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from orcapod._lazy import lazy_module

if TYPE_CHECKING:
    import asyncio
else:
    asyncio = lazy_module("asyncio")

__all__ = ["canonical_options_json", "is_async_callable", "run_to_completion"]


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for coroutine functions, partials of them and objects with an async ``__call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async __call__, not callability
    )


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


#: Exact types whose instances are never awaitable: the per-call check skips
#: ``inspect.isawaitable`` (an ABC ``isinstance``, ~1 us) for the common plain results.
_PLAIN_TYPES: frozenset[type] = frozenset(
    {int, float, str, bytes, bool, type(None), complex, dict, list, tuple, set, frozenset}
)


def run_to_completion(value: Any) -> Any:
    """``value`` itself, or, if it is awaitable, its result (safe inside a running loop)."""
    if type(value) in _PLAIN_TYPES or not inspect.isawaitable(value):
        return value
    coro: Coroutine[Any, Any, Any] = value if inspect.iscoroutine(value) else _await(value)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop running in this thread: the plain case
        return asyncio.run(coro)
    return _run_in_fresh_thread(coro)


def _run_in_fresh_thread(coro: Coroutine[Any, Any, Any]) -> Any:
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = context.run(asyncio.run, coro)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            outcome["error"] = err

    thread = threading.Thread(target=target, name="orcapod-async-call", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _json_default(value: Any) -> str:
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, (set, frozenset)):
        return json.dumps(sorted(value, key=repr), default=_json_default)
    return repr(value)


def canonical_options_json(options: Mapping[str, Any]) -> str:
    """Options as deterministic JSON (sorted keys); non-JSON values by type name or repr."""
    return json.dumps(dict(options), sort_keys=True, default=_json_default)
