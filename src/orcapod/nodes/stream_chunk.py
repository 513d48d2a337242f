"""``StreamChunk``: one received chunk of a streaming function node run - the run's shared
per-chunk path (``orcapod.nodes.chunk_work.ChunkWork``: identify, look up, outcomes, record
and failure rows) plus what passing its rows on needs.

A streaming run (``orcapod.nodes.function_stream``) keeps ONE window of calls in flight across
chunk boundaries, so a chunk's look-ups happen while the previous chunk's last calls run and a
chunk's calls are collected by the run's loop, not by the chunk; the run's one writer
(``orcapod.nodes.stream_writer``) spans chunks and numbers each chunk's packets from its
``base``. After each commit the writer passes on the chunk's settled rows (``emitted`` of them
so far), built from the result rows the commit just wrote (``keep`` / ``written_rows``), so
they need no read-back from the store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from orcapod.functions.engine.identify import InputPlan
from orcapod.nodes.chunk_work import ChunkWork, Versions
from orcapod.nodes.node_store import NodeStore, output_rows
from orcapod.nodes.run_settings import COMPUTED, FAILED, FILTERED, REUSED, RunSettings
from orcapod.nodes.stored_entries import StoredEntries
from orcapod.types.columns import RECORD_ID

__all__ = ["StreamChunk"]


class StreamChunk(ChunkWork):
    """One chunk of a streaming run (see the module docstring)."""

    def __init__(
        self,
        settings: RunSettings,
        plan: InputPlan,
        store: NodeStore,
        base: int,
        observer: Any = None,
    ) -> None:
        super().__init__(settings, plan, store, base, observer)
        #: every row passed on (set by the writer; read by the look-up thread)
        self.passed = False
        #: rows passed on so far (in input order)
        self.emitted = 0
        #: the result rows this run wrote for its packets (``keep``), and per packet its row in
        #: them (-1: none written by this run)
        self._stash: list[pa.Table] = []
        self._stash_rows = 0
        self._stash_at = np.empty(0, dtype=np.int64)

    def lookup(
        self,
        computed_earlier: Callable[[pa.Array], np.ndarray] | None = None,
        stored: StoredEntries | None = None,
        absent_at: Versions | None = None,
    ) -> pa.Table | None:
        hits = super().lookup(computed_earlier, stored, absent_at)
        self._stash_at = np.full(len(self.distinct), -1, dtype=np.int64)
        return hits

    def mark_outputs(self, packets: Sequence[int], outputs: Sequence[object]) -> None:
        """``mark`` of several calls that returned (their events reported one by one): each
        output, or None (filtered); a packet whose output the writer could not store stays
        failed."""
        at = np.asarray(packets, dtype=np.int64)
        filtered = np.fromiter((o is None for o in outputs), bool, len(outputs))
        now = self.outcome[at]
        self.outcome[at] = np.where(now == FAILED, FAILED, np.where(filtered, FILTERED, COMPUTED))
        self.marked += len(at)

    @property
    def complete(self) -> bool:
        """The writer holds the outcome of every call of the chunk (or it needed none)."""
        return self.marked >= len(self.misses)

    # -- the rows just written -----------------------------------------------------------------

    def keep(self, packets: np.ndarray, table: pa.Table, columns: list[str]) -> None:
        """The writer stored ``table`` (one result row per local packet in ``packets``): keep
        its ``columns`` until the rows are passed on (no read-back needed)."""
        self._stash.append(table.select(columns))
        self._stash_at[packets] = self._stash_rows + np.arange(len(packets), dtype=np.int64)
        self._stash_rows += table.num_rows

    def written_rows(
        self, start: int, end: int, template: pa.Table, outputs: Sequence[str]
    ) -> pa.Table | None:
        """The stored rows (as ``template``) of input rows ``start:end``, built from the
        result rows this run just wrote; None when some row's result was not written by this
        run (reused, a cache hit), so it must be read from the store."""
        plan = self.plan
        rows = np.arange(start, end, dtype=np.int64)
        entries = plan.codes[rows]
        category = self.settled()[entries]
        if (category == REUSED).any():
            return None
        computed = category == COMPUTED
        rows, entries = rows[computed], entries[computed]
        entry_packet = np.full(plan.num_entries, -1, dtype=np.int64)
        entry_packet[self.novel] = self.codes
        packets = entry_packet[entries]
        at = self._stash_at[packets] if len(packets) else np.empty(0, dtype=np.int64)
        if (packets < 0).any() or (at < 0).any():
            return None
        if not len(rows):
            return template
        results = pa.concat_tables(self._stash) if len(self._stash) > 1 else self._stash[0]
        take = pa.array(at)
        return output_rows(
            plan,
            rows,
            (results, take),
            outputs,
            results.column(RECORD_ID).take(take),
            pa.array(np.ones(len(rows), dtype=bool)),
            template.schema,
        )

    def release_rows(self) -> None:
        """Every row was passed on: drop the kept result rows."""
        self._stash = []
