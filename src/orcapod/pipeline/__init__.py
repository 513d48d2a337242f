"""Layer 10: pipelines — record pod/operator calls, compile them into persistent nodes, run.

``Pipeline`` (recording, compile, run, save/load), ``SyncOrchestrator``, the run summary
(``PipelineRunSummary``), observers (``PipelineObserver`` protocol, ``NoOpObserver``,
``StatusObserver``) and ``LoadStatus`` / ``ReadOnlyNode`` for loaded pipelines.
"""

from orcapod.pipeline.observers import NodeState, NoOpObserver, PipelineObserver, StatusObserver
from orcapod.pipeline.orchestrator import SyncOrchestrator
from orcapod.pipeline.pipeline import Pipeline
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.pipeline.serialization import LoadStatus, ReadOnlyNode

__all__ = [
    "LoadStatus",
    "NoOpObserver",
    "NodeState",
    "Pipeline",
    "PipelineObserver",
    "PipelineRunSummary",
    "ReadOnlyNode",
    "StatusObserver",
    "SyncOrchestrator",
]
