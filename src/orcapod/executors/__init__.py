"""Layer 6: executors run a packet function's callable, locally or on Ray, and capture its output.

Submodules with more public names: ``orcapod.executors.capture`` (``CapturedOutput``,
``PacketLoggerProtocol``) and ``orcapod.executors.protocols``.
"""

from orcapod.executors.local import LocalExecutor
from orcapod.executors.protocols import (
    PacketFunctionExecutorProtocol,
    PythonFunctionExecutorProtocol,
)
from orcapod.executors.ray import RayExecutor

__all__ = [
    "LocalExecutor",
    "PacketFunctionExecutorProtocol",
    "PythonFunctionExecutorProtocol",
    "RayExecutor",
]
