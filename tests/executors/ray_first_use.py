"""A fresh process whose first ``RayExecutor`` call starts (or joins) Ray itself (a script).

Run as ``python ray_first_use.py`` by ``tests/executors/test_ray_cluster.py``: with no Ray
initialised, it runs one call through ``RayExecutor()`` (``address=None``) and prints ONE JSON
line: the node the call ran on, the arguments and niceness of the worker process that ran it,
and the driver's node and niceness. With ``RAY_ADDRESS`` set in its environment Ray joins
that cluster instead of starting one.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # it probes the cloud metadata address

import json
import sys
from typing import Any

import ray

from orcapod.executors import RayExecutor


def worker_view() -> dict[str, Any]:
    """Where the call ran: the node, the arguments the worker process was started with
    (``sys.argv``: Ray rewrites the process title) and the worker's niceness."""
    import ray  # the worker's Ray

    return {
        "node": ray.get_runtime_context().get_node_id(),
        "argv": sys.argv,
        "niceness": os.nice(0),
    }


def main() -> None:
    assert not ray.is_initialized()
    seen = RayExecutor().submit_callable(worker_view, {}).result()
    try:
        node = ray.get_runtime_context().get_node_id()
        driver = {"driver_node": node, "driver_niceness": os.nice(0)}
        print(json.dumps({**seen, **driver}))
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
