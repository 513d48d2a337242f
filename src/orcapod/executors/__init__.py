"""Layer 6: executors run a packet function's callable, locally or on Ray, and capture its output.

Submodules with more public names: ``orcapod.executors.capture`` (``CapturedOutput``,
``PacketLoggerProtocol``) and ``orcapod.executors.protocols``.

``RayExecutor`` is imported when first named (module ``__getattr__``), so importing orcapod
does not load the Ray dispatch code (Ray itself is imported only when an executor runs).
"""

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'orcapod.executors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
