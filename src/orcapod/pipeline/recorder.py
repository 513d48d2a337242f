"""``BlockRecorder``: what one ``with pipeline:`` block recorded.

The pipeline hands a fresh recorder to ``orcapod.streams.tracking.recording`` each time its
``with`` block is entered. Pods and operators applied in that context (this thread or asyncio
task only — the hook is a ``contextvars`` variable) append an ``Invocation`` here. When the
block ends normally the pipeline takes the invocations; when it ends by an exception it drops
them, so a half-built block never reaches the graph.
"""

from __future__ import annotations

import threading

from orcapod.streams.tracking import Invocation

__all__ = ["BlockRecorder"]


class BlockRecorder:
    """Collects invocations in call order; safe to feed from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._invocations: list[Invocation] = []

    def record(self, invocation: Invocation) -> None:
        with self._lock:
            self._invocations.append(invocation)

    @property
    def invocations(self) -> tuple[Invocation, ...]:
        with self._lock:
            return tuple(self._invocations)

    def __len__(self) -> int:
        with self._lock:
            return len(self._invocations)
