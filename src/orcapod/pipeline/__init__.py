"""Layer 10: pipelines — record pod/operator calls, compile them into persistent nodes, run.

``Pipeline`` (recording, compile, run, save/load), orchestrators (``SyncOrchestrator``,
``AsyncOrchestrator``), the run summary (``PipelineRunSummary``), observers
(``PipelineObserver`` protocol, ``NoOpObserver``, ``StatusObserver``, ``ProgressObserver``,
``CompositeObserver``, ``LoggingObserver``, ``RunRecorder``), ``LoadStatus`` /
``ReadOnlyNode`` for loaded pipelines, and ``StoreView`` (with ``PipelineInfo``, ``NodeInfo``,
``RunInfo``) to read a store without the user's code.
"""

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
from orcapod.pipeline.progress import ProgressObserver
from orcapod.pipeline.run_recorder import RunRecorder
from orcapod.pipeline.run_summary import PipelineRunSummary
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
