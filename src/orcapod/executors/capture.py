"""Per-call capture of stdout, stderr, Python log records and the traceback of a user function.

Approach. Nothing is redirected process-wide per call. A :class:`ContextVar` holds the buffers of
the call running in the current context (thread or asyncio task). Two pieces of plumbing read it:

* ``sys.stdout`` / ``sys.stderr`` are wrapped ONCE in a transparent :class:`_RoutingStream`
  proxy. A write goes to the current call's buffer when the writing context is inside a
  capture, and falls through to the wrapped real stream otherwise, so other threads, other
  tasks and code outside any executor call see their output exactly as before. If something
  (pytest, Jupyter) later replaces ``sys.stdout``, the proxy is re-installed around the new
  stream at the next capture; the proxy is never removed (removing it while another thread
  captures would be a race).
* One :class:`logging.Handler` is added to the root logger, once. It keeps a record only when
  the record is emitted inside a capture, and then only for that call. Outside a capture it
  does nothing, except that it stands in for :data:`logging.lastResort` when no other handler
  would have seen the record, so adding it does not silence unconfigured warnings.

Decisions:

* Capture routes instead of teeing: a captured print does not also reach the terminal; the
  logger is its destination. Log records, in contrast, still reach every other handler as
  configured (the capture handler is just one more handler).
* Which log records are captured is decided by the logging configuration (logger levels); the
  capture never lowers a level, because levels are process-global.
* Contexts follow Python's rules: ``asyncio`` tasks and ``asyncio.to_thread`` inherit the
  capture; a bare ``threading.Thread`` started by user code does not (its output goes to the real
  stream). Output written at the C / file-descriptor level is not captured in-process.
* ``python_logs`` is newline-joined ``LEVEL:logger:message`` lines (the stored log format,
  kept stable so stored logs stay readable); ``traceback`` is the formatted exception, or None
  on success.
"""

from __future__ import annotations

import io
import logging
import socket
import sys
import threading
import time
import traceback
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TextIO, runtime_checkable

from orcapod.errors import ExecutorError

__all__ = [
    "HOST",
    "CapturedOutput",
    "OutputCapture",
    "PacketLoggerProtocol",
    "format_traceback",
    "record_capture",
]

LOG_FORMAT = "%(levelname)s:%(name)s:%(message)s"
#: this process's host name (``CapturedOutput.host`` of the calls captured here)
HOST = socket.gethostname()


def format_traceback(error: BaseException) -> str:
    """The formatted traceback of ``error`` (as stored with a failed call)."""
    return "".join(traceback.format_exception(error))


@dataclass(frozen=True)
class CapturedOutput:
    """What one call of a user function wrote, logged and raised. Plain, picklable values."""

    stdout: str = ""
    stderr: str = ""
    python_logs: str = ""
    traceback: str | None = None
    success: bool = True
    duration: float = 0.0  #: wall-clock seconds spent in the call
    host: str = ""  #: the host the call ran on (the worker's, for a remote executor)


@runtime_checkable
class PacketLoggerProtocol(Protocol):
    """Receives the capture of one call; passed to executors as ``logger=``.

    ``record`` is called exactly once per call, on success and on failure (before the user's
    exception is re-raised). It may be called from a worker thread (``submit_callable``), so an
    implementation shared between calls must be thread-safe.
    """

    def record(self, captured: CapturedOutput) -> None: ...


_CURRENT: ContextVar[OutputCapture | None] = ContextVar("orcapod_capture", default=None)
_INSTALL_LOCK = threading.Lock()


class _RoutingStream:
    """Text stream proxy: writes go to the current capture's buffer, else to ``target``."""

    def __init__(self, target: TextIO | None, channel: str) -> None:
        self._target = target  # None (e.g. pythonw): uncaptured writes are dropped, like print
        self._channel = channel

    def _buffer(self) -> io.StringIO | None:
        buffers = _CURRENT.get()
        if buffers is None or not buffers.active:
            return None
        return buffers.stream(self._channel)

    def write(self, text: str) -> int:
        buffer = self._buffer()
        if buffer is not None:
            return buffer.write(text)
        if self._target is None:
            return len(text)
        return self._target.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._buffer() is None and self._target is not None:
            self._target.flush()

    def __getattr__(self, name: str) -> Any:
        # everything else (fileno, isatty, encoding, buffer, ...) is the real stream's
        return getattr(self._target, name)


class _ContextLogHandler(logging.Handler):
    """Root handler that keeps records emitted inside a capture, for that capture only."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        buffers = _CURRENT.get()
        if buffers is not None and buffers.active:
            buffers.log(self.format(record))
        elif _only_handler_for(record):
            # keep Python's default "no handler configured" behaviour intact
            last_resort = logging.lastResort
            if last_resort is not None and record.levelno >= last_resort.level:
                last_resort.handle(record)


def _only_handler_for(record: logging.LogRecord) -> bool:
    """True when no handler but ours would have seen ``record`` (so lastResort should)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None:
        if any(not isinstance(h, _ContextLogHandler) for h in logger.handlers):
            return False
        if not logger.propagate:
            return True
        logger = logger.parent
    return True


