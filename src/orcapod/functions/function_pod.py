"""``FunctionPod``: applies a packet function to every packet of a stream.

Applying a pod — ``pod(stream, *more, label=None)`` or ``pod.process(...)`` — joins several
inputs with ``orcapod.operators.Join`` (which records itself), checks the input packet schema
against the function's parameters, records the invocation (``record_invocation``: every
application, cached pods included, so a pipeline sees it) and returns a lazy
``FunctionPodStream``. The pod never reads tags; it passes each row's tag through unchanged.

Input check, at application time: every required parameter must be a packet column (a
parameter that is only a tag column is reported as such) and each column's type must be
compatible with the parameter's (``orcapod.functions.validation.is_compatible``); otherwise
``InputValidationError`` names the column. Extra packet columns are fine: the stream the
function reads is the input projected onto its parameters (``project_input``), so only those
columns are passed to it, hashed into its cache key (``__input_packet_hash``) and kept as input
provenance. Changing or adding a column the function does not take therefore recomputes
nothing. (A function without parameters reads the whole packet.) A projected input is read as
one table when its first row is needed, so an upstream lazy stream is computed whole then
rather than row by row.

Per-row entry points (used by nodes and streams): ``process_packet(tag, packet)`` and
``async_process_packet`` return ``(tag, output or None)``; ``start_packet`` returns a
``Pending`` for windowed dispatch. The batched helper ``iter_process(rows, ...)`` yields one
outcome per input row, in input order: with an executor that runs calls concurrently it keeps
a bounded window of packets in flight (``max_concurrency``, else the pod's, else the
executor's ``preferred_concurrency`` when it has one, else twice the CPU count); otherwise it
calls the function row by row on a thin path. With ``return_exceptions=True`` a failing row's
outcome is ``(tag, exception)`` and the other rows continue; without it the first failure (in
input order) is raised and calls still in flight are cancelled where the executor allows.

Identity: a pod's identity is its packet function's (URI plus code hash for the
content hash, URI only for the pipeline hash). The output stream of a pod over an input is
``hash_object({"function_pod": pod hash, "input": input hash})`` for both content and pipeline
hashes (``output_content_hash`` / ``output_pipeline_hash``, which nodes reuse).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from typing import Any

from orcapod.data import Packet, Tag
from orcapod.errors import InputValidationError
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.functions.engine.dispatch import dispatch
from orcapod.functions.function_pod_stream import FunctionPodStream
from orcapod.functions.packet_function import PacketFunctionBase
from orcapod.functions.pending import Pending
from orcapod.functions.validation import check_output_names, is_compatible, type_name
from orcapod.hashing import hash_object
from orcapod.operators import Join, SelectPacketColumns
from orcapod.operators.base import check_streams
from orcapod.streams import StreamProtocol
from orcapod.streams.base import ColumnsArg
from orcapod.streams.tracking import InvocationKind, no_tracking, record_invocation
from orcapod.types import ContentHash, Schema

__all__ = ["FunctionPod", "Outcome", "windowed"]

#: ``(tag, output packet or None)`` — or ``(tag, exception)`` with ``return_exceptions=True``.
Outcome = tuple[Tag, Any]


def default_window() -> int:
    return 2 * (os.cpu_count() or 1)


class FunctionPod:
    """Applies ``packet_function`` to every packet of a stream (see the module docstring)."""

    #: the lazy stream ``process`` returns (a cached pod computes chunk by chunk)
    stream_type: type[FunctionPodStream] = FunctionPodStream

    def __init__(
        self,
        packet_function: PacketFunctionBase[Any],
        *,
        label: str | None = None,
        max_concurrency: int | None = None,
    ) -> None:
        if not isinstance(packet_function, PacketFunctionBase):
            raise InputValidationError(
                f"FunctionPod needs a packet function (e.g. PythonPacketFunction), got "
                f"{type(packet_function).__name__}"
            )
        if max_concurrency is not None and (
            not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise InputValidationError(
                f"max_concurrency must be a positive integer or None, got {max_concurrency!r}"
            )
        self._packet_function = packet_function
        self.label = label
        self.max_concurrency = max_concurrency

    # -- the function and its executor ----------------------------------------------------

    @property
    def packet_function(self) -> PacketFunctionBase[Any]:
        return self._packet_function

    @property
    def executor(self) -> Any:
        return self._packet_function.executor

    @executor.setter
    def executor(self, executor: Any) -> None:
        self._packet_function.set_executor(executor)

    def with_executor(self, executor: Any) -> FunctionPod:
        """A new pod over a copy of the function using ``executor``; this pod is unchanged."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._packet_function = self._packet_function.with_executor(executor)
        return clone

    def computed_label(self) -> str:
        return self.label or self._packet_function.computed_label()

    @property
    def input_packet_schema(self) -> Schema:
        return self._packet_function.input_packet_schema

    @property
    def output_packet_schema(self) -> Schema:
        return self._packet_function.output_packet_schema

    def meta_schema(self) -> Schema:
        """Types of the meta columns (``__*``) on this pod's output packets."""
        return self._packet_function.output_meta_schema()

    # -- identity ------------------------------------------------------------------------

    @property
    def uri(self) -> tuple[str, ...]:
        return self._packet_function.uri

    def identity_structure(self) -> Any:
        return self._packet_function.identity_structure()

    def pipeline_identity_structure(self) -> Any:
        return self._packet_function.pipeline_identity_structure()

    def content_hash(self) -> ContentHash:
        return self._packet_function.content_hash()

    def pipeline_hash(self) -> ContentHash:
        return self._packet_function.pipeline_hash()

    def output_content_hash(self, input_stream: StreamProtocol) -> ContentHash:
        return hash_object(
            {"function_pod": self.content_hash(), "input": input_stream.content_hash()}
        )

    def output_pipeline_hash(self, input_stream: StreamProtocol) -> ContentHash:
        return hash_object(
            {"function_pod": self.pipeline_hash(), "input": input_stream.pipeline_hash()}
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._packet_function!r})"

    # -- application ---------------------------------------------------------------------

    def handle_input_streams(self, *streams: StreamProtocol) -> StreamProtocol:
        """The single input: the stream itself, or the ``Join`` of several."""
        if not streams:
            raise InputValidationError(
                f"{self.computed_label()!r} needs at least one input stream; call pod(stream)"
            )
        check_streams(repr(self.computed_label()), streams)
        if len(streams) == 1:
            return streams[0]
        joined: StreamProtocol = Join()(*streams)
        return joined

    def validate_inputs(self, *streams: StreamProtocol) -> StreamProtocol:
        """Join the inputs, check their packet schema; the (joined) input stream."""
        stream = self.handle_input_streams(*streams)
        tag_schema, packet_schema = stream.output_schema()
        self.validate_packet_schema(packet_schema, tag_schema)
        return stream

    def validate_packet_schema(
        self, packet_schema: Schema, tag_schema: Schema | None = None
    ) -> None:
        """Raise ``InputValidationError`` if ``packet_schema`` cannot feed the function."""
        name = self.computed_label()
        tag_schema = tag_schema or Schema()
        check_output_names(name, self.output_packet_schema, tag_schema)
        expected = self.input_packet_schema
        for column, tp in expected.items():
            if column not in packet_schema:
                if not expected.is_required(column):
                    continue
                where = (
                    f"; {column!r} is a tag column, and pods read packet columns only "
                    "(turn it into a packet column first)"
                    if column in tag_schema
                    else ""
                )
                raise InputValidationError(
                    f"{name!r} needs packet column {column!r} ({type_name(tp)}), which the input "
                    f"does not have (packet columns: {list(packet_schema)}){where}"
                )
            if not is_compatible(packet_schema[column], tp):
                raise InputValidationError(
                    f"packet column {column!r} has type {type_name(packet_schema[column])}, "
                    f"but {name!r} expects {type_name(tp)}; convert the column or change the "
                    "parameter's annotation"
                )

    def project_input(self, stream: StreamProtocol) -> StreamProtocol:
        """``stream`` projected onto the function's parameters: what the function reads
        (the stream itself when it has no other packet columns; not recorded by pipelines)."""
        _, packet_schema = stream.output_schema()
        wanted = [c for c in packet_schema if c in self.input_packet_schema]
        if not wanted or len(wanted) == len(packet_schema):
            return stream
        with no_tracking():
            projected: StreamProtocol = SelectPacketColumns(wanted)(stream)
        return projected

    def process(self, *streams: StreamProtocol, label: str | None = None) -> FunctionPodStream:
        """Validate, record, and return the lazy output stream."""
        stream = self.validate_inputs(*streams)
        output = self.stream_type(self, self.project_input(stream), label=label)
        record_invocation(InvocationKind.FUNCTION_POD, self, (stream,), output, label)
        return output

    def __call__(self, *streams: StreamProtocol, label: str | None = None) -> FunctionPodStream:
        return self.process(*streams, label=label)

    def output_schema(
        self, *streams: StreamProtocol, columns: ColumnsArg = None, all_info: bool = False
    ) -> tuple[Schema, Schema]:
        """The schemas of ``self(*streams)`` without applying or recording anything."""
        stream = self.handle_input_streams(*streams)
        return FunctionPodStream(self, stream).output_schema(columns, all_info)

    # -- per row -------------------------------------------------------------------------

    def process_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> tuple[Tag, Packet | None]:
        return tag, self._packet_function.call(packet, logger=logger)

    async def async_process_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> tuple[Tag, Packet | None]:
        return tag, await self._packet_function.async_call(packet, logger=logger)

    def start_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[tuple[Tag, Packet | None]]:
        """Start processing one row; ``.result()`` gives ``(tag, output or None)``."""
        return self._packet_function.submit_call(packet, logger=logger).then(lambda out: (tag, out))

    # -- batched ---------------------------------------------------------------------------

    def concurrency_window(self, max_concurrency: int | None = None) -> int:
        """Packets kept in flight by ``iter_process`` (1 unless calls run concurrently)."""
        if not self._packet_function.supports_concurrent_calls:
            return 1
        chosen = max_concurrency or self.max_concurrency
        if chosen:
            return chosen
        # an executor may suggest its own (RayExecutor: enough to group short calls over the
        # whole cluster; the driver's CPU count says nothing about a remote cluster)
        preferred = getattr(self._packet_function.executor, "preferred_concurrency", None)
        return int(preferred) if preferred else default_window()

    def sequential_call(
        self, max_concurrency: int | None = None
    ) -> Callable[[Packet], Packet | None] | None:
        """The per-packet call when rows are processed one by one with nothing around the
        call (streams use it as a fast path), else None."""
        if self.concurrency_window(max_concurrency) != 1:
            return None
        return self._packet_function.call

    def sequential_values(
        self, max_concurrency: int | None = None
    ) -> tuple[Callable[[Packet], dict[str, Any] | None], PacketFunctionBase[Any], Any] | None:
        """Like ``sequential_call``, but the call returns output values (no packet), with the
        packet function and executor its results are attributed to; None when unavailable
        (also whenever ``sequential_call`` is, e.g. in a subclass that wraps each call)."""
        if self.sequential_call(max_concurrency) is None:
            return None
        pf = self._packet_function
        call = pf.values_call()
        if call is None:
            return None
        return call, pf, pf.executor

    def sequential_rows(
        self, packet_schema: Mapping[str, Any], max_concurrency: int | None = None
    ) -> Callable[[Mapping[str, list[Any]]], Callable[[int], dict[str, Any] | None]] | None:
        """Like ``sequential_values``, for packets kept column-wise (the packet function's
        ``row_caller``): None when unavailable."""
        if self.sequential_values(max_concurrency) is None:
            return None
        return self._packet_function.row_caller(packet_schema)

    def iter_process(
        self,
        rows: Iterable[tuple[Tag, Packet]],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
    ) -> Iterator[Outcome]:
        """One outcome per row, in input order (see the module docstring)."""
        window = self.concurrency_window(max_concurrency)
        if window == 1:
            call = self._packet_function.call
            for tag, packet in rows:
                if return_exceptions:
                    try:
                        out: Any = call(packet)
                    except Exception as err:  # noqa: BLE001 - returned as the row's outcome
                        out = err
                    yield tag, out
                else:
                    yield tag, call(packet)
            return
        items = ((tag, (tag, packet)) for tag, packet in rows)
        start = self._start_row
        yield from windowed(items, start, window, return_exceptions, self.executor)

    def _start_row(self, row: tuple[Tag, Packet]) -> Pending[tuple[Tag, Packet | None]]:
        return self.start_packet(*row)


def windowed(
    items: Iterable[tuple[Tag, Any]],
    start: Callable[[Any], Pending[tuple[Tag, Packet | None]]] | None,
    window: int,
    return_exceptions: bool,
    executor: object = None,
) -> Iterator[Outcome]:
    """Start each item with ``start`` (None: items are started already), up to ``window`` in
    flight; the outcomes in input order (the engine's ``dispatch``). Without
    ``return_exceptions`` the first failure is raised."""
    outcomes = dispatch(items, start, window, executor)
    with closing(outcomes):
        for tag, outcome, error in outcomes:
            if error is None:
                assert outcome is not None
                yield outcome
            elif return_exceptions:
                yield tag, error
            else:
                raise error
