"""Layer 10: pipelines — record pod/operator calls, compile them into persistent nodes, run.

``Pipeline`` (recording, compile, run, save/load), orchestrators (``SyncOrchestrator``,
``AsyncOrchestrator``), the run summary (``PipelineRunSummary``), observers
(``PipelineObserver`` protocol, ``NoOpObserver``, ``StatusObserver``, ``ProgressObserver``,
``CompositeObserver``, ``LoggingObserver``, ``RunRecorder``), ``LoadStatus`` /
``ReadOnlyNode`` for loaded pipelines, and ``StoreView`` (with ``PipelineInfo``, ``NodeInfo``,
``RunInfo``) to read a store without the user's code.

``ProgressObserver`` is imported when first named (module ``__getattr__``): it is built on
rich, which importing orcapod does not import. So are ``StoreView`` (with ``PipelineInfo``,
``NodeInfo``, ``RunInfo``) and ``LoadStatus`` / ``ReadOnlyNode``: reading a store and loading
a saved pipeline are what the ``orcapod`` command and ``Pipeline.load`` do, not what a
program building and running pipelines needs, so importing orcapod does not load them.
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

if TYPE_CHECKING:
    from orcapod.pipeline.progress import ProgressObserver
    from orcapod.pipeline.serialization import LoadStatus, ReadOnlyNode
    from orcapod.pipeline.store_view import NodeInfo, PipelineInfo, RunInfo, StoreView

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
    "LoadStatus": "orcapod.pipeline.serialization",
    "NodeInfo": "orcapod.pipeline.store_view",
    "PipelineInfo": "orcapod.pipeline.store_view",
    "ProgressObserver": "orcapod.pipeline.progress",
    "ReadOnlyNode": "orcapod.pipeline.serialization",
    "RunInfo": "orcapod.pipeline.store_view",
    "StoreView": "orcapod.pipeline.store_view",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals(), __all__)
