"""``run_node``: a ``FunctionNode``'s ``run()``, chunk by chunk over a large input.

An input of at most ``chunk_rows`` rows (``CHUNK_ROWS``, 50,000 by default) is one
``FunctionRun`` over the whole input, identified once and kept by the node
(``NodeInput.plan``). A larger input is read a chunk of ``chunk_rows`` rows at a time
(``NodeInput.slices``: a source builds each chunk's system tags and source info on its own,
other inputs are sliced without copying), and each chunk goes through every phase of the engine
before the next one is identified: identify its rows, look its entries up in what the node
had recorded when the run started (``StoredEntries``, read once, not once per chunk), look its
novel packets up in the result cache, compute the missing ones, and commit them. So the work
held in memory at any time is one chunk's (its hashes, ids, outputs and records), whatever
the input's length, and a failure (``fail_fast``) or a killed process keeps every earlier
chunk's rows stored.

A later chunk's records are checked against duplicates only from the record table's version
at the chunk's start, when every row of the input has an entry id of its own (a source: its
record ids are unique) and only this run's database object appended to the table since the
run began: the chunk's entries were absent then and no earlier chunk wrote them. Otherwise
they are checked against every record committed since the run began.

What stays across chunks: counts for the summary, and the first 64 bits of the input hashes
this run computed, so a packet computed in an earlier chunk and found again by a later chunk's
look-up counts as computed, as it does when both rows are in one chunk (a 64-bit coincidence
could only count such a row as computed instead of reused). They are asked only about the
packets a look-up found, and runs of them spill to temporary files from ``SPILL_ROWS``
hashes (``keys.SeenHashes``), without a filter since few are asked about or most
of those asked are in them: a few kilobytes per million computed rows stay in memory.
After each chunk the Arrow memory pool and the C heap release what the chunk freed
(``release_freed_memory``).
A chunk's packets computed by an earlier chunk are never computed again: the earlier chunk's
results are committed before the later chunk looks them up.

A run that ends normally records which of the node's records its input no longer holds
(``orcapod.nodes.membership``: for one chunk, a count at the look-up, else one read of the
recorded ids; for a chunked run, the chunks' matches against ``StoredEntries``) in its
summary's ``superseded``.

A run that raises (``fail_fast``, ``KeyboardInterrupt``, a database failure) raises the very
exception, carrying what the run did until then as a ``NodeRunSummary`` (earlier chunks plus
the rows of the failing chunk that were settled and committed: ``FunctionRun.counts_so_far``),
which ``partial_summary(error)`` returns; the run history records these counts for a run that
stopped. None when they are unknown (the final commit failed too).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pyarrow as pa

from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.engine.keys import SeenHashes
from orcapod.nodes.function_input import NodeInput
from orcapod.nodes.function_run import FunctionRun
from orcapod.nodes.membership import NO_KEYS, record_membership, superseded_of_plan
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.run_settings import SPILL_ROWS, RunSettings
from orcapod.nodes.stored_entries import StoredEntries
from orcapod.nodes.summary import NodeRunSummary
from orcapod.sources import RootSource

__all__ = [
    "CHUNK_ROWS",
    "attach_partial_summary",
    "partial_summary",
    "release_freed_memory",
    "run_node",
]

#: input rows a run identifies, looks up, computes and commits at a time
CHUNK_ROWS = 50_000
_LIBC = ctypes.util.find_library("c")
#: glibc's ``malloc_trim`` (None elsewhere: other C libraries return free pages themselves)
_TRIM: Callable[[int], int] | None = (
    getattr(ctypes.CDLL(_LIBC), "malloc_trim", None) if _LIBC else None
)
#: the attribute of an exception a node run raised that holds its partial summary
_PARTIAL = "orcapod_partial_summary"


def partial_summary(error: BaseException) -> NodeRunSummary | None:
    """What the function node run that raised ``error`` did before it stopped (rows stored
    or failed; rows never reached are not counted); None when unknown or not raised by a
    node run."""
    summary = getattr(error, _PARTIAL, None)
    return summary if isinstance(summary, NodeRunSummary) else None


def attach_partial_summary(error: BaseException, summary: NodeRunSummary) -> None:
    """Let ``error``, raised by a node run, carry what the run did before it stopped
    (``partial_summary``); an exception that takes no attributes goes on without it."""
    with contextlib.suppress(AttributeError, TypeError):  # e.g. a class with __slots__
        setattr(error, _PARTIAL, summary)


def _raised_after(error: BaseException, label: str, counts: np.ndarray | None) -> None:
    """``attach_partial_summary`` of ``counts`` (computed, reused, filtered, failed; None:
    unknown, nothing attached)."""
    if counts is not None:
        computed, reused, filtered, failed = (int(c) for c in counts)
        attach_partial_summary(error, NodeRunSummary(label, computed, reused, filtered, failed))


def run_node(
    settings: RunSettings,
    node_input: NodeInput,
    store: NodeStore,
    max_concurrency: int | None,
    chunk_rows: int = CHUNK_ROWS,
) -> NodeRunSummary:
    """One run of a node over its current input (see the module docstring)."""
    if node_input.num_rows() <= chunk_rows:
        plan = node_input.plan()
        whole = FunctionRun(settings, plan, store)
        try:
            summary = whole.run(max_concurrency)
        except BaseException as err:  # re-raised unchanged, with what the run did
            so_far = whole.counts_so_far()
            _raised_after(err, settings.label, None if so_far is None else np.array(so_far))
            raise
        superseded = NO_KEYS if whole.every_record_held() else superseded_of_plan(store, plan)
        return replace(summary, superseded=record_membership(store, superseded))
    tag_keys, packet_keys = node_input.read.keys()
    # a source's rows have entry ids of their own (its record ids are unique)
    unique_entries = isinstance(node_input.stream, RootSource)
    start = store.pipeline_db.table_token(store.record_path) if unique_entries else None
    stored = StoredEntries(store)
    computed = SeenHashes(SPILL_ROWS)  # the input hashes this run computed
    counts = np.zeros(4, dtype=np.int64)
    for chunk, table in enumerate(node_input.slices(chunk_rows)):
        plan = InputPlan.of_table(table, tag_keys, packet_keys)
        del table
        run = FunctionRun(settings, plan, store, stored=stored)
        run.computed_earlier = computed.contains
        run.chunk = chunk
        if unique_entries and chunk:
            run.records_absent_since = _own_version(store, start)
        try:
            done = run.run(max_concurrency)
        except BaseException as err:  # re-raised unchanged, with what the run did
            so_far = run.counts_so_far()
            _raised_after(err, settings.label, None if so_far is None else counts + so_far)
            raise
        finally:
            computed.add(run.computed_hashes())
        counts += (done.computed, done.reused, done.filtered, done.failed)
        release_freed_memory()
    stored.note_run()
    membership = record_membership(store, stored.superseded())
    computed_rows, reused, filtered, failed = (int(c) for c in counts)
    return NodeRunSummary(settings.label, computed_rows, reused, filtered, failed, membership)


def release_freed_memory() -> None:
    """Hand a chunk's freed memory back to the system: the Arrow memory pool's, and the C
    heap's free pages (glibc's ``malloc_trim``, where the C library has it). Both allocators
    otherwise keep what a chunk freed for reuse, and the heap's free space, fragmented by
    what outlives the chunk, grows chunk after chunk with the input's length."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)


def _own_version(store: NodeStore, start: str | None) -> int | None:
    """The record table's version now when every version since the run began (``start``: its
    token then) is an append of this run's database object, else None. A later chunk's
    entries were absent at the start, and each row's entry id is its own, so they are still
    absent at that version: its writes are checked only against what is committed after."""
    db, path = store.pipeline_db, store.record_path
    version = db.committed_version(path)
    if version is None or version < 0 or db.appended_token(path, start) is None:
        return None
    return version
