"""``Pipeline``: record pod and operator calls, compile them to persistent nodes, run them.

    pipeline = Pipeline("study", DeltaTableDatabase("./store"))
    with pipeline:
        joined = subjects.join(sessions)
        bmi = compute_bmi.pod(joined)
    summary = pipeline.run()          # computes only rows not computed before
    pipeline.compute_bmi.as_table()   # nodes are attributes, by label

Recording. ``with pipeline:`` enters ``orcapod.streams.tracking.recording`` with a fresh
``BlockRecorder``; the hook is a ``contextvars`` variable, so only calls made in this thread /
asyncio task reach this pipeline — there is no process-global list, and two pipelines built
concurrently never see each other's calls. Leaving the block normally hands its calls to the
pipeline (and compiles when ``auto_compile``); leaving it by an exception drops them and
compiles nothing, so a half-built block never becomes nodes. A block that ends normally
without recording anything issues a ``NothingRecordedWarning`` (pods applied before the
block, or a plain ``fn(...)`` call instead of ``fn.pod(stream)``, are the usual causes). When
the compile at the end of a block fails (say a duplicate ``label=``, see
``orcapod.pipeline.graph``), the block's calls are dropped too and the error propagates: fix
the block and run it again.

Compiling (see ``orcapod.pipeline.graph``) is incremental and idempotent: nodes are keyed by
content hash, labels never change once given. Databases: nodes write under
``pipeline_database.at(*name)``; function results go to ``result_database`` when given, else
to the store's one results area ``pipeline_database.at("_result")``, keyed by function
identity: every pipeline in a store shares it, so renaming a pipeline, or two pipelines
applying the same function to the same packets, computes nothing twice.

Executors. The pipeline never touches the user's pods or functions: every executor change is
made on the *node* (``FunctionNode.executor``). At compile a function node without an executor
gets its own ``LocalExecutor()``. ``run(executor=…)`` gives every function node
``executor.with_options(**opts)`` — a new instance each — except nodes whose executor the
user set by hand after compile (``pipeline.<label>.executor = …``): a per-node override always
wins. ``run()`` without an executor restores each node's compile-time executor (again unless
overridden), so a one-off ``run(executor=RayExecutor())`` does not leak into the next run.

Every run writes its run history row and the catalog of its nodes to the store
(``_runs``, ``_catalog``), stores a log row per executed packet (``logs=False`` turns that
off) and shows progress bars in a terminal (``progress=False`` turns them off); the store can
then be read without the user's code (``orcapod.pipeline.store_view``).

Running flushes every node and both databases at the end, even when a node raised (a flush
failure then is attached as a note to the node's error, which propagates). When rows
failed, exactly one ``FailedRowsWarning`` is issued per run (the nodes' own warnings are
folded into it), with the count and how to list the rows.

Decisions:

* The progress bars (``orcapod.pipeline.progress``, built on rich) are imported by ``run``
  only when it draws them (stderr is a terminal), so importing orcapod does not import rich.
  Saving and loading (``orcapod.pipeline.serialization``, which reads stores through
  ``orcapod.pipeline.store_view``) and ``RayExecutor`` (for ``run(executor="ray")``) are
  loaded on first use too: a program that never calls them does not import them.
* ``config.executor == ExecutorType.ASYNC_CHANNELS`` runs the ``AsyncOrchestrator``: rows
  stream between nodes through bounded channels (see ``orcapod.pipeline.orchestrator``).
* Operator nodes get ``operator_cache_mode`` (keyword, default ``CacheMode.OFF``); change one
  node with ``pipeline.<label>.cache_mode = CacheMode.LOG``.
* A label that collides with a ``Pipeline`` attribute (a function named ``load``, ``run``,
  ``save``, ``nodes``...) is still a node, reached as ``pipeline.nodes["load"]`` (as a pandas
  column named ``count`` is ``df["count"]``): the attribute keeps its meaning, and compile
  neither refuses such a label nor warns, because a label is also the node's name in the store
  and the CLI and ``load`` is a natural function name. Every message that shows how to reach a
  node writes ``pipeline.nodes[...]`` for such a label (``arguments.node_reference``).
* Arguments are checked at the call that passes them (``orcapod.pipeline.arguments``).
* The failed-rows folding uses ``warnings.catch_warnings``, which is process-wide state in
  Python 3.11: two pipelines *running* at the same moment in two threads may fold each other's
  warnings (recording in threads is unaffected).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from orcapod._lazy import lazy_module
from orcapod.databases import ArrowDatabase
from orcapod.errors import (
    FailedRowsWarning,
    NothingRecordedWarning,
    OrcapodError,
    PipelineError,
)
from orcapod.executors import LocalExecutor
from orcapod.nodes.function_node import FunctionNode
from orcapod.nodes.operator_node import OperatorNode
from orcapod.nodes.summary import NodeType
from orcapod.pipeline.arguments import (
    check_database,
    check_node_config,
    check_run_arguments,
    executor_argument,
    file_path,
    missing_node,
    name_parts,
    node_reference,
)
from orcapod.pipeline.graph import PipelineGraph
from orcapod.pipeline.log_observer import LoggingObserver
from orcapod.pipeline.observers import CompositeObserver, PipelineObserver
from orcapod.pipeline.orchestrator import AsyncOrchestrator, SyncOrchestrator
from orcapod.pipeline.recorder import BlockRecorder
from orcapod.pipeline.run_recorder import RunRecorder
from orcapod.pipeline.run_summary import PipelineRunSummary
from orcapod.streams.tracking import Invocation, InvocationKind, recording
from orcapod.types import CacheMode, ErrorPolicy, ExecutorType, NodeConfig, PipelineConfig
from orcapod.types.configs import enum_member

if TYPE_CHECKING:
    import networkx as nx

    from orcapod.pipeline import progress as progress_bars
    from orcapod.pipeline import serialization
else:
    progress_bars = lazy_module("orcapod.pipeline.progress")
    serialization = lazy_module("orcapod.pipeline.serialization")

__all__ = ["Pipeline"]


def _replay(caught: Sequence[warnings.WarningMessage]) -> None:
    """Re-issue warnings caught during a run, except the nodes' failed-rows warnings (the
    pipeline issues one for the whole run)."""
    for w in caught:
        if not issubclass(w.category, FailedRowsWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _draws_progress(observer: Any) -> bool:
    """True when the user's observer already draws progress bars (one live display only)."""
    if isinstance(observer, CompositeObserver):
        return any(_draws_progress(o) for o in observer.observers)
    # a ProgressObserver exists only if its module was imported (it is not, with orcapod)
    loaded = sys.modules.get("orcapod.pipeline.progress")
    return loaded is not None and isinstance(observer, loaded.ProgressObserver)


