"""``FunctionNode``: a function pod bound to one input stream and to its databases.

* Rows are identified for the whole input at once (``orcapod.functions.engine.identify``):
  the input packet hash of every row (of the packet projected onto the function's
  parameters) and its pipeline entry id = hash(tag + system tags + input packet hash);
  ``compute_pipeline_entry_id(tag, packet)`` is the one-row form. Entry ids never depend on
  other rows, so adding rows leaves old ids (and their records) untouched.
* ``run()`` computes only the novel rows and records every row (``orcapod.nodes.function_run``
  describes the phases, the writes and the failure handling); ``refresh()`` makes the node
  identify its input again after an upstream node ran.
* ``iter_packets()`` / ``as_table()`` read and never compute: the current input's entry ids ->
  their records -> their results, in input order (``orcapod.nodes.node_store``); rows of other
  inputs sharing the table never appear; rows not yet recorded, filtered or failed are absent.
  The rows read are kept until the next ``run()``, ``refresh()`` or ``clear_cache()``.
* ``failures()``: the latest failure of each of the current input's rows still not done.

Decisions:

* Paths. Pipeline records live at ``(*function URI, "schema:<node pipeline hash>",
  "code:<code hash>")`` of the pipeline database; failures at the same path under
  ``pipeline_database.at("_failures")``; results at the function URI of the result database
  (in a pipeline, the store's shared results area). The code-hash segment keeps records in
  step with the result cache's default ``CacheMatch.CODE`` tier: after a semantic edit of the
  function its rows are recomputed (old records stay, unmatched) instead of serving results
  of the old code.
* Without a pipeline database the node keeps its records in a private
  ``InMemoryArrowDatabase``, so it behaves the same, only not persistently.
* A filtered (None) result is recorded with a null ``__packet_id`` (and stored in the result
  cache as filtered), so it is neither recomputed nor yielded.
* ``get_all_records`` covers the current input's records joined with their results, like
  ``iter_packets``; None when there are none. When an output column has the name of an input
  packet column, the output's ``_source_<col>`` is kept and the input's is dropped there.
* The node owns a copy of the pod (``with_executor``): setting ``node.executor`` never
  touches the user's pod or function.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase
from orcapod.errors import (
    FailedRowsWarning,
    InputValidationError,
)
from orcapod.functions import CachedFunctionPod, FunctionPod, ResultCache
from orcapod.functions.engine.identify import InputPlan, entry_id_of
from orcapod.nodes.bindings import NodeDatabases
from orcapod.nodes.function_run import FunctionRun, RunSettings
from orcapod.nodes.function_stream import READ_AHEAD_ROWS, stream_function
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.operator_node import is_immutable_stream
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.sources.derived import DerivedSource
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import (
    CacheMatch,
    ColumnConfig,
    ContentHash,
    ErrorPolicy,
    FlushPolicy,
    Schema,
)

__all__ = ["FunctionNode"]


class FunctionNode(StreamBase):
    """A function pod applied to one input stream, persisted and incremental."""

    node_type = NodeType.FUNCTION

    def __init__(
        self,
        function_pod: Any,
        input_stream: Any,
        pipeline_database: ArrowDatabase | None = None,
        result_database: ArrowDatabase | None = None,
        label: str | None = None,
        error_policy: ErrorPolicy | str = ErrorPolicy.CONTINUE,
    ) -> None:
        if isinstance(function_pod, CachedFunctionPod):
            function_pod = function_pod.function_pod  # the node keeps its own result cache
        if not isinstance(function_pod, FunctionPod):
            raise InputValidationError(
                f"FunctionNode needs a FunctionPod, got {type(function_pod).__name__}; wrap "
                "the function with @function_pod(...) and pass its .pod"
            )
        self._function_pod = function_pod
        # the node's own copy: setting node.executor never mutates the user's pod or function
        self._pod: FunctionPod = function_pod.with_executor(function_pod.executor)
        self._packet_function = self._pod.packet_function
        self._input: Any = input_stream
        self._check_input(input_stream)
        #: what the function reads: the input projected onto its parameters
        self._read: Any = self._pod.project_input(input_stream)
        self._label = label
        self.error_policy = ErrorPolicy(error_policy)
        #: when a run commits what it finished (rows and age; see ``FlushPolicy``)
        self.flush_policy = FlushPolicy()
        self._databases = NodeDatabases(self._pod)
        self._plan_cache: InputPlan | None = None
        self._view_cache: ArrowTableStream | None = None
        self._hashes: dict[str, ContentHash] = {}
        if pipeline_database is not None:
            self.attach_databases(pipeline_database, result_database)
        elif result_database is not None:
            raise InputValidationError(
                "FunctionNode got a result_database without a pipeline_database; pass "
                "pipeline_database too (results default to pipeline_database.at('_result'))"
            )

    # -- construction ----------------------------------------------------------------------

    def _check_input(self, stream: Any) -> None:
        tag_schema, packet_schema = stream.output_schema()
        self._pod.validate_packet_schema(packet_schema, tag_schema)

    def attach_databases(
        self, pipeline_database: ArrowDatabase, result_database: ArrowDatabase | None = None
    ) -> None:
        """Store provenance in ``pipeline_database`` and results in ``result_database``
        (default: ``pipeline_database.at("_result")``)."""
        self._databases.attach(pipeline_database, result_database)
        self._view_cache = None

    @property
    def pipeline_database(self) -> ArrowDatabase | None:
        return self._databases.pipeline

    @property
    def result_database(self) -> ArrowDatabase | None:
        return self._databases.result

    @property
    def result_cache(self) -> ResultCache:
        return self._databases.cached_pod().result_cache

    @property
    def function_pod(self) -> FunctionPod:
        """The pod the node was built from (never modified by the node)."""
        return self._function_pod

    @property
    def cached_function_pod(self) -> CachedFunctionPod:
        """The node's own pod, wrapped in its result cache."""
        return self._databases.cached_pod()

    @property
    def cache_match(self) -> CacheMatch:
        return self._databases.cached_pod().cache_match

    @property
    def packet_function(self) -> Any:
        """The node's own copy of the pod's packet function."""
        return self._packet_function

    @property
    def executor(self) -> Any:
        return self._packet_function.executor

    @executor.setter
    def executor(self, executor: Any) -> None:
        self._packet_function.set_executor(executor)

    @property
    def label(self) -> str:
        if self._label:
            return self._label
        return self._function_pod.computed_label()

    @label.setter
    def label(self, value: str | None) -> None:
        self._label = value

    @property
    def upstreams(self) -> tuple[Any, ...]:
        return (self._input,)

    @upstreams.setter
    def upstreams(self, streams: Sequence[Any]) -> None:
        streams = tuple(streams)
        if len(streams) != 1:
            raise InputValidationError(
                f"a FunctionNode has exactly one input stream, got {len(streams)}; join "
                "several streams first"
            )
        self._check_input(streams[0])
        self._input = streams[0]
        self._read = self._pod.project_input(streams[0])
        self._plan_cache = None
        self._view_cache = None
        self._hashes.clear()

    def __repr__(self) -> str:
        return f"FunctionNode(label={self.label!r})"

    # -- identity ----------------------------------------------------------------------------

    def pipeline_hash(self) -> ContentHash:
        """Schema and topology only: the function's URI and the input's pipeline hash."""
        if "pipeline" not in self._hashes:
            self._hashes["pipeline"] = self._pod.output_pipeline_hash(self._read)
        return self._hashes["pipeline"]

    def content_hash(self) -> ContentHash:
        """Includes data: the function's identity (code) and the input's content hash."""
        if "content" not in self._hashes:
            self._hashes["content"] = self._pod.output_content_hash(self._read)
        return self._hashes["content"]

    @property
    def node_identity_path(self) -> tuple[str, ...]:
        return (*self._packet_function.uri, "schema:" + self.pipeline_hash().to_string())

    @property
    def record_path(self) -> tuple[str, ...]:
        """Where this node's pipeline records (and failures) are stored."""
        return (*self.node_identity_path, "code:" + self._packet_function.code_hash)

    # -- entry ids -----------------------------------------------------------------------------

    def compute_pipeline_entry_id(self, tag: Tag, packet: Packet) -> str:
        """hash(tag + system tags + input packet hash) of one row."""
        return entry_id_of(tag, packet)

    def _plan(self) -> InputPlan:
        if self._plan_cache is None:
            self._plan_cache = InputPlan(self._read)
        return self._plan_cache

    def _store(self) -> NodeStore:
        return self._databases.store(self.record_path)

    # -- run ---------------------------------------------------------------------------------

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        """Compute every novel row of the current input; returns what happened per row."""
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool)
            or not isinstance(max_concurrency, int)
            or max_concurrency < 1
        ):
            raise InputValidationError(
                f"max_concurrency must be a positive integer or None, got {max_concurrency!r}"
            )
        self._view_cache = None
        try:
            settings = RunSettings(
                self.label,
                self._pod,
                self._read,
                self.error_policy,
                self.cache_match,
                self.flush_policy,
            )
            summary = FunctionRun(settings, self._plan(), self._store()).run(max_concurrency)
        finally:
            self._view_cache = None
        if summary.failed:
            warnings.warn(
                f"{summary.failed} of {summary.total} rows of node {self.label!r} failed; "
                f"they are recorded and the next run retries them. List them with "
                f"node.failures() (in a pipeline: pipeline.{self.label}.failures()).",
                FailedRowsWarning,
                stacklevel=2,
            )
        return summary

    async def async_execute(
        self,
        inputs: Sequence[Any],
        output: Any,
        *,
        max_concurrency: int | None = None,
        chunk_rows: int = 64,
    ) -> NodeRunSummary:
        """Streaming run: rows from ``inputs[0]``, each finished row sent to ``output`` once
        stored (``orcapod.nodes.function_stream``)."""
        self._view_cache = None
        settings = RunSettings(
            self.label,
            self._pod,
            self._read,
            self.error_policy,
            self.cache_match,
            self.flush_policy,
        )
        summary = await stream_function(
            settings,
            self._store(),
            self._template(),
            self._read.keys(),
            inputs,
            output,
            max_concurrency=max_concurrency,
            read_rows=min(self.flush_policy.rows, READ_AHEAD_ROWS),
            chunk_rows=chunk_rows,
        )
        self._view_cache = None
        if summary.failed:
            warnings.warn(
                f"{summary.failed} of {summary.total} rows of node {self.label!r} failed; "
                "they are recorded and the next run retries them (node.failures()).",
                FailedRowsWarning,
                stacklevel=2,
            )
        return summary

    def execute(self, max_concurrency: int | None = None) -> list[tuple[Tag, Packet]]:
        """``run()``, then the node's rows (in input order)."""
        self.run(max_concurrency)
        return self.flow()

    @property
    def runnable(self) -> bool:
        return True

    def refresh(self) -> None:
        """Forget the input rows identified and the stored rows read (both read again on next
        use): after an upstream node ran, or another process stored rows. An input that can
        never change (no function node above it) keeps its identification."""
        if not is_immutable_stream(self._input):
            self._read = self._pod.project_input(self._input)  # a projection reads once
            self._plan_cache = None
            self._hashes.clear()
        self._view_cache = None

    def clear_cache(self) -> None:
        """Forget the stored rows read by ``iter_packets``/``as_table`` (read again on next
        use); needed only to see rows another node or process stored since the last read."""
        self._view_cache = None

    def flush(self) -> None:
        """Commit everything this node (and its result cache) has pending."""
        self._databases.flush()

    # -- reading -------------------------------------------------------------------------------

    def failures(self) -> pa.Table:
        """Rows of the current input whose last attempt failed and that are still not done:
        tag and system tag columns, ``__pipeline_entry_id``, ``__input_packet_hash``,
        ``__error_type``, ``__error_message``, ``__traceback``, ``__failed_at`` (the latest
        attempt per row, in input order). Empty when nothing is failing."""
        return self._store().failures(self._plan())

    def _template(self) -> pa.Table:
        tag_schema, _ = self._input.output_schema(ColumnConfig(system_tags=True))
        return self._store().template(tag_schema)

    def _template_stream(self) -> ArrowTableStream:
        tag_keys, _ = self._input.keys()
        return ArrowTableStream(self._template(), tag_keys)

    def _view(self) -> ArrowTableStream:
        if self._view_cache is None:
            tag_keys, _ = self._input.keys()
            self._view_cache = ArrowTableStream(
                self._store().stored_table(self._plan(), self._template()),
                tag_keys,
                identity=self.content_hash(),
                pipeline_identity=self.pipeline_hash(),
                label=self.label,
            )
        return self._view_cache

    def keys(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._template_stream().keys(columns, all_info)

    def output_schema(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        config = ColumnConfig.handle_config(columns, all_info)
        if config == ColumnConfig():
            tag_schema, _ = self._input.output_schema()
            return Schema(tag_schema), Schema(self._packet_function.output_packet_schema)
        return self._template_stream().output_schema(config)

    def iter_packets(self) -> Iterator[tuple[Tag, Packet]]:
        """The stored results of the current input's rows, in input order (never computes)."""
        return self._view().iter_packets()

    def as_table(self, columns: ColumnsArg = None, all_info: bool = False) -> pa.Table:
        return self._view().as_table(columns, all_info)

    def get_all_records(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> pa.Table | None:
        """The current input's pipeline records joined with their results (None if none).

        Visible: tags and output columns; ``system_tags``, ``source`` (input and output
        ``_source_*``), ``meta`` (``__*``: record and result provenance) and ``context`` add
        the rest, in the order tags, system tags, input source info, record meta, result
        meta, outputs, output source info, ``__pod_ts``.
        """
        config = ColumnConfig.handle_config(columns, all_info)
        return self._store().all_records(self._plan(), config)

    def as_source(self, source_id: str | None = None) -> DerivedSource:
        """The node's stored results as a new source (reads records, never computes)."""
        return DerivedSource(self, source_id)