_ROOT = logging.getLogger()
#: what the last install put in place: (stdout proxy, stderr proxy, log handler)
_INSTALLED: list[Any] = [None, None, None]


def install_capture() -> None:
    """Install the stream proxies and the log handler if they are not (or no longer) in place.

    Idempotent and cheap (three identity checks when nothing changed); called at the start of
    every capture.
    """
    out, err, handler = _INSTALLED
    if sys.stdout is out and sys.stderr is err and handler in _ROOT.handlers:
        return
    with _INSTALL_LOCK:
        if not isinstance(sys.stdout, _RoutingStream):
            sys.stdout = _RoutingStream(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _RoutingStream):
            sys.stderr = _RoutingStream(sys.stderr, "stderr")
        handler = next((h for h in _ROOT.handlers if isinstance(h, _ContextLogHandler)), None)
        if handler is None:
            handler = _ContextLogHandler()
            _ROOT.addHandler(handler)
        _INSTALLED[:] = [sys.stdout, sys.stderr, handler]


class OutputCapture:
    """Context manager capturing one call; usable in sync code and inside a coroutine.

    ``with OutputCapture() as cap: ...`` then ``cap.result(error)`` builds the
    :class:`CapturedOutput`. Enter and exit must happen in the same context (same thread, or
    the same asyncio task), which a ``with`` block guarantees.
    """

    __slots__ = ("_ended", "_started", "_token", "active", "logs", "stderr", "stdout")

    def __init__(self) -> None:
        #: while False, the capture is in place but lets everything through (see ``resume``)
        self.active = True
        # the buffers are made on first use: a silent call allocates none
        self.stdout: io.StringIO | None = None
        self.stderr: io.StringIO | None = None
        self.logs: list[str] | None = None
        self._token: Any = None
        self._started = 0.0
        self._ended: float | None = None

    def stream(self, channel: str) -> io.StringIO:
        """The buffer of ``channel`` ("stdout" or "stderr")."""
        if channel == "stdout":
            if self.stdout is None:
                self.stdout = io.StringIO()
            return self.stdout
        if self.stderr is None:
            self.stderr = io.StringIO()
        return self.stderr

    def log(self, line: str) -> None:
        if self.logs is None:
            self.logs = []
        self.logs.append(line)

    def __enter__(self) -> OutputCapture:
        install_capture()
        self._started = time.perf_counter()
        self._token = _CURRENT.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ended = time.perf_counter()
        _CURRENT.reset(self._token)

    def resume(self) -> None:
        """Put the capture in place in this context (pair with ``pause``). For a series of
        calls in one thread, put it in place once and switch ``active`` on around each call:
        nothing is allocated per call, and what runs between the calls is not captured."""
        install_capture()
        self._token = _CURRENT.set(self)

    def pause(self) -> None:
        """Take the capture out of this context (after ``resume``)."""
        _CURRENT.reset(self._token)

    def take(self) -> tuple[str | None, str | None, str | None]:
        """``(stdout, stderr, python_logs)`` captured so far (None: nothing), emptying the
        buffers: one
        capture reused for a series of calls in one thread costs
        no object per call (``resume``, call, ``pause``, ``take``)."""
        out = None if self.stdout is None else self.stdout.getvalue() or None
        err = None if self.stderr is None else self.stderr.getvalue() or None
        logs = None if self.logs is None else "\n".join(self.logs)
        self.stdout = self.stderr = None
        self.logs = None
        return out, err, logs

    def result(self, error: BaseException | None = None) -> CapturedOutput:
        """The capture so far; ``error`` (the user's exception) marks it failed."""
        ended = self._ended if self._ended is not None else time.perf_counter()
        buffers = self
        # built without the frozen dataclass's __init__ (one setattr per field): this runs
        # once per captured call, so its cost is the capture's per-row cost
        captured = object.__new__(CapturedOutput)
        captured.__dict__.update(
            stdout="" if buffers.stdout is None else buffers.stdout.getvalue(),
            stderr="" if buffers.stderr is None else buffers.stderr.getvalue(),
            python_logs="" if buffers.logs is None else "\n".join(buffers.logs),
            traceback=None if error is None else format_traceback(error),
            success=error is None,
            duration=ended - self._started,
            host=HOST,
        )
        return captured


def record_capture(logger: PacketLoggerProtocol, captured: CapturedOutput) -> None:
    """Hand ``captured`` to ``logger``; a failing logger is reported as an ``ExecutorError``."""
    try:
        logger.record(captured)
    except Exception as err:
        raise ExecutorError(
            f"the packet logger {logger!r} failed in record(): {err!r}. The call's captured "
            "output was not recorded; fix the logger (record() must accept a CapturedOutput)."
        ) from err
