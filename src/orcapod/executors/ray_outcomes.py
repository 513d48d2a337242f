"""How the outcome of a Ray task becomes what ``RayExecutor``'s caller gets back.

* Capture happens in the worker (``orcapod.executors.capture``) only when a logger is given;
  without a logger, worker output goes to Ray's usual log forwarding. A one-call task returns
  ``(result, captured)``; on failure the worker attaches the capture to the user's exception and
  re-raises THAT exception, so Ray's ``retry_exceptions`` (including a list of exception types)
  sees the real type. The driver takes ``RayTaskError.cause`` (the user's exception, original
  type and message), detaches the capture, hands it to the logger, and raises the exception
  chained ``from`` the Ray error (which carries the remote traceback): :func:`task_failure`.
* A grouped call's outcome comes back as a value (:class:`CallOutcome`); its exception
  is raised chained from a ``RemoteTraceback`` carrying the worker's traceback
  (:func:`settle_call`).
* Errors of Ray itself (a crashed worker, a lost object, a cancelled task) become
  ``ExecutorError``; so do a return value and an exception that cannot make the trip back from
  the worker, naming the function (and, for the value, the row).
* A function that cannot be pickled cannot be shipped at all: :func:`unshippable` is the
  ``ExecutorError`` raised at its first call (no row is dispatched), naming the function and
  the variables Ray's inspection found unpicklable (``LOCK``), with the fix - not Ray's
  whole inspection report.
* Text orcapod keeps from Ray (stored tracebacks, messages) goes through :func:`clean_text`:
  Ray colours its task headers and reports with terminal escape codes, and leaves the
  ``^^^^`` markers of the frames it hides; neither belongs in a stored log or failure. A
  one-call task's exception is chained from a ``RemoteTraceback`` of the cleaned Ray text
  (:func:`task_failure`), as a grouped call's is, not from Ray's ``RayTaskError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, NamedTuple

from orcapod.errors import ExecutorError
from orcapod.executors.capture import CapturedOutput, PacketLoggerProtocol, record_capture
from orcapod.executors.ray_cluster import short_repr, unsendable_return
from orcapod.executors.ray_dispatch import QueuedCall
from orcapod.executors.ray_worker import CAPTURE_ATTR, OK, UNSENDABLE, RawOutcome

__all__ = [
    "CallOutcome",
    "RemoteTraceback",
    "clean_text",
    "function_name",
    "settle_call",
    "task_failure",
    "task_success",
    "unshippable",
]

#: a terminal escape sequence (colours, bold: ``ESC [ ... m`` and the other CSI sequences)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
#: a line of a traceback that only marks the code above it (``   ^^^^^``)
_CARETS = re.compile(r"\s*[~^]+\s*")
#: a variable Ray's inspection found unpicklable: ``FailTuple(LOCK [path=LOCK, obj=...``
_FAILED_VARIABLE = re.compile(r"FailTuple\(\S+ \[path=([^,\]]+)")
#: the kind of variables Ray's inspection lists next: ``Detected 1 global variables.``
_DETECTED = re.compile(r"Detected \d+ (global|nonlocal) variables")
#: a variable it checks: ``    Serializing 'LOCK' <unlocked _thread.lock object ...>...``
_CHECKED = re.compile(r"Serializing '([^']+)'")


class CallOutcome(NamedTuple):
    """What one call of a group task did (``ray_worker``'s plain tuple, named)."""

    status: str  # ray_worker.OK, RAISED or UNSENDABLE
    value: Any  # the result; the user's exception; or (type name, message) when unsendable
    captured: CapturedOutput | None
    seconds: float
    traceback: str | None  # the worker's formatted traceback of a failure

    @classmethod
    def of(cls, raw: RawOutcome) -> CallOutcome:
        return cls(*raw)


class RemoteTraceback(Exception):
    """Carries the worker's traceback; set as ``__cause__`` of a grouped call's exception (the
    one-call path chains Ray's ``RayTaskError`` instead). Never raised by itself."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nthe call failed in a Ray worker:\n{self.text}"


def clean_text(text: str) -> str:
    """``text`` from Ray without terminal escape codes, and without the ``^^^^`` lines of the
    frames Ray hid (a marker line is kept only under the code line of a frame)."""
    lines = _ANSI.sub("", text).split("\n")
    kept = [
        line
        for i, line in enumerate(lines)
        if not _CARETS.fullmatch(line)
        or (
            i >= 2
            and not _CARETS.fullmatch(lines[i - 1])
            and lines[i - 2].lstrip().startswith("File ")
        )
    ]
    return "\n".join(kept)


def unshippable(fn: Callable[..., Any], err: BaseException) -> ExecutorError:
    """The error for ``fn``, which Ray could not serialise (``err``: what ``ray.put`` raised;
    its text holds Ray's inspection of the function's variables)."""
    report = _ANSI.sub("", str(err))
    kinds: dict[str, str] = {}
    kind = "attribute"
    for line in report.split("\n"):
        detected = _DETECTED.search(line)
        if detected is not None:
            kind = "global" if detected.group(1) == "global" else "closure variable"
        checked = _CHECKED.search(line)
        if checked is not None:
            kinds.setdefault(checked.group(1), kind)
    names = list(dict.fromkeys(_FAILED_VARIABLE.findall(report)))
    cause = err.__cause__ if err.__cause__ is not None else err
    why = f"{type(cause).__name__}: {_ANSI.sub('', str(cause)).splitlines()[0]}"
    culprit = ""
    if names:
        named = " and ".join(f"the {kinds.get(n, 'attribute')} {n!r}" for n in names)
        culprit = f" because of {named} it uses"
    return ExecutorError(
        f"the function {function_name(fn)!r} cannot be sent to Ray workers: it cannot be "
        f"pickled{culprit} ({why}). No row was called. Make it picklable: create such objects "
        "(locks, open files, connections, clients) inside the function, or pass what they "
        "need as arguments, instead of holding them in module globals, closures or attributes."
    )


def function_name(fn: Callable[..., Any]) -> str:
    """The name a message uses for ``fn``."""
    return getattr(fn, "__name__", type(fn).__name__)


def settle_call(fn: Callable[..., Any], call: QueuedCall, outcome: CallOutcome) -> None:
    """Settle ``call``'s future with one call's outcome from a group task."""
    if call.logger is not None and outcome.captured is not None:
        try:
            record_capture(call.logger, outcome.captured)
        except ExecutorError as err:
            call.future.set_exception(err)
            return
    if outcome.status == OK:
        call.future.set_result(outcome.value)
        return
    error = outcome.value
    if outcome.status == UNSENDABLE:
        type_name, message = outcome.value
        error = ExecutorError(
            f"{function_name(fn)!r} raised {type_name}: {message}, an exception "
            "that cannot be sent back from the Ray worker (pickling it failed); make the "
            "exception picklable (its __init__ must accept the args it passes to Exception)."
        )
    error.__cause__ = RemoteTraceback(outcome.traceback or "")
    call.future.set_exception(error)


def task_success(
    value: tuple[Any, CapturedOutput | None], logger: PacketLoggerProtocol | None
) -> Any:
    """The result of a one-call task, after handing its capture to ``logger``."""
    result, captured = value
    if logger is not None and captured is not None:
        record_capture(logger, captured)
    return result


def task_failure(
    ray: ModuleType,
    fn: Callable[..., Any],
    err: Exception,
    logger: PacketLoggerProtocol | None,
    kwargs: Mapping[str, Any],
) -> BaseException:
    """The exception to raise for a failed task, after handing its capture to ``logger``;
    chained from a ``RemoteTraceback`` of Ray's report (the worker's traceback, cleaned) for
    a task that raised, else from Ray's error as it is."""
    text = clean_text(str(err))
    returned = _task_failure(ray, fn, err, text, logger, kwargs)
    returned.__cause__ = (
        RemoteTraceback(text) if isinstance(err, ray.exceptions.RayTaskError) else err
    )
    return returned