def base_label(inv: Invocation) -> str:
    """The label a node gets before collisions are resolved."""
    if inv.label:
        return inv.label
    if inv.kind is InvocationKind.FUNCTION_POD:
        return str(inv.pod.computed_label())
    own = getattr(inv.pod, "label", None)
    return own if isinstance(own, str) and own else type(inv.pod).__name__


class Pipeline:
    """A named, persistent, incremental pipeline (see the module docstring).

    Nodes are attributes named by label (``pipeline.compute_bmi``) and the items of
    ``pipeline.nodes``. A label that is also a ``Pipeline`` attribute (``load``, ``run``,
    ``save``, ``nodes``, ``name``...) or not a Python identifier is reached only as
    ``pipeline.nodes["load"]``."""

    def __init__(
        self,
        name: str | Sequence[str],
        pipeline_database: ArrowDatabase,
        result_database: ArrowDatabase | None = None,
        auto_compile: bool = True,
        *,
        operator_cache_mode: CacheMode | str = CacheMode.OFF,
        error_policy: ErrorPolicy | str = ErrorPolicy.CONTINUE,
    ) -> None:
        self._name = name_parts(name)
        check_database(pipeline_database, "pipeline_database")
        if result_database is not None:
            check_database(result_database, "result_database")
        if not isinstance(auto_compile, bool):
            raise PipelineError(f"auto_compile must be True or False, got {auto_compile!r}")
        self._database = pipeline_database
        self._scoped_database = pipeline_database.at(*self._name)
        self._result_database = result_database
        self.auto_compile = auto_compile
        self._operator_cache_mode = enum_member(
            CacheMode, operator_cache_mode, "Pipeline(operator_cache_mode=...)"
        )
        self._error_policy = enum_member(ErrorPolicy, error_policy, "Pipeline(error_policy=...)")
        self._lock = threading.RLock()
        self._blocks: ContextVar[tuple[tuple[BlockRecorder, AbstractContextManager[None]], ...]]
        self._blocks = ContextVar(f"orcapod_pipeline_blocks_{id(self)}", default=())
        self._pending: list[Invocation] = []
        self._graph = PipelineGraph()
        self._compiled_executors: dict[str, Any] = {}
        self._assigned_executors: dict[str, Any] = {}
        self._node_configs: dict[str, NodeConfig] = {}
        self._load_statuses: dict[str, Any] = {}
        self._pods: dict[str, Any] = {}

    # Identity and databases ------------------------------------------------------------------
    @property
    def name(self) -> str:
        return "/".join(self._name)

    @property
    def name_parts(self) -> tuple[str, ...]:
        return self._name

    @property
    def pipeline_database(self) -> ArrowDatabase:
        """The database given by the user (nodes write under ``.at(*name)`` of it)."""
        return self._database

    @property
    def scoped_database(self) -> ArrowDatabase:
        """``pipeline_database.at(*name)``: where this pipeline's nodes write."""
        return self._scoped_database

    @property
    def result_database(self) -> ArrowDatabase | None:
        """The explicit result database, or None (results in the store's shared
        ``_result`` area)."""
        return self._result_database

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={self._graph.labels()})"

    # Recording ------------------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        block = BlockRecorder()
        context = recording(block)
        context.__enter__()
        self._blocks.set((*self._blocks.get(), (block, context)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack = self._blocks.get()
        if not stack:
            raise PipelineError("Pipeline.__exit__ without a matching __enter__ in this context")
        block, context = stack[-1]
        self._blocks.set(stack[:-1])
        context.__exit__(exc_type, exc, tb)
        if exc_type is not None:
            return  # the block failed: drop what it recorded, compile nothing
        recorded = block.invocations
        if not recorded:
            warnings.warn(
                f"pipeline {self.name!r}: the `with pipeline:` block recorded nothing. Only "
                "pods and operators applied inside the block, in the same thread, are "
                "recorded: call fn.pod(stream) (not fn(...)) and stream.join(...) etc. "
                "inside it",
                NothingRecordedWarning,
                stacklevel=2,
            )
            return
        with self._lock:
            self._pending.extend(recorded)
        if self.auto_compile:
            try:
                self.compile()
            except BaseException:
                with self._lock:  # drop this block's calls: a fixed block is recorded anew
                    ids = {id(inv) for inv in recorded}
                    self._pending = [inv for inv in self._pending if id(inv) not in ids]
                raise

    # Compiling ------------------------------------------------------------------------------
    @property
    def is_compiled(self) -> bool:
        """True when every recorded call has become a node."""
        with self._lock:
            return not self._pending

    def compile(self) -> list[str]:
        """Turn recorded calls into nodes; return the labels of the new nodes."""
        with self._lock:
            pending = list(self._pending)
            new = self._graph.compile(
                pending, self._make_function_node, self._make_operator_node, base_label
            )
            self._pending.clear()
            for label in new:
                self._register_executor(label, self._graph[label])
            self._pods = {k: v for k, v in self._pods.items() if k in self._graph}
            return new

    def _make_function_node(self, inv: Invocation, upstreams: Sequence[Any], label: str) -> Any:
        if len(upstreams) != 1:
            raise PipelineError(
                f"function pod {label!r} was recorded with {len(upstreams)} inputs; pods join "
                "several inputs before recording, so this is a bug in the pod"
            )
        return self.new_function_node(inv.pod, upstreams[0], label)

    def _make_operator_node(self, inv: Invocation, upstreams: Sequence[Any], label: str) -> Any:
        return self.new_operator_node(inv.pod, upstreams, label)

    def new_function_node(self, pod: Any, upstream: Any, label: str) -> FunctionNode:
        """A function node bound to this pipeline's databases (not yet in the graph)."""
        self._pods[label] = pod
        return FunctionNode(
            pod,
            upstream,
            pipeline_database=self._scoped_database,
            result_database=self._result_database or self._database.at("_result"),
            label=label,
            error_policy=self._error_policy,
        )

    def new_operator_node(
        self,
        operator: Any,
        upstreams: Sequence[Any],
        label: str,
        cache_mode: CacheMode | None = None,
    ) -> OperatorNode:
        """An operator node bound to this pipeline's database (not yet in the graph)."""
        return OperatorNode(
            operator,
            upstreams,
            pipeline_database=self._scoped_database,
            cache_mode=cache_mode if cache_mode is not None else self._operator_cache_mode,
            label=label,
        )

    # Nodes ----------------------------------------------------------------------------------
    @property
    def nodes(self) -> Mapping[str, Any]:
        """Compiled nodes by label, in topological order (a read-only snapshot)."""
        return MappingProxyType(self._graph.nodes)

    @property
    def graph(self) -> nx.DiGraph:
        """The compiled DAG: vertices are labels (attributes ``node`` and ``node_type``)."""
        return self._graph.to_networkx()

    def node_type(self, label: str) -> NodeType:
        """The kind of the node ``label`` (source, operator or function)."""
        self._check_label(label)
        return self._graph.node_type(label)

    def _check_label(self, label: Any) -> None:
        if not isinstance(label, str) or label not in self._graph:
            raise missing_node(self.name, label, self._graph.labels())

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        graph = self.__dict__.get("_graph")
        if graph is not None and name in graph:
            return graph[name]
        labels = graph.labels() if graph is not None else []
        raise AttributeError(
            f"Pipeline {self.name!r} has no attribute or node {name!r} (nodes: {labels}); "
            "nodes appear after the `with` block ends or after compile(). Any node is "
            "pipeline.nodes[label], also one whose label is a Pipeline attribute ('run', 'load')"
        )

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._graph.labels()})

    def set_node_config(self, label: str, config: NodeConfig) -> None:
        """Per-node run settings (``max_concurrency``) that win over ``PipelineConfig``."""
        self._check_label(label)
        check_node_config(label, config)
        self._node_configs[label] = config

    @property
    def load_statuses(self) -> Mapping[str, Any]:
        """For a loaded pipeline, each node's ``LoadStatus`` (empty for a built one)."""
        return MappingProxyType(dict(self._load_statuses))

    # Running --------------------------------------------------------------------------------
    def _function_nodes(self) -> list[tuple[str, Any]]:
        return [
            (label, node)
            for label, node_type, node in self._graph.ordered()
            if node_type is NodeType.FUNCTION
        ]

    def _assign_executors(self, executor: Any | None, opts: Mapping[str, Any]) -> None:
        for label, node in self._function_nodes():
            current = node.executor
            if current is not self._assigned_executors.get(label):
                continue  # the user set this node's executor by hand: it wins
            if executor is not None:
                new = executor.with_options(**opts)
            elif opts:
                new = self._compiled_executors[label].with_options(**opts)
            else:
                new = self._compiled_executors[label]
            node.executor = new
            self._assigned_executors[label] = node.executor

    def _check_runnable(self) -> None:
        blocked = [
            f"{label} ({node.load_reason})"
            for label, _, node in self._graph.ordered()
            if not node.runnable
        ]
        if blocked:
            raise PipelineError(
                f"pipeline {self.name!r} cannot run: nodes loaded read-only: "
                + "; ".join(blocked)
                + ". Each reason says what is missing: fix that and load the pipeline again"
            )

    def run(
        self,
        executor: Any | None = None,
        execution_engine_opts: Mapping[str, Any] | None = None,
        config: PipelineConfig | None = None,
        observer: PipelineObserver | None = None,
        *,
        progress: bool = True,
        logs: bool = True,
    ) -> PipelineRunSummary:
        """Run every node in topological order; return the per-node summary.

        Besides ``observer``, every run records itself in the store (run history and catalog,
        ``orcapod.pipeline.run_recorder``); ``logs=True`` also stores each call's captured
        output (``orcapod.pipeline.log_observer``); ``progress=True`` shows progress bars when
        stderr is a terminal (``orcapod.pipeline.progress``).
        ``executor``: an executor instance, or the name ``"local"`` / ``"ray"`` (a default
        ``LocalExecutor()`` / ``RayExecutor()``)."""
        if self._blocks.get():
            raise PipelineError(
                f"pipeline {self.name!r}: run() was called inside its own `with pipeline:` "
                "block, where nothing is compiled yet; call run() after the block ends"
            )
        check_run_arguments(execution_engine_opts, config, observer, progress, logs)
        executor = executor_argument(executor)
        config = config if config is not None else PipelineConfig()
        orchestrator: SyncOrchestrator | AsyncOrchestrator = (
            SyncOrchestrator()
            if config.executor is ExecutorType.SYNCHRONOUS
            else AsyncOrchestrator()
        )
        with self._lock:
            if self._pending:
                self.compile()
            self._check_runnable()
            for database in (self._database, self._result_database):
                check_writable = getattr(database, "check_writable", None)
                if check_writable is not None:  # a local store: fail before computing
                    check_writable()
            opts = dict(
                execution_engine_opts
                if execution_engine_opts is not None
                else config.execution_engine_opts
            )
            self._assign_executors(executor, opts)
            nodes = [node for _, _, node in self._graph.ordered()]
            dependencies = {n.label: self._graph.upstream_labels(n.label) for n in nodes}
        observers: list[Any] = [RunRecorder(self, self._database)]
        if logs:
            observers.append(LoggingObserver(self._scoped_database))
        if progress and sys.stderr.isatty() and not _draws_progress(observer):
            observers.append(progress_bars.ProgressObserver())  # rich: only for a terminal
        if observer is not None:
            observers.append(observer)
        run_observer = CompositeObserver(*observers)
        caught: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as recorded:
                warnings.simplefilter("always")
                try:
                    summary = orchestrator.run(
                        nodes,
                        pipeline_name=self.name,
                        config=config,
                        observer=run_observer,
                        node_configs=self._node_configs,
                        dependencies=dependencies,
                    )
                finally:
                    caught = list(recorded)
        except BaseException as err:
            _replay(caught)
            try:
                self.flush()  # keep every finished row
            except OrcapodError as flush_error:
                err.add_note(f"flushing after this failure failed too: {flush_error!r}")
            raise
        _replay(caught)
        self.flush()
        if summary.failed:
            first = summary.failed_nodes[0]
            warnings.warn(
                f"pipeline {self.name!r}: {summary.failed} row(s) failed in "
                f"{list(summary.failed_nodes)}; list them with "
                f"{node_reference(first, type(self))}.failures() (failed rows are retried by "
                "the next run)",
                FailedRowsWarning,
                stacklevel=2,
            )
        return summary

    def explain(self) -> dict[str, Any]:
        """Per function node (by label), why its rows would be or were computed; read-only
        (``FunctionNode.explain``). Before a run a node's input is what its upstream nodes
        have stored so far."""
        out: dict[str, Any] = {}
        for label, node in self._function_nodes():
            node.refresh()
            out[label] = node.explain(out)
        return out

    def flush(self) -> None:
        """Commit every node's pending writes and both databases."""
        errors: list[BaseException] = []
        for _, _, node in self._graph.ordered():
            flush = getattr(node, "flush", None)
            if flush is not None:
                try:
                    flush()
                except OrcapodError as err:  # collected; re-raised below
                    errors.append(err)
        for database in (self._database, self._result_database):
            if database is not None:
                try:
                    database.flush()
                except OrcapodError as err:  # collected; re-raised below
                    errors.append(err)
        if errors:
            raise PipelineError(
                f"pipeline {self.name!r}: {len(errors)} flush(es) failed; the first: "
                f"{errors[0]!r}. Pending rows are kept; fix the store and call flush() again"
            ) from errors[0]

    # Persistence ------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the compiled pipeline as versioned JSON (``orcapod.pipeline.serialization``)."""
        with self._lock:
            if self._pending:
                self.compile()
            return serialization.save_pipeline(self, file_path(path, "save"))

    @classmethod
    def load(
        cls,
        path: str | Path,
        pipeline_database: ArrowDatabase | None = None,
        result_database: ArrowDatabase | None = None,
        *,
        trusted: bool = False,
    ) -> Pipeline:
        """Rebuild a saved pipeline; nodes that cannot be rebuilt load read-only. A saved
        pipeline is code: modules its functions came from are imported only when found where
        they were when it was saved, unless ``trusted=True``
        (``orcapod.pipeline.load_safety``)."""
        return serialization.load_pipeline(
            cls, file_path(path, "Pipeline.load"), pipeline_database, result_database, trusted
        )

    # Used by serialization ------------------------------------------------------------------
    @property
    def graph_state(self) -> PipelineGraph:
        """The internal graph (for ``orcapod.pipeline.serialization``)."""
        return self._graph

    def function_pod_of(self, label: str) -> Any:
        """The user's pod a function node was compiled from (never mutated)."""
        self._check_label(label)
        if label not in self._pods:
            kind = self._graph.node_type(label)
            why = (
                "a function node loaded read-only (its function could not be imported)"
                if kind is NodeType.FUNCTION
                else f"a {kind.value} node; only function nodes have a pod"
            )
            with_pods = [lbl for lbl, _ in self._function_nodes() if lbl in self._pods]
            raise PipelineError(f"node {label!r} is {why}; nodes with a pod: {with_pods}")
        return self._pods[label]

    def restore_node(
        self, label: str, node: Any, upstreams: Sequence[str], status: Any, pod: Any = None
    ) -> None:
        """Add a node rebuilt by ``Pipeline.load`` (``pod``: a function node's pod)."""
        self._graph.add_node(label, node, upstreams)
        self._load_statuses[label] = status
        if pod is not None:
            self._pods[label] = pod
        self._register_executor(label, node)

    def _register_executor(self, label: str, node: Any) -> None:
        if isinstance(node, FunctionNode):
            if node.executor is None:
                node.executor = LocalExecutor()
            self._compiled_executors[label] = node.executor
            self._assigned_executors[label] = node.executor
