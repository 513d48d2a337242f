"""``FunctionNode``: a function pod bound to one input stream and to its databases.

* ``run()`` computes only the novel rows of the current input and records every row, a
  chunk of ``chunk_rows`` input rows at a time (``orcapod.nodes.node_run``; the engine's
  phases, writes and failure handling: ``orcapod.nodes.function_run``); ``refresh()`` makes
  the node identify its input again after an upstream node ran
  (``orcapod.nodes.function_input``).
* Identity, record paths and reading the stored rows (never computing) come from
  ``FunctionNodeView`` (``orcapod.nodes.function_view``): the current input's entry ids ->
  their records -> their results, in input order (``orcapod.nodes.node_store``).
* Paths (``orcapod.nodes.bindings``): records at ``(*function URI, "schema:<node pipeline
  hash>", "code:<code hash>")`` of the pipeline database (after a semantic edit of the function
  its rows are recomputed; old records stay, unmatched), failures at the same path under
  ``pipeline_database.at("_failures")``, results at the function URI of the result database;
  without a pipeline database, a private in-memory one. A filtered (None) result is recorded
  with a null ``__packet_id``.
* The node owns a copy of the pod (``with_executor``): setting ``node.executor`` never
  touches the user's pod or function.
* The run settings (``error_policy``, ``flush_policy``, ``work_claims``, ``chunk_rows``) are
  properties checked when set: ``error_policy`` takes an ``ErrorPolicy`` or its value
  (``"fail_fast"``), and a wrong type or value is an ``InputValidationError`` at the
  assignment, never a setting a run ignores or trips over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import CachedFunctionPod, FunctionPod, ResultCache
from orcapod.functions.identity_store import record_identity
from orcapod.nodes.bindings import NodeDatabases
from orcapod.nodes.function_input import NodeInput
from orcapod.nodes.function_stream import READ_AHEAD_ROWS, stream_function
from orcapod.nodes.function_view import FunctionNodeView
from orcapod.nodes.node_run import CHUNK_ROWS, run_node
from orcapod.nodes.run_settings import RunSettings, check_concurrency, warn_failed
from orcapod.nodes.summary import NodeRunSummary, NodeType
from orcapod.streams import ArrowTableStream
from orcapod.types import ErrorPolicy, FlushPolicy, WorkClaims
from orcapod.types.configs import enum_member

__all__ = ["FunctionNode"]


class FunctionNode(FunctionNodeView):
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
        self.error_policy = error_policy
        self.flush_policy = FlushPolicy()
        self.work_claims = WorkClaims()
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

    # -- settings (checked when set: a wrong value fails here, not in a later run) -----------

    @property
    def error_policy(self) -> ErrorPolicy:
        """What a run does when a row's function raises: ``ErrorPolicy.CONTINUE`` records the
        failure and goes on, ``ErrorPolicy.FAIL_FAST`` raises. Set it to the member or its
        value (``"continue"``, ``"fail_fast"``)."""
        return self._error_policy

    @error_policy.setter
    def error_policy(self, policy: ErrorPolicy | str) -> None:
        self._error_policy = enum_member(ErrorPolicy, policy, f"{self._what}error_policy")

    @property
    def flush_policy(self) -> FlushPolicy:
        """When a run commits what it finished (rows, bytes and age; see ``FlushPolicy``)."""
        return self._flush_policy

    @flush_policy.setter
    def flush_policy(self, policy: FlushPolicy) -> None:
        if not isinstance(policy, FlushPolicy):
            raise InputValidationError(
                f"{self._what}flush_policy must be a FlushPolicy, such as "
                f"FlushPolicy(rows=10_000, seconds=5.0), got {type(policy).__name__} {policy!r}"
            )
        self._flush_policy = policy

    @property
    def work_claims(self) -> WorkClaims | None:
        """How processes running this node on one persistent store share its missing rows
        (``orcapod.functions.engine.claims``); None: each process computes them all."""
        return self._work_claims

    @work_claims.setter
    def work_claims(self, claims: WorkClaims | None) -> None:
        if claims is not None and not isinstance(claims, WorkClaims):
            raise InputValidationError(
                f"{self._what}work_claims must be a WorkClaims, such as "
                "WorkClaims(lease_seconds=60.0), or None (no sharing), got "
                f"{type(claims).__name__} {claims!r}"
            )
        self._work_claims = claims

    @property
    def chunk_rows(self) -> int:
        """How many input rows a run identifies, looks up, computes and commits at a time."""
        return self._chunk_rows

    @chunk_rows.setter
    def chunk_rows(self, rows: int) -> None:
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
            raise InputValidationError(
                f"{self._what}chunk_rows must be a positive integer (default {CHUNK_ROWS}), "
                f"got {type(rows).__name__} {rows!r}"
            )
        self._chunk_rows = rows

    @property
    def _what(self) -> str:
        """How error messages name this node."""
        return f"node {self.label!r}: "

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
    def upstreams(self) -> tuple[Any, ...]:
        return (self._input.stream,)

    @upstreams.setter
    def upstreams(self, streams: Sequence[Any]) -> None:
        self._input = NodeInput.of_streams(self._pod, streams)
        self._view_cache = None

    def __repr__(self) -> str:
        return f"FunctionNode(label={self.label!r})"

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

    def flush(self) -> None:
        """Commit everything this node (and its result cache) has pending."""
        self._databases.flush()
