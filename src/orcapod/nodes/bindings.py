"""``NodeDatabases``: where a function node keeps its data.

* pipeline records: the pipeline database given to the node (in a pipeline, its scope of the
  store), at the node's record path;
* failures: the same path under ``pipeline_database.at("_failures")``;
* results: the result database (default ``pipeline_database.at("_result")``; in a pipeline, the
  store's shared results area), through the node's ``CachedFunctionPod`` and its
  ``ResultCache``.

Without a pipeline database the node keeps everything in a private ``InMemoryArrowDatabase``,
made on first use, so it behaves the same, only not persistently.
"""

from __future__ import annotations

from orcapod.databases import ArrowDatabase, InMemoryArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import CachedFunctionPod, FunctionPod
from orcapod.nodes.node_store import NodeStore

__all__ = ["NodeDatabases"]


class NodeDatabases:
    """The databases of one function node (see the module docstring)."""

    def __init__(self, pod: FunctionPod) -> None:
        self._pod = pod
        self.pipeline: ArrowDatabase | None = None
        self.result: ArrowDatabase | None = None
        self._cached: CachedFunctionPod | None = None

    def attach(
        self, pipeline_database: ArrowDatabase, result_database: ArrowDatabase | None = None
    ) -> None:
        for name, db in (("pipeline", pipeline_database), ("result", result_database)):
            if db is not None and not isinstance(db, ArrowDatabase):
                raise InputValidationError(
                    f"{name}_database must be an ArrowDatabase (e.g. DeltaTableDatabase, "
                    f"InMemoryArrowDatabase), got {type(db).__name__}"
                )
        self.pipeline = pipeline_database
        self.result = result_database or pipeline_database.at("_result")
        self._cached = None

    def cached_pod(self) -> CachedFunctionPod:
        """The node's pod wrapped in its result cache (made on first use)."""
        if self._cached is None:
            if self.pipeline is None:
                self.attach(InMemoryArrowDatabase())
            assert self.result is not None
            self._cached = CachedFunctionPod(self._pod, self.result)
        return self._cached

    def store(self, record_path: tuple[str, ...]) -> NodeStore:
        """What the node has stored, at ``record_path``."""
        cached = self.cached_pod()
        assert self.pipeline is not None
        return NodeStore(
            pipeline_db=self.pipeline,
            failure_db=self.pipeline.at("_failures"),
            cache=cached.result_cache,
            record_path=record_path,
            output_schema=self._pod.packet_function.output_packet_schema,
        )

    def flush(self) -> None:
        for db in (self.pipeline, self.result):
            if db is not None:
                db.flush()
