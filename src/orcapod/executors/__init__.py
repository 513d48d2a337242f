"""Layer 6: executors run a packet function's callable, locally or on Ray, and capture its output.

Submodules with more public names: ``orcapod.executors.capture`` (``CapturedOutput``,
``PacketLoggerProtocol``) and ``orcapod.executors.protocols``.

``RayExecutor`` is imported when first named (module ``__getattr__``), so importing orcapod
does not load the Ray dispatch code (Ray itself is imported only when an executor runs).
"""

from typing import TYPE_CHECKING

from orcapod._lazy import lazy_exports
from orcapod.executors.local import LocalExecutor
from orcapod.executors.protocols import (
    PacketFunctionExecutorProtocol,
    PythonFunctionExecutorProtocol,
)

if TYPE_CHECKING:
    from orcapod.executors.ray import RayExecutor

__all__ = [
    "LocalExecutor",
    "PacketFunctionExecutorProtocol",
    "PythonFunctionExecutorProtocol",
    "RayExecutor",
]


_LAZY = {
    "RayExecutor": "orcapod.executors.ray",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
