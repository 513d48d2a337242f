"""Framework overhead of a lazy function pod over N rows with a trivial function.

Figures (one JSON object per line):

* ``plain_loop``: a plain Python loop calling the function on the same values (the baseline);
* ``input_iteration``: iterating the input stream only (what any consumer of it pays);
* ``pod_iterate``: ``list(pod(stream))`` — lazy pod, iterated once (includes input iteration);
* ``pod_reiterate``: iterating the same pod stream again (served from its position cache);
* ``pod_as_table``: ``as_table()`` of a fresh pod stream;
* ``cached_pod_first`` / ``cached_pod_rerun``: a ``CachedFunctionPod`` on an in-memory database,
  first run (all computed and stored) and a new application over the same input (all hits).

``overhead_us_per_row`` = (figure - plain_loop) / N. The goal for ``pod_iterate`` is at most
5 µs per row. Each figure is the best of ``--repeat`` runs. ``--quick`` uses N = 2,000.

The ``*_nogc`` figures repeat the iteration figures with Python's cyclic garbage collector
paused during the timing: a stream that caches N rows keeps several objects per row alive, and
the collector's periodic full scans of them cost as much as the pod itself at N = 100k. The
difference is the collector's share, paid by any code that keeps that many objects.
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

    figures: dict[str, float] = {}
    figures["plain_loop"] = best(plain, args.repeat)
    figures["input_iteration"] = best(lambda: list(source.iter_packets()), args.repeat)
    figures["pod_iterate"] = best(lambda: list(pod(source)), args.repeat)
    stream = pod(source)
    list(stream)
    figures["pod_reiterate"] = best(lambda: list(stream), args.repeat)
    figures["pod_as_table"] = best(lambda: pod(source).as_table(), args.repeat)
    figures["input_iteration_nogc"] = best(
        lambda: list(source.iter_packets()), args.repeat, pause_gc=True
    )
    figures["pod_iterate_nogc"] = best(lambda: list(pod(source)), args.repeat, pause_gc=True)

    def cached_first() -> None:
        cached = CachedFunctionPod(pod, InMemoryArrowDatabase())
        list(cached(source))

    figures["cached_pod_first"] = best(cached_first, args.repeat)
    cached = CachedFunctionPod(pod, InMemoryArrowDatabase())
    list(cached(source))
    figures["cached_pod_rerun"] = best(lambda: list(cached(source)), args.repeat)

    base = figures["plain_loop"]
    for name, seconds in figures.items():
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
