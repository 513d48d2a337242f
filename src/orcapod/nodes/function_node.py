"""``FunctionNode``: a function pod bound to one input stream and to its databases.

* ``run()`` computes only the novel rows of the current input and records every row
  (``orcapod.nodes.function_run``: the engine's phases, writes and failure handling);
  ``refresh()`` makes the node identify its input again after an upstream node ran
  (``orcapod.nodes.function_input``).
* ``iter_packets()`` / ``as_table()`` read and never compute: the current input's entry ids ->
  their records -> their results, in input order (``orcapod.nodes.node_store``); rows of other
  inputs sharing the table, and rows not yet recorded, filtered or failed, never appear. The
  rows read are kept until the next ``run()``, ``refresh()`` or ``clear_cache()``.
* Paths (``orcapod.nodes.bindings``): records at ``(*function URI, "schema:<node pipeline
  hash>", "code:<code hash>")`` of the pipeline database (after a semantic edit of the function
  its rows are recomputed; old records stay, unmatched), failures at the same path under
  ``pipeline_database.at("_failures")``, results at the function URI of the result database;
  without a pipeline database, a private in-memory one. A filtered (None) result is recorded
  with a null ``__packet_id``.
* The node owns a copy of the pod (``with_executor``): setting ``node.executor`` never
  touches the user's pod or function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import CachedFunctionPod, FunctionPod, ResultCache
from orcapod.functions.engine.claims import WorkClaims
from orcapod.functions.engine.identify import entry_id_of
from orcapod.functions.identity_store import record_identity
from orcapod.nodes.bindings import NodeDatabases
from orcapod.nodes.explain import Explanation, explain_function_node
from orcapod.nodes.function_input import NodeInput
from orcapod.nodes.function_run import RunSettings, check_concurrency, warn_failed
from orcapod.nodes.function_stream import READ_AHEAD_ROWS, stream_function
from orcapod.nodes.lineage import Lineage, node_lineage
from orcapod.nodes.node_run import CHUNK_ROWS, run_node
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.nodes.verify import VerificationReport, verify_function_node
from orcapod.sources.derived import DerivedSource
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import CacheMatch, ColumnConfig, ContentHash, ErrorPolicy, FlushPolicy, Schema

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
        self._input = NodeInput(self._pod, input_stream)
        self._label = label
        self.error_policy = ErrorPolicy(error_policy)
        #: when a run commits what it finished (rows, bytes and age; see ``FlushPolicy``)
        self.flush_policy = FlushPolicy()
        #: how processes running this node on one persistent store share its missing rows
        #: (``orcapod.functions.engine.claims``); None: each process computes them all
        self.work_claims: WorkClaims | None = WorkClaims()
        #: input rows a run identifies, looks up, computes and commits at a time
        self.chunk_rows = CHUNK_ROWS
        self._databases = NodeDatabases(self._pod)
        self._view_cache: ArrowTableStream | None = None
        if pipeline_database is not None:
            self.attach_databases(pipeline_database, result_database)
        elif result_database is not None:
            raise InputValidationError(
                "FunctionNode got a result_database without a pipeline_database; pass "
                "pipeline_database too (results default to pipeline_database.at('_result'))"
            )

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
        return self._label or self._function_pod.computed_label()

    @label.setter
    def label(self, value: str | None) -> None:
        self._label = value

    @property
    def upstreams(self) -> tuple[Any, ...]:
        return (self._input.stream,)

    @upstreams.setter
    def upstreams(self, streams: Sequence[Any]) -> None:
        self._input = NodeInput.of_streams(self._pod, streams)
        self._view_cache = None

    def __repr__(self) -> str:
        return f"FunctionNode(label={self.label!r})"

    # -- identity ----------------------------------------------------------------------------

    def pipeline_hash(self) -> ContentHash:
        """Schema and topology only: the function's URI and the input's pipeline hash."""
        return self._input.pipeline_hash()

    def content_hash(self) -> ContentHash:
        """Includes data: the function's identity (code) and the input's content hash."""
        return self._input.content_hash()

    @property
    def node_identity_path(self) -> tuple[str, ...]:
        return (*self._packet_function.uri, "schema:" + self.pipeline_hash().to_string())

    @property
    def record_path(self) -> tuple[str, ...]:
        """Where this node's pipeline records (and failures) are stored."""
        return (*self.node_identity_path, "code:" + self._packet_function.code_hash)

    def compute_pipeline_entry_id(self, tag: Tag, packet: Packet) -> str:
        """hash(tag + system tags + input packet hash) of one row."""
        return entry_id_of(tag, packet)

    def _store(self) -> NodeStore:
        return self._databases.store(self.record_path)

    # -- run ---------------------------------------------------------------------------------

    def run(self, max_concurrency: int | None = None) -> NodeRunSummary:
        """Compute every novel row of the current input; returns what happened per row."""
        check_concurrency(max_concurrency)
        self._view_cache = None
        settings = RunSettings(
            self.label, self._pod, self._input.read, self.error_policy, self.cache_match,
            self.flush_policy, self.work_claims,
        )  # fmt: skip
        try:
            store = self._store()
            record_identity(store.cache.database, self._packet_function)  # for explain()
            summary = run_node(settings, self._input, store, max_concurrency, self.chunk_rows)
        finally:
            self._view_cache = None
        warn_failed(summary, stacklevel=2)
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
        check_concurrency(max_concurrency)
        self._view_cache = None
        # chunks are small and arrive over time: no work claims (each process streams its own)
        settings = RunSettings(
            self.label, self._pod, self._input.read, self.error_policy, self.cache_match,
            self.flush_policy, None,
        )  # fmt: skip
        store = self._store()
        record_identity(store.cache.database, self._packet_function)  # for explain()
        summary = await stream_function(
            settings,
            store,
            store.template(self._input.full_tag_schema()),
            self._input.read.keys(),
            inputs,
            output,
            max_concurrency=max_concurrency,
            read_rows=min(self.flush_policy.rows, READ_AHEAD_ROWS),
            chunk_rows=chunk_rows,
        )
        self._view_cache = None
        warn_failed(summary, stacklevel=2)
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
        self._input.refresh()
        self._view_cache = None

    def clear_cache(self) -> None:
        """Forget the stored rows read by ``iter_packets``/``as_table`` (read again on next
        use); needed only to see rows another node or process stored since the last read."""
        self._view_cache = None

    def flush(self) -> None:
        """Commit everything this node (and its result cache) has pending."""
        self._databases.flush()

    # -- reproducibility (orcapod.nodes.explain / lineage / verify) -----------------------------

    def explain(self) -> Explanation:
        """Why rows would be (before a run) or were computed, grouped by reason; read-only."""
        return explain_function_node(
            self.label, self._input.plan(), self._store(), self._packet_function, self.cache_match
        )

    def lineage(self, row: Any) -> Lineage:
        """The upstream path of one output row (its tag, a ``Tag`` or a ``(tag, packet)``
        row): functions with code hash, git state, executor and time; operators; source rows."""
        return node_lineage(self, row)

    def verify(
        self,
        sample: float | None = None,
        tags: Any = None,
        *,
        rel_tol: float = 1e-9,
        abs_tol: float = 0.0,
        seed: int | None = None,
        record: bool = True,
    ) -> VerificationReport:
        """Recompute a sample of stored rows (default 1 %) or the rows matching ``tags``
        without storing them; compare with the stored outputs and record the verification."""
        return verify_function_node(
            self.label, self._input.read, self._store(), self._pod, sample=sample, tags=tags,
            rel_tol=rel_tol, abs_tol=abs_tol, seed=seed, record=record,
        )  # fmt: skip

    # -- reading -------------------------------------------------------------------------------

    def failures(self) -> pa.Table:
        """Rows of the current input whose last attempt failed and that are still not done:
        tag and system tag columns, ``__pipeline_entry_id``, ``__input_packet_hash``,
        ``__error_type``, ``__error_message``, ``__traceback``, ``__failed_at`` (the latest
        attempt per row, in input order). Empty when nothing is failing."""
        return self._store().failures(self._input.plan())

    def _template_stream(self) -> ArrowTableStream:
        return self._input.stream_of(self._store().template(self._input.full_tag_schema()))

    @property
    def stream(self) -> ArrowTableStream:
        """The stored results of the current input's rows, in input order (never computes):
        what ``iter_packets`` and ``as_table`` read."""
        if self._view_cache is None:
            store, inp = self._store(), self._input
            table = store.stored_table(inp.plan(), store.template(inp.full_tag_schema()))
            self._view_cache = inp.stream_of(
                table,
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
            tag_schema, _ = self._input.stream.output_schema()
            return Schema(tag_schema), Schema(self._packet_function.output_packet_schema)
        return self._template_stream().output_schema(config)

    def get_all_records(
        self, columns: ColumnsArg = None, all_info: bool = False
    ) -> pa.Table | None:
        """The current input's pipeline records joined with their results (None if none).

        Visible: tags and output columns; ``system_tags``, ``source`` (input and output
        ``_source_*``), ``meta`` (``__*``: record and result provenance) and ``context`` add
        the rest, in the order tags, system tags, input source info, record meta, result
        meta, outputs, output source info, ``__pod_ts``. When an output column has the name
        of an input packet column, the output's ``_source_<col>`` is kept.
        """
        config = ColumnConfig.handle_config(columns, all_info)
        return self._store().all_records(self._input.plan(), config)

    def as_source(self, source_id: str | None = None) -> DerivedSource:
        """The node's stored results as a new source (reads records, never computes)."""
        return DerivedSource(self, source_id)