def _task_failure(
    ray: ModuleType,
    fn: Callable[..., Any],
    err: Exception,
    text: str,
    logger: PacketLoggerProtocol | None,
    kwargs: Mapping[str, Any],
) -> BaseException:
    cause = err.cause if isinstance(err, ray.exceptions.RayTaskError) else None
    if isinstance(cause, Exception) and unsendable_return(ray, err):
        if logger is not None:
            record_capture(logger, CapturedOutput(traceback=text, success=False))
        return ExecutorError(
            f"{function_name(fn)!r} returned a value that cannot be sent back from the Ray "
            f"worker ({type(cause).__name__}: {cause}) for the row {short_repr(dict(kwargs))}. "
            "Return picklable values (numbers, strings, arrays, dicts of them), not locks, "
            "open files or connections."
        )
    if isinstance(cause, BaseException):
        captured = cause.__dict__.pop(CAPTURE_ATTR, None)
        if logger is not None:
            if not isinstance(captured, CapturedOutput):
                captured = CapturedOutput(traceback=text, success=False)
            record_capture(logger, captured)
        return cause
    if logger is not None:
        record_capture(logger, CapturedOutput(traceback=text, success=False))
    return ExecutorError(
        f"Ray failed to run {function_name(fn)!r}: {type(err).__name__}: {text}. "
        "This is a failure of Ray (worker crash, lost object, cancellation), not of the "
        "function; check the Ray logs and the cluster's resources, then retry."
    )
