"""What a function node's run needs of its node (``RunSettings``), the outcomes a run gives
each distinct entry, the run's writer (``run_writer``) and the checks and warnings around a
run (``check_concurrency``, ``warn_failed``); shared by the synchronous run
(``orcapod.nodes.function_run``) and the streaming one (``orcapod.nodes.function_stream``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, TypeVar

from orcapod.errors import FailedRowsWarning, InputValidationError
from orcapod.functions import FunctionPod
from orcapod.functions.engine.write import RunWriter
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.summary import NodeRunSummary
from orcapod.types import CacheMatch, ErrorPolicy, FlushPolicy, WorkClaims
from orcapod.types.columns import FAILURE_ID, PIPELINE_ENTRY_ID

__all__ = [
    "COMPUTED",
    "FAILED",
    "FILTERED",
    "REUSED",
    "SKIPPED",
    "SPILL_ROWS",
    "RunSettings",
    "check_concurrency",
    "run_writer",
    "warn_failed",
]

#: what happened to a distinct entry (or packet) in one run; ``SKIPPED``: nothing (yet) - an
#: entry never called (an inactive function, a run stopped early) counts as filtered
COMPUTED, REUSED, FILTERED, FAILED, SKIPPED = range(5)

#: hashes of the packets a run computed that it holds in memory before it spills a run of
#: them to a temporary file (``IdHashIndex(spill_rows=...)``)
SPILL_ROWS = 1 << 19

W = TypeVar("W", bound=RunWriter)


@dataclass(frozen=True)
class RunSettings:
    """What a run needs to know of its node."""

    label: str
    pod: FunctionPod  #: the node's own pod (its executor is the node's)
    read_stream: Any  #: the input projected onto the function's parameters
    error_policy: ErrorPolicy
    cache_match: CacheMatch
    flush_policy: FlushPolicy
    #: how processes sharing a persistent store split the missing rows (None: never)
    work_claims: WorkClaims | None = None


def run_writer(settings: RunSettings, store: NodeStore, writer_type: type[W]) -> W:
    """The batched writer of one run of the node into its store."""
    pf = settings.pod.packet_function
    return writer_type(
        cache=store.cache,
        variation=pf.get_function_variation_data,
        execution=pf.get_execution_data,
        pipeline_db=store.pipeline_db,
        failure_db=store.failure_db,
        record_path=store.record_path,
        record_id_column=PIPELINE_ENTRY_ID,
        failure_id_column=FAILURE_ID,
        policy=settings.flush_policy,
    )


def check_concurrency(max_concurrency: int | None) -> None:
    """Raise ``InputValidationError`` unless ``max_concurrency`` is None or a positive int."""
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or max_concurrency < 1
    ):
        raise InputValidationError(
            f"max_concurrency must be a positive integer or None, got {max_concurrency!r}"
        )


def warn_failed(summary: NodeRunSummary, stacklevel: int = 2) -> None:
    """Warn once (``FailedRowsWarning``) when rows of the run failed."""
    if summary.failed:
        warnings.warn(
            f"{summary.failed} of {summary.total} rows of node {summary.label!r} failed; "
            f"they are recorded and the next run retries them. List them with "
            f"node.failures() (in a pipeline: pipeline.nodes[{summary.label!r}].failures()).",
            FailedRowsWarning,
            stacklevel=stacklevel + 1,
        )
