"""Layer 10: pipelines — record pod/operator calls, compile them into persistent nodes, run.

``Pipeline`` (recording, compile, run, save/load), orchestrators (``SyncOrchestrator``,
``AsyncOrchestrator``), the run summary (``PipelineRunSummary``), observers
(``PipelineObserver`` protocol, ``NoOpObserver``, ``StatusObserver``, ``ProgressObserver``,
``CompositeObserver``, ``LoggingObserver``, ``RunRecorder``), ``LoadStatus`` /
``ReadOnlyNode`` for loaded pipelines, and ``StoreView`` (with ``PipelineInfo``, ``NodeInfo``,
``RunInfo``) to read a store without the user's code.

``ProgressObserver`` is imported when first named (module ``__getattr__``): it is built on
rich, which importing orcapod does not import.
"""

from typing import TYPE_CHECKING

from orcapod._lazy import lazy_exports
from orcapod.pipeline.log_observer import LoggingObserver
from orcapod.pipeline.observers import (
    CompositeObserver,
    NodeState,
    NoOpObserver,
    PipelineObserver,
    StatusObserver,
)
from orcapod.pipeline.orchestrator import AsyncOrchestrator, SyncOrchestrator
from orcapod.pipeline.pipeline import Pipeline
from orcapod.pipeline.run_recorder import RunRecorder
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.pipeline.serialization import LoadStatus, ReadOnlyNode
from orcapod.pipeline.store_view import NodeInfo, PipelineInfo, RunInfo, StoreView

if TYPE_CHECKING:
    from orcapod.pipeline.progress import ProgressObserver

__all__ = [
    "AsyncOrchestrator",
    "CompositeObserver",
    "LoadStatus",
    "LoggingObserver",
    "NoOpObserver",
    "NodeInfo",
    "NodeState",
    "Pipeline",
    "PipelineInfo",
    "PipelineObserver",
    "PipelineRunSummary",
    "ProgressObserver",
    "ReadOnlyNode",
    "RunInfo",
    "RunRecorder",
    "StatusObserver",
    "StoreView",
    "SyncOrchestrator",
]


_LAZY = {
    "ProgressObserver": "orcapod.pipeline.progress",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
