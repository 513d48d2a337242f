"""Layer 10: pipelines — record pod/operator calls, compile them into persistent nodes, run.

``Pipeline`` (recording, compile, run, save/load), orchestrators (``SyncOrchestrator``,
``AsyncOrchestrator``), the run summary (``PipelineRunSummary``), observers
(``PipelineObserver`` protocol, ``NoOpObserver``, ``StatusObserver``, ``ProgressObserver``,
``CompositeObserver``) and ``LoadStatus`` / ``ReadOnlyNode`` for loaded pipelines.
"""

from orcapod.pipeline.observers import (
    CompositeObserver,
    NodeState,
    NoOpObserver,
    PipelineObserver,
    ProgressObserver,
    StatusObserver,
)
from orcapod.pipeline.orchestrator import AsyncOrchestrator, SyncOrchestrator
from orcapod.pipeline.pipeline import Pipeline
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.pipeline.serialization import LoadStatus, ReadOnlyNode

__all__ = [
    "AsyncOrchestrator",
    "CompositeObserver",
    "LoadStatus",
    "NoOpObserver",
    "NodeState",
    "Pipeline",
    "PipelineObserver",
    "PipelineRunSummary",
    "ProgressObserver",
    "ReadOnlyNode",
    "StatusObserver",
    "SyncOrchestrator",
]
