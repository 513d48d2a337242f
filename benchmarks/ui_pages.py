"""Server time of every page of ``orcapod ui`` over a store with 20 nodes and 1M rows.

Goal: each page in <= 300 ms. The store (``benchmarks/ui_store.py``: a function node over
1,000,000 rows with failures, and 19 more nodes) is built once and reused. The app is served
by uvicorn in this process on a free loopback port, as ``orcapod ui`` serves it, and each
page is fetched over HTTP: one untimed request first (a new process reads the lookup-index
packs of the big tables once), then ``--repeats`` timed ones; the median is printed with the
minimum. The node page includes its failures (with their tracebacks and captured output),
its first page of rows, its code identity and its runs.

    .venv/bin/python benchmarks/ui_pages.py [--rows N] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import threading
import time
import urllib.request
from urllib.parse import unquote

import uvicorn

from orcapod.ui import create_app
from ui_store import build

GOAL_S = 0.3


def _get(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as answer:
        body = answer.read().decode("utf-8")
        assert answer.status == 200, (url, answer.status)
    return time.perf_counter() - start, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small smoke sizes")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 2_000, 1
    store, took = build(args.rows)
    print(json.dumps({"benchmark": "ui_pages", "phase": "build", "build_s": round(took, 2)}))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(store), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    while not server.started:
        time.sleep(0.05)
    node = "/node/bench/increment"
    _, html = _get(base + node)
    ok_row = re.findall(r'href="(/node/bench/increment/row/[^"]+)"', html)
    failed = re.search(r'class="open" href="(/node/bench/increment/row/[^"]+)"', html)
    assert failed is not None and ok_row, "the node page lists no rows or no failure"
    _, deep = _get(base + "/node/bench/stage_8")
    deep_row = re.findall(r'href="(/node/bench/stage_8/row/[^"]+)"', deep)[0]
    pages = {
        "graph": "/",
        "node (failures, first rows, code, runs)": node,
        "node rows page 10,000": node + "?page=10000",
        "node rows sorted by tag": node + "?sort=id&desc=1",
        "row lineage (failed row)": failed.group(1),
        "row lineage (ok row)": ok_row[-1],
        "row lineage (9 functions deep)": deep_row,
        "runs": "/runs",
        "api fingerprint": "/api/fingerprint",
    }
    for name, path in pages.items():
        _get(base + path)  # warm-up
        times = [_get(base + path)[0] for _ in range(max(args.repeats, 1))]
        median = statistics.median(times)
        print(
            json.dumps(
                {
                    "benchmark": "ui_pages",
                    "page": name,
                    "path": unquote(path)[:80],
                    "rows": args.rows,
                    "nodes": 20,
                    "median_s": round(median, 3),
                    "min_s": round(min(times), 3),
                    "runs": len(times),
                    "goal_s": GOAL_S,
                    "meets_goal": median <= GOAL_S,
                    "load": os.getloadavg()[0],
                }
            ),
            flush=True,
        )
    server.should_exit = True
    thread.join(timeout=10)


if __name__ == "__main__":
    main()
