"""What runs inside a Ray worker for ``RayExecutor``: the two generic tasks and the per-worker
function cache.

Why a module of its own, with no orcapod imports. Importing ``orcapod`` imports every public
subpackage (Arrow, the stores, ...): 0.5 s of CPU here, of which 0.35 s is more than Ray
itself loads in a worker, and seconds of wall time on a busy machine. If the tasks lived in a
module of the package, every fresh worker would pay that before its first call, and on a local
Ray that was most of the start-up cost left in a first run (the workers themselves are up when
``ray.init`` returns): measured under load (1-minute load 9-13 on 2 CPUs), the first call of a
fresh process started 2.4-3.4 s after ``ray.init`` with the tasks in the package, 1.0-1.3 s
with this module. So this module imports only the standard library, and the
driver has it pickled BY VALUE (:func:`ship_by_value`, ``cloudpickle.register_pickle_by_value``):
a worker receives the tasks' code with the task definitions and never imports this module, nor
``orcapod``, for a plain call.

Decisions:

* Only two rarer paths import orcapod modules in the worker, on first use: a call whose output
  is captured (a logger was given: ``orcapod.executors.capture``) and a function that returns
  an awaitable (``orcapod.executors.calling.run_to_completion``). Those imports are
  function-local on purpose (the import cost is the point), in :func:`_output_capture` and
  :func:`_completed`. ``ray`` itself is imported in the worker by :func:`_ray`; a Ray worker
  always has it loaded.
* Module-level state (the function cache) lives in the globals of the unpickled task
  functions: Ray unpickles a task's definition once per worker process, so the cache persists
  between the tasks of that worker. It holds nothing that cannot be pickled (its lock is made
  in the worker, on first use).
* Everything sent back is plain data (tuples, strings, the user's values and exceptions, and
  ``CapturedOutput`` when capturing), never an instance of a class of this module: the driver
  turns a group task's tuples into ``ray_outcomes.CallOutcome``.
* A grouped call's exception that cannot make the trip back (not picklable, or not
  unpicklable) is sent as its type name and message instead (:data:`UNSENDABLE`).
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = [
    "CAPTURE_ATTR",
    "OK",
    "RAISED",
    "UNSENDABLE",
    "RawOutcome",
    "remote_call",
    "remote_group",
    "ship_by_value",
]

#: the attribute of a one-call task's re-raised exception that carries its capture
CAPTURE_ATTR = "_orcapod_captured_output"
#: status of a grouped call: returned a value / raised (value = the exception) / raised an
#: exception that cannot be sent back (value = (type name, message))
OK, RAISED, UNSENDABLE = "ok", "raised", "unsendable"
#: one grouped call: (status, value, captured output or None, seconds, traceback or None)
RawOutcome = tuple[str, Any, Any, float, str | None]

_WORKER_CACHE_SIZE = 64  # functions per worker process

_worker_functions: OrderedDict[str, Callable[..., Any]] = OrderedDict()
_worker_state: dict[str, Any] = {}  # {"lock": ...}: made in the worker (a lock is not picklable)


def ship_by_value(cloudpickle: ModuleType) -> None:
    """Have ``cloudpickle`` (Ray's) pickle this module's functions by value (driver side), so
    workers run them without importing orcapod (module docstring)."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _ray() -> ModuleType:
    import ray  # a Ray worker has it loaded; this module never imports it in the driver

    return ray


def _output_capture() -> Any:
    """A new ``OutputCapture`` (imports orcapod's capture module on first use)."""
    from orcapod.executors.capture import OutputCapture

    return OutputCapture()


def _completed(value: Any) -> Any:
    """``value``, or the result of awaiting it (imports orcapod's helper on first use)."""
    if not inspect.isawaitable(value):
        return value
    from orcapod.executors.calling import run_to_completion

    return run_to_completion(value)


def _worker_function(fn_ref: Any) -> Callable[..., Any]:
    """The shipped function, fetched and unpickled once per worker (a bounded cache)."""
    key = fn_ref.hex()
    lock = _worker_state.setdefault("lock", threading.Lock())  # atomic: one lock per process
    with lock:
        fn = _worker_functions.get(key)
        if fn is not None:
            _worker_functions.move_to_end(key)
            return fn
    fn = _ray().get(fn_ref)
    with lock:
        _worker_functions[key] = fn
        while len(_worker_functions) > _WORKER_CACHE_SIZE:
            _worker_functions.popitem(last=False)
    return fn


def remote_call(fn_holder: list[Any], kwargs: dict[str, Any], capture: bool) -> tuple[Any, Any]:
    """The one-call task: run the shipped function, capturing when asked; returns (result,
    captured output or None). A failure re-raises the user's exception (its capture attached
    as ``CAPTURE_ATTR``), so Ray's ``retry_exceptions`` sees it."""
    fn = _worker_function(fn_holder[0])
    if not capture:
        return _completed(fn(**kwargs)), None
    with _output_capture() as output:
        try:
            result = _completed(fn(**kwargs))
        except BaseException as err:
            setattr(err, CAPTURE_ATTR, output.result(err))
            raise
    return result, output.result()


def remote_group(
    fn_holder: list[Any] | None = None,
    calls: list[tuple[dict[str, Any], bool]] | None = None,
    budget: float | None = None,
) -> list[RawOutcome]:
    """The group task: run ``calls`` (kwargs, capture) in order, one outcome each; with a
    ``budget``, stop taking calls once that many seconds have passed (fewer outcomes).

    Without arguments it runs nothing and returns ``[]``: a warm-up task
    (``ray_dispatch.warm_up``), which has the worker load this task's definition and set up
    Ray's serialization (it does so to send the result back) before the first real call."""
    if not calls or fn_holder is None:
        return []
    fn = _worker_function(fn_holder[0])
    outcomes: list[RawOutcome] = []
    started = time.perf_counter()
    for kwargs, capture in calls:
        outcomes.append(_run_one(fn, kwargs, capture))
        if budget is not None and time.perf_counter() - started >= budget:
            break
    return outcomes


def _run_one(fn: Callable[..., Any], kwargs: dict[str, Any], capture: bool) -> RawOutcome:
    started = time.perf_counter()
    output = _output_capture() if capture else None
    try:
        if output is None:
            value = _completed(fn(**kwargs))
        else:
            with output:
                value = _completed(fn(**kwargs))
    except Exception as err:  # noqa: BLE001 - the call's outcome, sent back to the driver
        seconds = time.perf_counter() - started
        text = "".join(traceback.format_exception(err))
        captured = None if output is None else output.result(err)
        if _sendable(err):
            return RAISED, err, captured, seconds, text
        return UNSENDABLE, (type(err).__qualname__, str(err)), captured, seconds, text
    seconds = time.perf_counter() - started
    return OK, value, None if output is None else output.result(), seconds, None


def _sendable(err: Exception) -> bool:
    cloudpickle = _ray().cloudpickle
    try:
        cloudpickle.loads(cloudpickle.dumps(err))
    except Exception:  # noqa: BLE001 - any pickling failure: send a description instead
        return False
    return True
