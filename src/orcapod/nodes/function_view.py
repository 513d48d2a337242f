"""``FunctionNodeView``: a function node's identity and the read side of what it stored.

The base of ``FunctionNode`` (which adds construction, databases, executors and runs): which
record path the node's rows live at, and reading them for the current input only, never
computing (``iter_packets`` / ``as_table`` through ``stream``, ``failures``,
``get_all_records``, ``explain``, ``lineage``, ``verify``): rows of other inputs sharing the
table, and rows not yet recorded, filtered or failed, never appear. The rows read are kept
until the next ``run()``, ``refresh()`` or ``clear_cache()``.

``explain``, ``lineage`` and ``verify`` live in their own modules, loaded on the first call
(``orcapod._lazy.lazy_module``): most programs never call them, and importing orcapod should
not pay for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.data import Packet, Tag
from orcapod.functions import FunctionPod
from orcapod.functions.engine.identify import entry_id_of
from orcapod.nodes.bindings import NodeDatabases
from orcapod.nodes.function_input import NodeInput
from orcapod.nodes.node_store import NodeStore
from orcapod.sources.derived import DerivedSource
from orcapod.streams import ArrowTableStream
from orcapod.streams.base import ColumnsArg, StreamBase
from orcapod.types import CacheMatch, ColumnConfig, ContentHash, Schema

if TYPE_CHECKING:
    from orcapod.nodes import explain as explain_module
    from orcapod.nodes import lineage_walk
    from orcapod.nodes import verify as verify_module
    from orcapod.nodes.explain import Explanation
    from orcapod.nodes.lineage import Lineage
    from orcapod.nodes.verify import VerificationReport
else:
    explain_module = lazy_module("orcapod.nodes.explain")
    lineage_walk = lazy_module("orcapod.nodes.lineage_walk")
    verify_module = lazy_module("orcapod.nodes.verify")

__all__ = ["FunctionNodeView"]


class FunctionNodeView(StreamBase):
    """Identity and stored rows of a function node (see the module docstring); the node
    sets the attributes below."""

    _function_pod: FunctionPod
    _pod: FunctionPod  #: the node's own copy of the pod
    _packet_function: Any
    _input: NodeInput
    _databases: NodeDatabases
    _label: str | None
    _view_cache: ArrowTableStream | None

    @property
    def cache_match(self) -> CacheMatch:
        return self._databases.cached_pod().cache_match

    @property
    def label(self) -> str:
        return self._label or self._function_pod.computed_label()

    @label.setter
    def label(self, value: str | None) -> None:
        self._label = value

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

    def clear_cache(self) -> None:
        """Forget the stored rows read by ``iter_packets``/``as_table`` (read again on next
        use); needed only to see rows another node or process stored since the last read."""
        self._view_cache = None

    def explain(self, upstream: Mapping[str, Explanation] | None = None) -> Explanation:
        """Why rows would be (before a run) or were computed, grouped by reason; read-only.
        ``upstream``: explanations of upstream nodes by label, already made (a pipeline's
        ``explain`` passes those, in graph order), so a node waiting on pending upstream work
        says so instead of counting what is stored upstream so far."""
        return explain_module.explain_node(self, upstream)

    def lineage(self, row: Any) -> Lineage:
        """The upstream path of one output row (its tag, a ``Tag`` or a ``(tag, packet)``
        row): functions with code hash, git state, executor and time; operators; source rows."""
        return lineage_walk.node_lineage(self, row)

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
        return verify_module.verify_function_node(
            self.label, self._input.read, self._store(), self._pod, sample=sample, tags=tags,
            rel_tol=rel_tol, abs_tol=abs_tol, seed=seed, record=record,
        )  # fmt: skip

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
