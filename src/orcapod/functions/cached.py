"""``CachedPacketFunction`` and ``CachedFunctionPod``: one ``ResultCache`` in front of a function.

Both wrappers delegate every cache decision to ``CacheBinding`` (one ``ResultCache`` plus the
match tier and the flush policy), so the caching logic exists once. The key is the input
packet hash only (a function's output depends only on its packet, never on the tag) — the hash
of all of the packet's data columns, including any the function does not read, which is the
key nodes compute too — narrowed by the ``CacheMatch`` tier (default ``CODE``: results of
other code are not matched, so an edit to the function or to user code it calls recomputes).

On a miss the wrapped function is called (unless it is inactive: then nothing is computed or
stored and the outcome is None) and its result is stored — a None result as "filtered", so it
is not recomputed either. Outputs carry meta ``__computed`` (True when computed now, False on a
hit — including a hit of an inner cache in dual caching), ``__packet_id`` (the result's record
id) and ``__pod_ts``.

Writing: the per-row entry points (``call``, ``process_packet``, ``async_process_packet``)
store each result at once, with the cache's ``auto_flush`` (one commit per row when on). The
batched ``CachedFunctionPod.iter_process`` buffers computed results and adds them with one
``store_many`` before its next lookup (so later lookups see them) and when the iteration ends
or is closed; with ``auto_flush`` it commits when at least 256 rows or ~1 second of results are
uncommitted, and at the end. A consumer that stops reading a ``FunctionPodStream`` part way
leaves at most one chunk of computed rows unwritten until the stream reads on or is garbage
collected.

Applying a ``CachedFunctionPod`` to a stream gives a ``CachedPodStream``
(``orcapod.functions.cached_stream``): with sequential calls it runs the engine's phases over
chunks of the input table (one hash, one look-up, one write per chunk, rows assembled
column-wise); with a concurrent executor it goes through ``iter_process``, which
looks packets up in chunks of 1, 2, 4, ... up to 4096 rows
(a partial read hashes and looks up at most as many rows ahead as it has read; nothing is
computed ahead): one vectorised hash of the chunk's packets and ONE ``lookup_many`` query per
chunk; repeated packets inside a chunk are computed once.
``async_process_packet`` does the database work synchronously and awaits only the computation.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from orcapod.data import Packet, Tag
from orcapod.databases.protocol import ArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.executors import PacketFunctionExecutorProtocol
from orcapod.executors.capture import PacketLoggerProtocol
from orcapod.functions.cached_stream import CachedPodStream
from orcapod.functions.function_pod import FunctionPod, Outcome, windowed
from orcapod.functions.packet_function import PacketFunctionBase, PacketFunctionWrapper
from orcapod.functions.pending import Pending
from orcapod.functions.provenance import (
    CODE_HASH_KEY,
    execution_digest,
    packet_hashes,
    prime_source_info,
    project_packet,
    result_record_id,
)
from orcapod.functions.result_cache import FILTERED, CacheResult, ResultCache, match_constraints
from orcapod.types import CacheMatch, ContentHash, Schema
from orcapod.types.columns import COMPUTED, PACKET_ID, POD_TS

__all__ = ["CACHE_META_SCHEMA", "CacheBinding", "CachedFunctionPod", "CachedPacketFunction"]

E = TypeVar("E", bound=PacketFunctionExecutorProtocol)

#: Meta columns a cached function or pod puts on its outputs.
CACHE_META_SCHEMA = Schema({COMPUTED: bool, PACKET_ID: str, POD_TS: dt.datetime})

_FLUSH_ROWS = 256
_FLUSH_SECONDS = 1.0
_MAX_CHUNK = 4096


class CacheBinding:
    """A ``ResultCache`` plus match tier and write policy, shared by both cached wrappers.

    ``finish(..., deferred=True)`` (the batched path) buffers the row; ``write_buffer()`` adds
    buffered rows in one ``store_many`` per (variation, execution), and commits (with
    ``auto_flush``) every ``_FLUSH_ROWS`` rows or ``_FLUSH_SECONDS``; ``close()`` writes and
    commits the rest.
    """

    def __init__(self, cache: ResultCache, cache_match: CacheMatch | str = CacheMatch.CODE):
        self.cache = cache
        self.cache_match = CacheMatch(cache_match)
        self._buffer: list[
            tuple[ContentHash, Packet | None, dict[str, str], dict[str, str], Any, str]
        ]
        self._buffer = []
        self._unflushed = 0
        self._last_flush = time.monotonic()
        self._contexts: dict[tuple[int, Any], tuple[dict[str, str], dict[str, str], bytes]] = {}
        #: committed version before the first batched lookup: buffered rows are its misses
        self._verified_at: int | None = None

    def constraints(self, pf: PacketFunctionBase[Any]) -> dict[str, str]:
        execution = pf.get_execution_data() if self.cache_match is CacheMatch.STRICT else {}
        return match_constraints(self.cache_match, pf.code_hash, execution)

    def lookup(self, pf: PacketFunctionBase[Any], packet: Packet) -> CacheResult:
        self.write_buffer()
        return self.cache.lookup(packet, self.constraints(pf))

    def lookup_many(
        self, pf: PacketFunctionBase[Any], hashes: Sequence[ContentHash]
    ) -> list[CacheResult]:
        self.write_buffer()
        if self._verified_at is None:  # before the first lookup whose misses get buffered
            self._verified_at = self.cache.committed_version()
        return self.cache.lookup_many(hashes, self.constraints(pf))

    def context(self, pf: PacketFunctionBase[Any]) -> tuple[dict[str, str], dict[str, str], bytes]:
        """Variation and execution data of ``pf`` with its current executor, and the record-id
        suffix they give (cached)."""
        key = (id(pf), pf.executor)
        cached = self._contexts.get(key)
        if cached is None:
            variation, execution = pf.get_function_variation_data(), pf.get_execution_data()
            suffix = execution_digest(variation.get(CODE_HASH_KEY, ""), execution)
            cached = (variation, execution, suffix)
            self._contexts = {key: cached}  # one entry: a binding serves one function
        return cached

    def finish(
        self,
        pf: PacketFunctionBase[Any],
        input_hash: ContentHash,
        out: Packet | None,
        *,
        deferred: bool = False,
    ) -> Packet | None:
        """Store (or buffer) a freshly obtained result and mark it; the output (or None)."""
        now = dt.datetime.now(dt.UTC)
        variation, execution, suffix = self.context(pf)
        if out is not None:
            prime_source_info(out, input_hash)
        if deferred:
            record_id = result_record_id(input_hash, suffix)
            self._buffer.append((input_hash, out, variation, execution, now, record_id))
        else:
            (record_id,) = self.cache.store_many(
                [(input_hash, out)], variation, execution, pod_ts=now
            )
        if out is None:
            return None
        if out.get_meta_value(COMPUTED, True) is False:  # an inner cache's hit
            return out.with_meta_columns(**{PACKET_ID: record_id})
        return out.with_meta_columns(**{COMPUTED: True, PACKET_ID: record_id, POD_TS: now})

    def write_buffer(self) -> None:
        """Add buffered rows to the database; commit when the flush policy says so."""
        buffer = self._buffer
        if not buffer:
            return
        self._buffer = []
        for (variation, execution), group in itertools.groupby(buffer, key=lambda e: (e[2], e[3])):
            rows = list(group)
            self.cache.store_outputs(
                [e[0] for e in rows],
                [e[1] for e in rows],
                variation,
                execution,
                flush=False,
                pod_ts=[e[4] for e in rows],
                record_ids=[e[5] for e in rows],
                absent_at=self._verified_at,
            )
            self._unflushed += len(rows)
        if self.cache.auto_flush and (
            self._unflushed >= _FLUSH_ROWS or time.monotonic() - self._last_flush >= _FLUSH_SECONDS
        ):
            self._commit()

    def note_written(self, rows: int) -> None:
        """``rows`` results were added to the cache without a commit: commit (with
        ``auto_flush``) when the flush policy says so."""
        self._unflushed += rows
        if self.cache.auto_flush and (
            self._unflushed >= _FLUSH_ROWS or time.monotonic() - self._last_flush >= _FLUSH_SECONDS
        ):
            self._commit()

    def close(self) -> None:
        """Write every buffered row and commit (with ``auto_flush``)."""
        self.write_buffer()
        self._verified_at = None
        if self.cache.auto_flush and self._unflushed:
            self._commit()

    def _commit(self) -> None:
        self._unflushed = 0
        self._last_flush = time.monotonic()
        self.cache.flush()


def _record_path(prefix: Sequence[str], uri: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(prefix, str):
        raise InputValidationError(
            f"record_path_prefix must be a tuple of path segments, got the string {prefix!r}; "
            f"use ({prefix!r},)"
        )
    return (*prefix, *uri)


def _retag(tag: Tag, outcome: tuple[Tag, Packet | None]) -> tuple[Tag, Packet | None]:
    return tag, outcome[1]


def _hit_outcome(tag: Tag, hit: CacheResult) -> Pending[tuple[Tag, Packet | None]]:
    return Pending.done((tag, None if hit is FILTERED else hit))  # type: ignore[arg-type]


class CachedPacketFunction(PacketFunctionWrapper[E]):
    """A packet function whose results are kept in a ``ResultCache`` at ``prefix + uri``."""

    def __init__(
        self,
        packet_function: PacketFunctionBase[Any],
        result_database: ArrowDatabase,
        record_path_prefix: Sequence[str] = (),
        *,
        auto_flush: bool = True,
        cache_match: CacheMatch | str = CacheMatch.CODE,
        label: str | None = None,
    ) -> None:
        super().__init__(packet_function, label=label)
        cache = ResultCache(
            result_database,
            _record_path(record_path_prefix, self.uri),
            auto_flush,
            output_schema=self.output_packet_schema,
            uri=self.uri,
        )
        self._binding = CacheBinding(cache, cache_match)

    @property
    def result_cache(self) -> ResultCache:
        return self._binding.cache

    @property
    def record_path(self) -> tuple[str, ...]:
        return self._binding.cache.record_path

    @property
    def cache_match(self) -> CacheMatch:
        return self._binding.cache_match

    def set_auto_flush(self, on: bool = True) -> None:
        self._binding.cache.set_auto_flush(on)

    def output_meta_schema(self) -> Schema:
        return self._packet_function.output_meta_schema().with_values(CACHE_META_SCHEMA)

    def get_cached_output_for_packet(self, packet: Packet) -> CacheResult:
        pf = self._packet_function
        return self._binding.lookup(pf, project_packet(packet, pf.input_packet_schema))

    def record_packet(self, input_packet: Packet, output_packet: Packet | None) -> str:
        """Store ``output_packet`` as the result for ``input_packet``; its record id."""
        pf = self._packet_function
        return self._binding.cache.store(
            project_packet(input_packet, pf.input_packet_schema),
            output_packet,
            pf.get_function_variation_data(),
            pf.get_execution_data(),
        )

    def get_all_cached_outputs(self, include_system_columns: bool = False) -> Any:
        return self._binding.cache.get_all_records(include_system_columns)

    def _finish(self, packet: Packet, out: Packet | None, skip_insert: bool) -> Packet | None:
        if skip_insert:
            return None if out is None else out.with_meta_columns(**{COMPUTED: True})
        return self._binding.finish(self._packet_function, packet.content_hash(), out)

    def call(
        self,
        packet: Packet,
        *,
        logger: PacketLoggerProtocol | None = None,
        skip_cache_lookup: bool = False,
        skip_cache_insert: bool = False,
    ) -> Packet | None:
        packet = project_packet(packet, self._packet_function.input_packet_schema)
        if not skip_cache_lookup:
            hit = self.get_cached_output_for_packet(packet)
            if hit is not None:
                return None if hit is FILTERED else hit  # type: ignore[return-value]
        if not self.is_active():
            return None
        out = self._packet_function.call(packet, logger=logger)
        return self._finish(packet, out, skip_cache_insert)

    async def async_call(
        self,
        packet: Packet,
        *,
        logger: PacketLoggerProtocol | None = None,
        skip_cache_lookup: bool = False,
        skip_cache_insert: bool = False,
    ) -> Packet | None:
        packet = project_packet(packet, self._packet_function.input_packet_schema)
        if not skip_cache_lookup:
            hit = self.get_cached_output_for_packet(packet)
            if hit is not None:
                return None if hit is FILTERED else hit  # type: ignore[return-value]
        if not self.is_active():
            return None
        out = await self._packet_function.async_call(packet, logger=logger)
        return self._finish(packet, out, skip_cache_insert)

    def submit_call(
        self, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[Packet | None]:
        packet = project_packet(packet, self._packet_function.input_packet_schema)
        hit = self.get_cached_output_for_packet(packet)
        if hit is not None:
            return Pending.done(None if hit is FILTERED else hit)  # type: ignore[arg-type]
        if not self.is_active():
            return Pending.done(None)
        started = self._packet_function.submit_call(packet, logger=logger)
        return started.then(lambda out: self._finish(packet, out, False))


class CachedFunctionPod(FunctionPod):
    """A function pod whose results are kept in a ``ResultCache`` at ``prefix + pod.uri``.

    It is a pod like any other: applying it validates, records the invocation (pipelines see
    it) and returns a ``CachedPodStream`` (a ``FunctionPodStream`` computed chunk by chunk); its
    identity is the wrapped pod's.
    """

    stream_type = CachedPodStream

    def __init__(
        self,
        function_pod: FunctionPod,
        result_database: ArrowDatabase,
        record_path_prefix: Sequence[str] = (),
        *,
        auto_flush: bool = True,
        cache_match: CacheMatch | str = CacheMatch.CODE,
        label: str | None = None,
    ) -> None:
        if not isinstance(function_pod, FunctionPod):
            raise InputValidationError(
                f"CachedFunctionPod wraps a FunctionPod, got {type(function_pod).__name__}"
            )
        super().__init__(
            function_pod.packet_function,
            label=label or function_pod.label,
            max_concurrency=function_pod.max_concurrency,
        )
        self._inner = function_pod
        cache = ResultCache(
            result_database,
            _record_path(record_path_prefix, function_pod.uri),
            auto_flush,
            output_schema=function_pod.output_packet_schema,
            uri=function_pod.uri,
        )
        self._binding = CacheBinding(cache, cache_match)

    @property
    def function_pod(self) -> FunctionPod:
        return self._inner

    @property
    def result_cache(self) -> ResultCache:
        return self._binding.cache

    @property
    def cache_binding(self) -> CacheBinding:
        """The cache, match tier and write policy every application of this pod uses."""
        return self._binding

    @property
    def record_path(self) -> tuple[str, ...]:
        return self._binding.cache.record_path

    @property
    def cache_match(self) -> CacheMatch:
        return self._binding.cache_match

    def set_auto_flush(self, on: bool = True) -> None:
        self._binding.cache.set_auto_flush(on)

    def with_executor(self, executor: Any) -> CachedFunctionPod:
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._inner = self._inner.with_executor(executor)
        clone._packet_function = clone._inner.packet_function
        return clone

    def meta_schema(self) -> Schema:
        return self._inner.meta_schema().with_values(CACHE_META_SCHEMA)

    # -- per row -------------------------------------------------------------------------

    def process_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> tuple[Tag, Packet | None]:
        pf = self._packet_function
        packet = project_packet(packet, pf.input_packet_schema)
        hit = self._binding.lookup(pf, packet)
        if hit is not None:
            return tag, None if hit is FILTERED else hit  # type: ignore[return-value]
        if not pf.is_active():
            return tag, None
        tag, out = self._inner.process_packet(tag, packet, logger=logger)
        return tag, self._binding.finish(pf, packet.content_hash(), out)

    async def async_process_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> tuple[Tag, Packet | None]:
        pf = self._packet_function
        packet = project_packet(packet, pf.input_packet_schema)
        hit = self._binding.lookup(pf, packet)
        if hit is not None:
            return tag, None if hit is FILTERED else hit  # type: ignore[return-value]
        if not pf.is_active():
            return tag, None
        tag, out = await self._inner.async_process_packet(tag, packet, logger=logger)
        return tag, self._binding.finish(pf, packet.content_hash(), out)

    def start_packet(
        self, tag: Tag, packet: Packet, *, logger: PacketLoggerProtocol | None = None
    ) -> Pending[tuple[Tag, Packet | None]]:
        pf = self._packet_function
        packet = project_packet(packet, pf.input_packet_schema)
        hit = self._binding.lookup(pf, packet)
        if hit is not None:
            return _hit_outcome(tag, hit)
        if not pf.is_active():
            return Pending.done((tag, None))
        started = self._inner.start_packet(tag, packet, logger=logger)
        return started.then(lambda o: (o[0], self._binding.finish(pf, packet.content_hash(), o[1])))

    # -- batched ---------------------------------------------------------------------------

    def iter_process(
        self,
        rows: Iterable[tuple[Tag, Packet]],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        input_hashes: Iterable[ContentHash] | None = None,
    ) -> Iterator[Outcome]:
        """Like ``FunctionPod.iter_process``, with chunked lookups (see the module docstring).

        ``input_hashes`` (aligned with ``rows``) saves hashing when the caller has them.
        """
        window = self.concurrency_window(max_concurrency)
        try:
            starts = self._starts(rows, input_hashes)  # started after the chunk's lookup
            yield from windowed(starts, None, window, return_exceptions, self.executor)
        finally:
            self._binding.close()

    def sequential_call(self, max_concurrency: int | None = None) -> None:
        return None  # every row goes through the cache

    def _starts(
        self, rows: Iterable[tuple[Tag, Packet]], input_hashes: Iterable[ContentHash] | None
    ) -> Iterator[tuple[Tag, Pending[tuple[Tag, Packet | None]]]]:
        pf = self._packet_function
        row_iter = iter(rows)
        hash_iter = iter(input_hashes) if input_hashes is not None else None
        size = 1
        while True:
            chunk = [
                (tag, project_packet(packet, pf.input_packet_schema))
                for tag, packet in itertools.islice(row_iter, size)
            ]
            if not chunk:
                return
            size = min(2 * size, _MAX_CHUNK)
            if hash_iter is not None:
                hashes = list(itertools.islice(hash_iter, len(chunk)))
                if len(hashes) != len(chunk):
                    raise InputValidationError("input_hashes is shorter than rows; align them")
            else:
                hashes = packet_hashes([p for _, p in chunk])
            found = self._binding.lookup_many(pf, hashes)
            started: dict[ContentHash, Pending[tuple[Tag, Packet | None]]] = {}
            for (tag, packet), h, hit in zip(chunk, hashes, found, strict=True):
                if hit is not None:
                    yield tag, _hit_outcome(tag, hit)
                elif not pf.is_active():
                    yield tag, Pending.done((tag, None))
                elif h in started:
                    yield tag, started[h].then(functools.partial(_retag, tag))
                else:
                    pending = self._start_miss(tag, packet, h)
                    started[h] = pending
                    yield tag, pending

    def _start_miss(
        self, tag: Tag, packet: Packet, input_hash: ContentHash
    ) -> Pending[tuple[Tag, Packet | None]]:
        pf = self._packet_function
        binding = self._binding

        def store(outcome: tuple[Tag, Packet | None]) -> tuple[Tag, Packet | None]:
            return outcome[0], binding.finish(pf, input_hash, outcome[1], deferred=True)

        return self._inner.start_packet(tag, packet).then(store)
