"""Framework overhead of a lazy function pod over N rows with a trivial function.

Figures (one JSON object per line):

* ``plain_loop``: a plain Python loop calling the function on the same values (the baseline);
* ``input_iteration``: iterating the input stream only (what any consumer of it pays);
* ``pod_iterate``: ``for tag, packet in pod(stream): ...`` — a lazy pod, iterated once by a
  consumer that, like the plain loop, does not keep the rows (includes input iteration). The
  issue's goal (at most 5 µs per row of overhead) is measured here;
* ``pod_collect``: ``list(pod(stream))`` — the consumer keeps all N (tag, packet) pairs;
  ``plain_collect`` is its baseline: a plain loop that keeps, per row, a pair of two small
  objects (what any Python code pays to keep 3N objects alive: CPython's cyclic garbage
  collector rescans them on every full collection), so ``pod_collect`` - ``plain_collect`` is
  the framework's part;
* ``pod_reiterate``: iterating the same pod stream again (served from its position cache);
* ``pod_as_table``: ``as_table()`` of a fresh pod stream;
* ``cached_pod_first`` / ``cached_pod_rerun``: a ``CachedFunctionPod`` on an in-memory database,
  first run (all computed and stored) and a new application over the same input (all hits),
  collected with ``list``; ``*_iterate``: the same, iterated by a consumer that does not keep
  the rows (like ``pod_iterate``).

``overhead_us_per_row`` = (figure - baseline) / N, the baseline being ``plain_collect`` for
``pod_collect`` and ``plain_loop`` otherwise. Each figure is the best of ``--repeat`` runs.
``--quick`` uses N = 2,000. ``*_nogc`` figures repeat two of them with the collector paused.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

from orcapod.databases.in_memory import InMemoryArrowDatabase
from orcapod.functions import CachedFunctionPod, FunctionPod, PythonPacketFunction
from orcapod.sources import DictSource


def add(x: int, y: int) -> int:
    return x + y


def best(fn: Callable[[], Any], repeat: int, *, pause_gc: bool = False) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        if pause_gc:
            gc.disable()
        try:
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def _check(pod: FunctionPod, cached: CachedFunctionPod, source: Any, xs: Any, ys: Any) -> None:
    """What was timed computed the right rows (untimed): outputs, and the cached pod's
    computed / reused flags on a first run and a rerun."""
    expected = [x + y for x, y in zip(xs, ys, strict=True)]
    assert [p["z"] for _, p in pod(source)] == expected, "wrong pod outputs"
    assert pod(source).as_table().column("z").to_pylist() == expected
    fresh = CachedFunctionPod(pod, InMemoryArrowDatabase())
    first = list(fresh(source))
    assert [p["z"] for _, p in first] == expected
    assert all(p.get_meta_value("__computed") is True for _, p in first), "first run reused"
    again = list(fresh(source))
    assert [p["z"] for _, p in again] == expected
    assert not any(p.get_meta_value("__computed") for _, p in again), "rerun computed rows"
    assert [p["z"] for _, p in cached(source)] == expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small smoke size")
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = 2_000 if args.quick else args.n
    rows = [{"id": i, "x": i, "y": 2 * i} for i in range(n)]
    source = DictSource(rows, tag_columns=["id"])
    source.stream.as_table()  # build the enriched table outside the timings
    xs = [r["x"] for r in rows]
    ys = [r["y"] for r in rows]
    pod = FunctionPod(PythonPacketFunction(add, "z"))

    def plain() -> None:
        for x, y in zip(xs, ys, strict=True):
            add(x, y)

    class Row:
        __slots__ = ("value",)

        def __init__(self, value: int) -> None:
            self.value = value

    def plain_collect() -> list[tuple[Row, Row]]:
        return [(Row(x), Row(add(x, y))) for x, y in zip(xs, ys, strict=True)]

    def consume(rows: Any) -> None:
        for _ in rows:
            pass

    figures: dict[str, float] = {}
    figures["plain_loop"] = best(plain, args.repeat)
    figures["plain_collect"] = best(plain_collect, args.repeat)
    figures["input_iteration"] = best(lambda: consume(source.iter_packets()), args.repeat)
    figures["pod_iterate"] = best(lambda: consume(pod(source)), args.repeat)
    figures["pod_collect"] = best(lambda: list(pod(source)), args.repeat)
    stream = pod(source)
    list(stream)
    figures["pod_reiterate"] = best(lambda: consume(stream), args.repeat)
    figures["pod_as_table"] = best(lambda: pod(source).as_table(), args.repeat)
    figures["pod_iterate_nogc"] = best(lambda: consume(pod(source)), args.repeat, pause_gc=True)
    figures["pod_collect_nogc"] = best(lambda: list(pod(source)), args.repeat, pause_gc=True)

    def cached_first() -> None:
        cached = CachedFunctionPod(pod, InMemoryArrowDatabase())
        list(cached(source))

    figures["cached_pod_first"] = best(cached_first, args.repeat)
    cached = CachedFunctionPod(pod, InMemoryArrowDatabase())
    list(cached(source))
    figures["cached_pod_rerun"] = best(lambda: list(cached(source)), args.repeat)

    def cached_first_iterate() -> None:
        consume(CachedFunctionPod(pod, InMemoryArrowDatabase())(source))

    figures["cached_pod_first_iterate"] = best(cached_first_iterate, args.repeat)
    figures["cached_pod_rerun_iterate"] = best(lambda: consume(cached(source)), args.repeat)
    _check(pod, cached, source, xs, ys)

    for name, seconds in figures.items():
        base = figures["plain_collect" if name.startswith("pod_collect") else "plain_loop"]
        record = {
            "benchmark": f"function_pod.{name}",
            "n": n,
            "seconds": round(seconds, 6),
            "rows_per_s": round(n / seconds) if seconds else None,
            "us_per_row": round(seconds / n * 1e6, 3),
            "overhead_us_per_row": round((seconds - base) / n * 1e6, 3),
        }
        print(json.dumps(record))


if __name__ == "__main__":
    main()
