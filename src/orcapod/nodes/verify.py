"""``verify``: recompute a sample of a function node's stored results and compare.

``verify_function_node`` picks rows of the node's current input (a random ``sample``
fraction, or the rows whose tags match ``tags``), finds their stored results (one query for
their records, one for their results), calls the function on their input packets through the
node's executor - storing nothing - and compares every output value with the stored one:
exactly, except floats (also inside lists and dicts), which match within ``rel_tol`` /
``abs_tol`` (``math.isclose``; NaN matches NaN). A row whose recomputation raises is a
mismatch too.

A verification record is written to ``pipeline_database.at("_verifications")`` at the node's
record path: ``__record_id`` (the verification's run id) · ``node`` · ``code_hash`` ·
``sample`` (the fraction, null for ``tags``) · ``checked`` · ``matches`` · ``mismatches`` ·
``mismatched`` (JSON: per mismatching row its tag, column, stored and recomputed value
summaries) · ``rel_tol`` · ``abs_tol`` · ``__verified_at`` (UTC). ``record=False`` skips it.

Decisions:

* Only the sampled rows are identified (hashed): verifying 1 % of a million rows hashes
  10,000, so its cost is the calls plus two id look-ups.
* Rows not recorded yet, filtered rows (no result) and rows whose result is gone are not
  checked; ``checked`` counts the rows compared.
* A sample always holds at least one row when the input has rows; ``seed`` makes it
  reproducible.
* A mismatch means the function did not reproduce its stored output from the same input
  and code: the report calls it non-determinism and names the rows.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from orcapod._arrow_without_pandas import column_numpy
from orcapod.data import Packet
from orcapod.data.conversion import column_to_pylist
from orcapod.errors import InputValidationError
from orcapod.functions.engine.dispatch import call_each
from orcapod.functions.engine.identify import InputPlan
from orcapod.hashing.function_identity import value_summary
from orcapod.nodes.node_store import NodeStore
from orcapod.types import ColumnConfig
from orcapod.types.columns import PACKET_ID

__all__ = ["VERIFICATION_AREA", "VerificationReport", "values_match", "verify_function_node"]

VERIFICATION_AREA = "_verifications"


@dataclass(frozen=True)
class VerificationReport:
    """The outcome of one ``verify``: rows checked and the rows that did not reproduce."""

    run_id: str
    node: str
    sample: float | None
    checked: int
    matches: int
    mismatches: tuple[dict[str, Any], ...]  #: per row: tag, column, stored, recomputed

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "node": self.node,
            "sample": self.sample,
            "checked": self.checked,
            "matches": self.matches,
            "mismatches": list(self.mismatches),
        }

    def __str__(self) -> str:
        head = f"node {self.node!r}: verified {self.checked} rows (run {self.run_id})"
        if self.ok:
            return f"{head}: all {self.matches} reproduced"
        lines = [
            f"{head}: {len(self.mismatches)} rows did NOT reproduce their stored output "
            "(non-deterministic function, or an input/environment it reads that changed):"
        ]
        for m in self.mismatches[:20]:
            lines.append(
                f"  {m['tag']}: {m['column']} stored {m['stored']} recomputed {m['recomputed']}"
            )
        if len(self.mismatches) > 20:
            lines.append(f"  ... {len(self.mismatches) - 20} more")
        return "\n".join(lines)


def values_match(stored: Any, recomputed: Any, rel_tol: float, abs_tol: float) -> bool:
    """Exact equality, floats within tolerance (recursively in lists, tuples and dicts)."""
    if isinstance(stored, float) or isinstance(recomputed, float):
        if isinstance(stored, int | float) and isinstance(recomputed, int | float):
            if math.isnan(stored) and math.isnan(recomputed):
                return True
            return math.isclose(stored, recomputed, rel_tol=rel_tol, abs_tol=abs_tol)
        return False
    if isinstance(stored, list | tuple) and isinstance(recomputed, list | tuple):
        return len(stored) == len(recomputed) and all(
            values_match(a, b, rel_tol, abs_tol) for a, b in zip(stored, recomputed, strict=True)
        )
    if isinstance(stored, Mapping) and isinstance(recomputed, Mapping):
        return stored.keys() == recomputed.keys() and all(
            values_match(stored[k], recomputed[k], rel_tol, abs_tol) for k in stored
        )
    if hasattr(stored, "shape") or hasattr(recomputed, "shape"):  # numpy arrays
        try:
            return bool(np.allclose(stored, recomputed, rtol=rel_tol, atol=abs_tol, equal_nan=True))
        except TypeError:
            return bool(np.array_equal(stored, recomputed))
    return bool(stored == recomputed)


class _Rows:
    """Selected rows of an input table, as the stream ``InputPlan`` reads."""

    def __init__(self, keys: tuple[tuple[str, ...], tuple[str, ...]], table: pa.Table) -> None:
        self._keys = keys
        self._table = table

    def keys(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self._keys

    def as_table(self, columns: Any = None) -> pa.Table:
        return self._table


def _select(
    table: pa.Table,
    tag_columns: Sequence[str],
    sample: float | None,
    tags: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    seed: int | None,
) -> np.ndarray:
    n = table.num_rows
    if tags is not None:
        wanted = [tags] if isinstance(tags, Mapping) else list(tags)
        mask = np.zeros(n, dtype=bool)
        for one in wanted:
            unknown = set(one) - set(tag_columns)
            if unknown:
                raise InputValidationError(
                    f"verify(tags=...) names {sorted(unknown)}, which are not tag columns of "
                    f"the node's input; use some of {list(tag_columns)}"
                )
            part = np.ones(n, dtype=bool)
            for column, value in one.items():
                part &= column_numpy(pc.equal(table.column(column), value))
            mask |= part
        return np.flatnonzero(mask)
    fraction = 0.01 if sample is None else float(sample)
    if not 0 < fraction <= 1:
        raise InputValidationError(
            f"verify(sample=...) must be a fraction in (0, 1], got {sample!r}; e.g. 0.01 for 1 %"
        )
    k = min(n, max(1, math.ceil(fraction * n))) if n else 0
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False)) if k else np.empty(0, np.int64)


def verify_function_node(
    label: str,
    read_stream: Any,
    store: NodeStore,
    pod: Any,
    *,
    sample: float | None = None,
    tags: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    rel_tol: float = 1e-9,
    abs_tol: float = 0.0,
    seed: int | None = None,
    record: bool = True,
) -> VerificationReport:
    """Recompute the selected rows and compare with their stored results (module docstring)."""
    if sample is not None and tags is not None:
        raise InputValidationError("pass either sample=... or tags=..., not both")
    keys = read_stream.keys()
    table = read_stream.as_table(ColumnConfig(system_tags=True, source=True))
    rows = _select(table, keys[0], sample, tags, seed)
    plan = InputPlan(_Rows(keys, table.take(pa.array(rows, pa.int64()))))
    pf = pod.packet_function
    outputs = list(store.output_schema)
    checked_entries: np.ndarray = np.empty(0, np.int64)
    stored_values: dict[str, list[Any]] = {}
    found = store.recorded(plan, [PACKET_ID]) if plan.num_entries else None
    if found is not None:
        records, which = found
        ids = records.column(PACKET_ID).combine_chunks()
        valid = np.flatnonzero(column_numpy(pc.is_valid(ids)))
        if len(valid):
            got = store.results(ids.take(pa.array(valid, pa.int64())), outputs)
            if got is not None:
                results, at = got
                ok = np.flatnonzero(at >= 0)
                checked_entries = which[valid[ok]]
                taken = results.take(pa.array(at[ok], pa.int64()))
                stored_values = {
                    c: column_to_pylist(taken.column(c), store.output_schema[c]) for c in outputs
                }
    recomputed: dict[int, Any] = {}
    errors: dict[int, Exception] = {}
    if len(checked_entries):
        _, packet_schema = read_stream.output_schema()
        packets = plan.packets(plan.first_rows[checked_entries], packet_schema)

        def done(key: int, output: Packet | dict[str, Any] | None) -> None:
            recomputed[key] = output.as_dict() if isinstance(output, Packet) else output

        def failed(key: int, err: Exception) -> None:
            errors[key] = err

        call_each(
            pf, range(len(checked_entries)), packets, pod.concurrency_window(None), done, failed
        )
    tag_rows = plan.tags(plan.first_rows[checked_entries], user_only=True).to_pylist()
    mismatches: list[dict[str, Any]] = []
    for i, tag in enumerate(tag_rows):
        if i in errors:
            err = errors[i]
            mismatches.append(
                {
                    "tag": tag,
                    "column": "*",
                    "stored": "(a result)",
                    "recomputed": f"raised {type(err).__name__}: {err}"[:200],
                }
            )
            continue
        values = recomputed.get(i)
        for column in outputs:
            old = stored_values[column][i]
            new = None if values is None else values.get(column)
            if not values_match(old, new, rel_tol, abs_tol):
                mismatches.append(
                    {
                        "tag": tag,
                        "column": column,
                        "stored": value_summary(old),
                        "recomputed": value_summary(new),
                    }
                )
                break
    run_id = uuid.uuid4().hex
    checked = len(tag_rows)
    report = VerificationReport(
        run_id,
        label,
        None if tags is not None else (0.01 if sample is None else float(sample)),
        checked,
        checked - len(mismatches),
        tuple(mismatches),
    )
    if record:
        _write_record(store, report, str(pf.code_hash), rel_tol, abs_tol)
    return report


def _write_record(
    store: NodeStore, report: VerificationReport, code_hash: str, rel_tol: float, abs_tol: float
) -> None:
    string = pa.large_string()
    row = pa.table(
        {
            "node": pa.array([report.node], string),
            "code_hash": pa.array([code_hash], string),
            "sample": pa.array([report.sample], pa.float64()),
            "checked": pa.array([report.checked], pa.int64()),
            "matches": pa.array([report.matches], pa.int64()),
            "mismatches": pa.array([len(report.mismatches)], pa.int64()),
            "mismatched": pa.array([json.dumps(list(report.mismatches), default=str)], string),
            "rel_tol": pa.array([rel_tol], pa.float64()),
            "abs_tol": pa.array([abs_tol], pa.float64()),
            "__verified_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
        }
    )
    database = store.pipeline_db.at(VERIFICATION_AREA)
    database.add_record(store.record_path, report.run_id, row, flush=True)
