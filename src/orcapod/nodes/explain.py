"""``explain``: why a function node's rows would be (or were) computed. Read-only.

``explain_function_node`` classifies the node's current input rows without computing or
writing anything (it reads the node's records, failures and the result cache, and hashes the
function's code in-process):

* **pending** rows (not recorded under the node's current code, or recorded with a result
  that is gone) - what the next ``run()`` computes - grouped by reason:

  - ``failed before``: the row's last attempt failed (the error is named);
  - ``result missing``: the row is recorded but its result is no longer stored;
  - ``code changed``: the input was computed before under another code hash of this function;
    each changed identity component is named (``global `THRESHOLD` 0.5 → 0.7``, ``helper
    `features.normalise` changed``) from the identities stored in the result database
    (``orcapod.functions.identity_store``);
  - ``execution data changed``: under ``CacheMatch.STRICT``, the input was computed with
    this code but another executor, executor options or Python version (fields named);
  - ``upstream changed``: a row with the same tag is recorded, with another input packet;
  - ``new input``: nothing of the row was seen before.

  Pending rows whose input the result cache already holds (a ``run()`` records them without
  computing) are counted as ``reused``.
* When nothing is pending (typically after a run), the rows that **were computed**
  (``__computed`` records) are grouped the same way, judged against what was stored before
  their result (older results of the same input, failures, records of the same tag).

Decisions:

* Read-only means no record, result or failure is written; a Delta store may still write
  the lookup-index sidecars its queries use (a cache beside the data, see
  ``orcapod.databases.column_index``).
* Comments, docstrings and formatting never change a code hash, so they never show up here.
* "Upstream changed" looks at the records under the node's current code only; a row whose
  code and upstream both changed is reported as ``code changed`` when its input was seen,
  else as ``new input``.
* In a pipeline, a node's input is what its upstream nodes have stored: before the upstream
  nodes run, ``explain`` sees their stored rows, not the ones they are about to compute. So
  ``explain_node`` first explains the nearest function nodes above the node (through any
  operators); when one of them has pending rows (or waits on its own upstream nodes), the
  node's work is not known yet: its explanation is ``pending`` with ``known`` False, names
  those nodes in ``waiting_on`` and says "depends on 'f', which has 2 pending rows; its work
  is known after 'f' runs", followed by what is pending among the rows stored so far. It
  never claims "0 of 0 rows" for a node whose input is about to change.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod._arrow_without_pandas import column_numpy
from orcapod.functions.engine.identify import InputPlan
from orcapod.functions.identity_store import (
    StoredIdentity,
    diff_identities,
    identity_of,
    load_identities,
)
from orcapod.functions.provenance import CODE_HASH_KEY
from orcapod.nodes.function_view import FunctionNodeView
from orcapod.nodes.node_store import NodeStore
from orcapod.nodes.records import fetch_matching
from orcapod.types import CacheMatch
from orcapod.types.columns import (
    COMPUTED,
    ERROR_MESSAGE,
    ERROR_TYPE,
    INPUT_PACKET_HASH,
    PACKET_ID,
    PF_EXEC_PREFIX,
    PF_VAR_PREFIX,
    PIPELINE_ENTRY_ID,
    POD_TS,
)

__all__ = [
    "Explanation",
    "Reason",
    "ReasonGroup",
    "explain_function_node",
    "explain_node",
    "upstream_waits",
]

CODE_COLUMN = PF_VAR_PREFIX + CODE_HASH_KEY


class Reason:
    """The reasons a row is computed (string constants, in reporting order)."""

    FAILED_BEFORE = "failed before"
    RESULT_MISSING = "result missing"
    CODE_CHANGED = "code changed"
    EXECUTION_CHANGED = "execution data changed"
    UPSTREAM_CHANGED = "upstream changed"
    NEW_INPUT = "new input"
    ORDER = (
        FAILED_BEFORE,
        RESULT_MISSING,
        CODE_CHANGED,
        EXECUTION_CHANGED,
        UPSTREAM_CHANGED,
        NEW_INPUT,
    )


@dataclass(frozen=True)
class ReasonGroup:
    """Rows computed for one reason (and, for a change, one set of changes)."""

    reason: str
    details: tuple[str, ...]  #: e.g. the changed components, the error, the changed fields
    tags: pa.Table  #: the rows' user tags, in input order

    @property
    def count(self) -> int:
        return int(self.tags.num_rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "details": list(self.details),
            "count": self.count,
            "tags": self.tags.to_pylist(),
        }


@dataclass(frozen=True)
class Explanation:
    """Why a node's rows would be (``pending``) or were computed."""

    node: str
    pending: bool
    groups: tuple[ReasonGroup, ...]
    reused: int = 0  #: pending rows the result cache already holds (recorded, not computed)
    total_rows: int = 0
    code_hash: str = ""
    notes: tuple[str, ...] = field(default=())
    #: upstream function nodes with work still to do, as (label, pending rows) - rows None
    #: when that node itself waits on its upstream nodes: this node's input is what they
    #: store, so its own work is known only after they run (see ``known``)
    waiting_on: tuple[tuple[str, int | None], ...] = field(default=())

    @property
    def known(self) -> bool:
        """False when upstream nodes must run before this node's work can be known."""
        return not self.waiting_on

    @property
    def count(self) -> int:
        return sum(g.count for g in self.groups)

    def by_reason(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for g in self.groups:
            out[g.reason] += g.count
        return dict(out)

    def details(self, reason: str) -> list[str]:
        return [d for g in self.groups if g.reason == reason for d in g.details]

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "pending": self.pending,
            "total_rows": self.total_rows,
            "reused": self.reused,
            "code_hash": self.code_hash,
            "known": self.known,
            "waiting_on": [{"node": n, "pending_rows": r} for n, r in self.waiting_on],
            "groups": [g.to_dict() for g in self.groups],
        }

    def __str__(self) -> str:
        if self.waiting_on:
            names = [repr(n) for n, _ in self.waiting_on]
            run = f"{names[0]} runs" if len(names) == 1 else f"{', '.join(names)} run"
            lines = [
                f"node {self.node!r}: depends on {'; '.join(map(_waiting_text, self.waiting_on))}"
                f"; its work is known after {run}",
                f"  so far: would compute {self.count} of {self.total_rows} rows stored upstream",
            ]
        else:
            verb = "would compute" if self.pending else "computed"
            lines = [f"node {self.node!r}: {verb} {self.count} of {self.total_rows} rows"]
        if self.reused:
            lines.append(f"  {self.reused} rows reuse stored results (no compute)")
        for g in self.groups:
            lines.append(f"  {g.reason}: {g.count} rows")
            lines.extend(f"    - {d}" for d in g.details)
            # (a column-less table does not clip a slice: a tag-less input's rows have no
            # tags to show)
            sample = g.tags.slice(0, 3).to_pylist() if g.tags.num_columns else []
            if sample:
                more = f" (+{g.count - len(sample)} more)" if g.count > len(sample) else ""
                lines.append(f"    rows: {', '.join(map(str, sample))}{more}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _waiting_text(wait: tuple[str, int | None]) -> str:
    label, rows = wait
    if rows is None:
        return f"{label!r}, whose own work waits on its upstream nodes"
    return f"{label!r}, which has {rows} pending row{'s' if rows != 1 else ''}"


def upstream_waits(
    stream: Any, explained: Mapping[str, Explanation] | None = None
) -> tuple[tuple[str, int | None], ...]:
    """The nearest function nodes above ``stream`` (through operators, not past a function
    node) whose stored rows a run would still change, with their pending rows (None when the
    node waits on its own upstream nodes). ``explained`` holds explanations made already, by
    label (``Pipeline.explain`` goes in graph order); others are made here."""
    waits: dict[str, int | None] = {}
    seen: set[int] = set()
    todo = [stream]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if not isinstance(current, FunctionNodeView):
            todo.extend(reversed(tuple(getattr(current, "upstreams", ()) or ())))
            continue
        label = current.label
        upstream = (explained or {}).get(label)
        if upstream is None:
            upstream = explain_node(current, explained)
        if upstream.waiting_on:
            waits[label] = None
        elif upstream.pending:
            waits[label] = upstream.count + upstream.reused
    return tuple(waits.items())


def explain_node(
    node: FunctionNodeView, explained: Mapping[str, Explanation] | None = None
) -> Explanation:
    """``node``'s explanation, told whether its upstream function nodes still have work (see
    the module docstring); ``explained`` as in ``upstream_waits``."""
    return explain_function_node(
        node.label,
        node._input.plan(),
        node._store(),
        node._packet_function,
        node.cache_match,
        waiting_on=upstream_waits(node._input.stream, explained),
    )


@dataclass(frozen=True)
class _Context:
    plan: InputPlan
    store: NodeStore
    packet_function: Any
    cache_match: CacheMatch


def explain_function_node(
    label: str,
    plan: InputPlan,
    store: NodeStore,
    packet_function: Any,
    cache_match: CacheMatch,
    *,
    waiting_on: Sequence[tuple[str, int | None]] = (),
) -> Explanation:
    """Classify the rows of ``plan`` (see the module docstring); reads, never writes.
    ``waiting_on``: upstream nodes with work still to do (``upstream_waits``); with any, the
    explanation is pending and lists the rows pending so far."""
    waits = tuple(waiting_on)
    ctx = _Context(plan, store, packet_function, CacheMatch(cache_match))
    n = plan.num_entries
    recorded = np.zeros(n, dtype=bool)
    computed = np.zeros(n, dtype=bool)
    missing = np.zeros(n, dtype=bool)
    own_ids: list[str | None] = [None] * n
    found = store.recorded(plan, [PACKET_ID, COMPUTED])
    if found is not None:
        records, which = found
        ids = records.column(PACKET_ID).combine_chunks()
        valid = column_numpy(pc.is_valid(ids))
        recorded[which] = True
        flags = column_numpy(records.column(COMPUTED)).astype(bool)
        pointing = np.flatnonzero(valid)
        if len(pointing):
            exists = store.results_exist(ids.take(pa.array(pointing, pa.int64())))
            missing[which[pointing[~exists]]] = True
            keep = pointing[exists & flags[pointing]]
            computed[which[keep]] = True
            for i, pid in zip(
                which[keep].tolist(), ids.take(pa.array(keep, pa.int64())).to_pylist(), strict=True
            ):
                own_ids[i] = pid
    pending = np.flatnonzero(~recorded | missing)
    code_hash = str(packet_function.code_hash)
    if len(pending):
        reasons, details, reused = _classify(ctx, pending, missing, own_ids, before_own=False)
        groups = _groups(plan, pending, reasons, details)
        return Explanation(label, True, groups, reused, plan.num_rows, code_hash, waiting_on=waits)
    if waits:  # nothing pending among the rows stored upstream so far
        return Explanation(label, True, (), 0, plan.num_rows, code_hash, waiting_on=waits)
    done = np.flatnonzero(computed)
    reasons, details, _ = _classify(ctx, done, missing, own_ids, before_own=True)
    groups = _groups(plan, done, reasons, details)
    return Explanation(label, False, groups, 0, plan.num_rows, code_hash)


def _classify(
    ctx: _Context,
    entries: np.ndarray,
    missing: np.ndarray,
    own_ids: Sequence[str | None],
    before_own: bool,
) -> tuple[list[str], list[tuple[str, ...]], int]:
    """Per entry of ``entries`` its reason and details; and how many are cache hits."""
    plan, store = ctx.plan, ctx.store
    k = len(entries)
    reasons: list[str] = [""] * k
    details: list[tuple[str, ...]] = [()] * k
    # failures of these entries (any attempt)
    failed = fetch_matching(
        store.failure_db,
        store.record_path,
        PIPELINE_ENTRY_ID,
        plan.entry_keys[entries],
        lambda: plan.unique_ids.take(pa.array(entries, pa.int64())),
        [ERROR_TYPE, ERROR_MESSAGE],
        id_is_record_id=False,
    )
    failure: dict[int, tuple[str, ...]] = {}
    if failed is not None:
        table, which = failed
        kinds = table.column(ERROR_TYPE).to_pylist()
        messages = table.column(ERROR_MESSAGE).to_pylist()
        for pos, kind, message in zip(which.tolist(), kinds, messages, strict=True):
            failure[pos] = (f"{kind}: {message}"[:200],)
    input_hashes = plan.input_hashes(plan.first_rows[entries]).to_pylist()
    results = _results_by_input(store, sorted(set(input_hashes)))
    current = str(ctx.packet_function.code_hash)
    execution = {
        PF_EXEC_PREFIX + key: value
        for key, value in ctx.packet_function.get_execution_data().items()
    }
    old_codes: set[str] = set()
    reused = 0
    unseen: list[int] = []
    for pos, entry in enumerate(entries.tolist()):
        if pos in failure:
            reasons[pos], details[pos] = Reason.FAILED_BEFORE, failure[pos]
            continue
        if missing[entry]:
            reasons[pos] = Reason.RESULT_MISSING
            continue
        rows = results.get(input_hashes[pos], [])
        own = own_ids[entry]
        if before_own:
            own_ts = next((r[POD_TS] for r in rows if r[PACKET_ID] == own), None)
            rows = [
                r
                for r in rows
                if r[PACKET_ID] != own
                and (own_ts is None or r[POD_TS] is None or r[POD_TS] < own_ts)
            ]
        same = [r for r in rows if r[CODE_COLUMN] == current]
        if (ctx.cache_match is CacheMatch.VERSION and rows) or (
            ctx.cache_match is CacheMatch.CODE and same
        ):
            reused += 1
            reasons[pos] = ""
            continue
        if same and ctx.cache_match is CacheMatch.STRICT:
            if any(all(r.get(c) == v for c, v in execution.items()) for r in same):
                reused += 1
                continue
            newest = max(same, key=lambda r: r[POD_TS])
            changed = tuple(
                f"{c.removeprefix(PF_EXEC_PREFIX)}: {newest.get(c)!r} → {v!r}"
                for c, v in execution.items()
                if newest.get(c) != v
            )
            reasons[pos], details[pos] = Reason.EXECUTION_CHANGED, changed
            continue
        if rows:
            newest = max(rows, key=lambda r: r[POD_TS])
            reasons[pos] = Reason.CODE_CHANGED
            details[pos] = (str(newest[CODE_COLUMN]),)
            old_codes.add(str(newest[CODE_COLUMN]))
            continue
        unseen.append(pos)
    if unseen:
        same_tag = _recorded_tags(ctx, entries[np.array(unseen)], own_ids, before_own)
        for pos, hit in zip(unseen, same_tag, strict=True):
            reasons[pos] = Reason.UPSTREAM_CHANGED if hit else Reason.NEW_INPUT
    if old_codes:
        _describe_code_changes(ctx, reasons, details, old_codes)
    return reasons, details, reused


def _describe_code_changes(
    ctx: _Context, reasons: list[str], details: list[tuple[str, ...]], old_codes: set[str]
) -> None:
    stored = load_identities(ctx.store.cache.database, old_codes)
    now: StoredIdentity | None = identity_of(ctx.packet_function)
    described: dict[str, tuple[str, ...]] = {}
    for code in old_codes:
        old = stored.get(code)
        if old is None or now is None:
            described[code] = (
                f"code {code[:20]}… → {str(ctx.packet_function.code_hash)[:20]}… "
                "(components of the old code were not recorded)",
            )
            continue
        changes = diff_identities(old, now)
        described[code] = tuple(c.describe() for c in changes) or (
            "code identity changed (no component differs: hashed by another version)",
        )
    for pos, reason in enumerate(reasons):
        if reason == Reason.CODE_CHANGED:
            details[pos] = described[details[pos][0]]


def _results_by_input(store: NodeStore, hashes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every stored result row (id, code hash, execution fields, time) per input hash."""
    if not hashes:
        return {}
    cache = store.cache
    table = cache.database.get_records_with_column_value(
        cache.record_path, {INPUT_PACKET_HASH: hashes}, record_id_column=PACKET_ID
    )
    if table is None:
        return {}
    keep = [
        c
        for c in table.column_names
        if c in (PACKET_ID, INPUT_PACKET_HASH, CODE_COLUMN, POD_TS) or c.startswith(PF_EXEC_PREFIX)
    ]
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in table.select(keep).to_pylist():
        out[row[INPUT_PACKET_HASH]].append(row)
    return out


def _recorded_tags(
    ctx: _Context, entries: np.ndarray, own_ids: Sequence[str | None], before_own: bool
) -> list[bool]:
    """Per entry: is another entry with the same user tags recorded under this code?"""
    plan, store = ctx.plan, ctx.store
    tag_columns = list(plan.tag_columns)
    if not tag_columns:
        return [False] * len(entries)
    tags = plan.tags(plan.first_rows[entries], user_only=True)
    scalar = [c for c in tag_columns if not pa.types.is_nested(tags.schema.field(c).type)]
    constraints = {}
    if scalar:  # list-valued tags (after a Batch) are compared here, not in the query
        constraints = {scalar[0]: pc.unique(tags.column(scalar[0])).to_pylist()}
    table = store.pipeline_db.get_records_with_column_value(
        store.record_path,
        constraints,
        record_id_column=PIPELINE_ENTRY_ID,
        columns=[*tag_columns, PIPELINE_ENTRY_ID],
    )
    if table is None:
        return [False] * len(entries)
    ids = plan.unique_ids.take(pa.array(entries, pa.int64())).to_pylist()
    stored: dict[str, set[str]] = defaultdict(set)
    for row in table.to_pylist():
        stored[_key(row, tag_columns)].add(row[PIPELINE_ENTRY_ID])
    out = []
    for row, entry_id in zip(tags.to_pylist(), ids, strict=True):
        others = stored.get(_key(row, tag_columns), set()) - {entry_id}
        out.append(bool(others))
    return out


def _key(row: dict[str, Any], columns: Sequence[str]) -> str:
    return repr(tuple(row[c] for c in columns))  # list-valued tags are not hashable


def _groups(
    plan: InputPlan, entries: np.ndarray, reasons: list[str], details: list[tuple[str, ...]]
) -> tuple[ReasonGroup, ...]:
    """Rows (every input row of each entry, in input order) grouped by reason and details."""
    keyed: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for entry, reason, detail in zip(entries.tolist(), reasons, details, strict=True):
        if reason:
            keyed[(reason, detail)].append(entry)
    groups = []
    for (reason, detail), members in sorted(
        keyed.items(), key=lambda kv: (Reason.ORDER.index(kv[0][0]), kv[0][1])
    ):
        wanted = np.zeros(plan.num_entries, dtype=bool)
        wanted[np.array(members)] = True
        rows = np.flatnonzero(wanted[plan.codes])
        groups.append(ReasonGroup(reason, detail, plan.tags(rows, user_only=True)))
    return tuple(groups)
