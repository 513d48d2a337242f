"""Cost of observing a run: packet events, log capture, and reading a store's status.

Figures (best of ``--repeats`` runs, each on a fresh Delta store, after one warm-up; the run
figures are CPU time of this process, ``time.process_time``, so other work on a shared machine
does not inflate them; ``*_wall`` figures give the wall-clock time too):

* ``run_logs_off_us_per_row``: first run of a pipeline with one trivial function node over
  ``--rows`` rows (default 100,000), ``Pipeline.run(logs=False, progress=False)``: no packet
  observer listens to the packets (the run history and catalog are still written);
* ``run_events_us_per_row``: the same with a ``StatusObserver`` (packet events, no capture);
* ``run_logs_on_us_per_row``: the same with ``logs=True`` (every call captured, one log row
  per call stored);
* ``events_extra_us_per_row`` / ``logs_extra_us_per_row``: events / on minus off (goal for
  the logs: <= 2 us/row);
* ``status_seconds``: ``StoreView.nodes()`` + ``runs()`` (what ``orcapod status`` reads) on a
  store holding ``--status-nodes`` function nodes over ``--status-rows`` rows in all (default
  20 nodes, 1,000,000 rows; goal <= 1 s).

Prints one JSON object per figure.

    .venv/bin/python benchmarks/observability.py [--quick] [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline, StatusObserver, StoreView
from orcapod.sources import ArrowTableSource

GOALS = {"logs_extra_us_per_row": 2.0, "status_seconds": 1.0}


@function_pod("y")
def bump(x: int) -> int:
    return x + 1


def source(rows: int, offset: int = 0) -> ArrowTableSource:
    table = pa.table({"k": pa.array(range(rows)), "x": pa.array(range(offset, offset + rows))})
    return ArrowTableSource(table, tag_columns=["k"], source_id=f"bench{offset}")


def timed_run(rows: int, **run_options: Any) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a first run over ``rows`` rows."""
    base = tempfile.mkdtemp(prefix="orcapod-bench-obs-")
    try:
        pipeline = Pipeline("bench", DeltaTableDatabase(base))
        with pipeline:
            bump.pod(source(rows))
        cpu, wall = time.process_time(), time.perf_counter()
        summary = pipeline.run(progress=False, **run_options)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert summary["bump"].computed == rows
        return cpu, wall
    finally:
        shutil.rmtree(base, ignore_errors=True)


def best_of(repeats: int, fn: Callable[[], Any]) -> Any:
    fn()
    return min(fn() for _ in range(repeats))


def status_seconds(nodes: int, rows: int, repeats: int) -> float:
    base = tempfile.mkdtemp(prefix="orcapod-bench-status-")
    try:
        pipeline = Pipeline("bench", DeltaTableDatabase(base))
        per_node = rows // nodes
        with pipeline:
            for i in range(nodes):
                bump.pod(source(per_node, offset=i * per_node), label=f"bump_{i}")
        pipeline.run(progress=False, logs=False)

        def read() -> float:
            start = time.perf_counter()
            view = StoreView(base)
            listed = view.nodes()
            view.runs()
            elapsed = time.perf_counter() - start
            assert len(listed) == 2 * nodes
            return elapsed

        return best_of(repeats, read)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def emit(figure: str, value: float, **extra: Any) -> None:
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in extra.items()}
    record: dict[str, Any] = {"figure": figure, "value": round(value, 3), **rounded}
    if figure in GOALS:
        record["goal"] = GOALS[figure]
        record["ok"] = value <= GOALS[figure]
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--status-nodes", type=int, default=20)
    parser.add_argument("--status-rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats, args.status_rows = 10_000, 1, 100_000
    rows = args.rows
    off = best_of(args.repeats, lambda: timed_run(rows, logs=False))
    events = best_of(args.repeats, lambda: timed_run(rows, logs=False, observer=StatusObserver()))
    on = best_of(args.repeats, lambda: timed_run(rows, logs=True))
    per_row = 1e6 / rows
    emit("run_logs_off_us_per_row", off[0] * per_row, rows=rows, wall=off[1] * per_row)
    emit("run_events_us_per_row", events[0] * per_row, rows=rows, wall=events[1] * per_row)
    emit("run_logs_on_us_per_row", on[0] * per_row, rows=rows, wall=on[1] * per_row)
    emit("events_extra_us_per_row", (events[0] - off[0]) * per_row, rows=rows)
    emit("logs_extra_us_per_row", (on[0] - off[0]) * per_row, rows=rows)
    emit(
        "status_seconds",
        status_seconds(args.status_nodes, args.status_rows, args.repeats),
        nodes=args.status_nodes,
        rows=args.status_rows,
    )


if __name__ == "__main__":
    main()
