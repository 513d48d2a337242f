"""The recording hook: how a ``Pipeline`` learns which pods and operators were applied.

Operators and function pods call ``record_invocation`` every time they are applied to
streams. Recording is opt-in per context: a ``Pipeline`` enters ``recording(recorder)`` in its
``with`` block, which pushes the recorder onto a ``contextvars`` variable — so state is per
pipeline and per thread / asyncio task, never a process-global list, and two pipelines built
concurrently never record into each other. Nothing below the pipeline layer imports the
pipeline: it only implements ``InvocationRecorder``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

__all__ = [
    "Invocation",
    "InvocationKind",
    "InvocationRecorder",
    "no_tracking",
    "record_invocation",
    "recording",
]


class InvocationKind(StrEnum):
    OPERATOR = "operator"
    FUNCTION_POD = "function_pod"


@dataclass(frozen=True, eq=False)
class Invocation:
    """One application of a pod/operator to input streams, producing ``output``."""

    kind: InvocationKind
    pod: Any
    inputs: tuple[Any, ...]
    output: Any
    label: str | None = None


class InvocationRecorder(Protocol):
    def record(self, invocation: Invocation) -> None: ...


_RECORDERS: ContextVar[tuple[InvocationRecorder, ...]] = ContextVar("orcapod_recorders", default=())


def record_invocation(
    kind: InvocationKind,
    pod: Any,
    inputs: tuple[Any, ...],
    output: Any,
    label: str | None = None,
) -> None:
    """Tell every active recorder in this context about an invocation (no-op when none)."""
    recorders = _RECORDERS.get()
    if recorders:
        invocation = Invocation(kind, pod, tuple(inputs), output, label)
        for recorder in recorders:
            recorder.record(invocation)


@contextmanager
def recording(recorder: InvocationRecorder) -> Iterator[None]:
    """Record invocations made in this context (nested recorders all receive them)."""
    token = _RECORDERS.set((*_RECORDERS.get(), recorder))
    try:
        yield
    finally:
        _RECORDERS.reset(token)


@contextmanager
def no_tracking() -> Iterator[None]:
    """Suspend recording in this context (e.g. for exploratory calls inside a pipeline block)."""
    token = _RECORDERS.set(())
    try:
        yield
    finally:
        _RECORDERS.reset(token)
