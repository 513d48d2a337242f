"""A two-node Ray cluster on 127.0.0.1 and a driver running pipelines on it (a script).

Run as ``python loopback_cluster.py <store dir>`` by ``tests/executors/test_ray_cluster.py``:
it starts a head node (1 CPU, resource ``head_node``) and a second node (2 CPUs, resource
``worker_node``) through Ray's node API, each bound to 127.0.0.1, in a temp dir of their
own (no ``/tmp/ray/ray_current_cluster`` file is written, so no other Ray finds them). Then,
as the driver, it runs the scenarios below with ``RayExecutor(address=...)``, prints ONE JSON
line with what it saw, and waits for a line on stdin (the test checks the open sockets with
``ss`` meanwhile) before it stops the cluster.

``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` must be set before Ray is imported: without it Ray
maps 127.0.0.1 to the machine's own address.
"""

from __future__ import annotations

import os

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # it probes the cloud metadata address

import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray
from ray._private.node import Node
from ray._private.parameter import RayParams

from orcapod import Pipeline, function_pod
from orcapod.databases import DeltaTableDatabase
from orcapod.errors import ExecutorError
from orcapod.executors import RayExecutor
from orcapod.sources import DictSource

LOOPBACK = "127.0.0.1"


@function_pod(output_keys="node_id")
def where(x: int) -> str:
    """Sleeps a little, so the calls spread over the nodes, and says where it ran."""
    time.sleep(0.2)
    return str(ray.get_runtime_context().get_node_id())


def start_node(temp_dir: str, head: Node | None, num_cpus: int, resource: str) -> Node:
    params = RayParams(
        node_ip_address=LOOPBACK,
        num_cpus=num_cpus,
        num_gpus=0,
        resources={resource: 100},
        temp_dir=temp_dir,
        object_store_memory=100 * 1024 * 1024,
        min_worker_port=0,
        max_worker_port=0,
        include_dashboard=False,
    )
    if head is not None:
        params.gcs_address = head.gcs_address
        params.include_log_monitor = False
        params.node_manager_port = 0
        params.dashboard_agent_listen_port = None
    return Node(params, head=head is None, shutdown_at_exit=True, spawn_reaper=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def timed_error(run: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        run()
    except ExecutorError as err:
        return {"error": str(err), "seconds": time.monotonic() - started}
    return {"error": None, "seconds": time.monotonic() - started}


def node_ids(store: Path, name: str, executor: RayExecutor) -> list[str]:
    source = DictSource([{"i": i, "x": i} for i in range(12)], tag_columns="i")
    pipeline = Pipeline(name, DeltaTableDatabase(store / name))  # a store each: no cache hits
    with pipeline:
        where.pod(source, label="where")
    summary = pipeline.run(executor=executor)
    assert summary.failed == 0, summary
    return [str(v) for v in pipeline.where.as_table().column("node_id").to_pylist()]


def main(store: Path) -> None:
    temp_dir = tempfile.mkdtemp(prefix="orcapod-ray-")
    head = start_node(temp_dir, None, 1, "head_node")
    worker = start_node(temp_dir, head, 2, "worker_node")
    address = head.gcs_address
    seen: dict[str, Any] = {"address": address}
    # nothing listens there: fails within connect_timeout (before Ray is initialised)
    unreachable = RayExecutor(address=f"{LOOPBACK}:{free_port()}", connect_timeout=1)
    seen["unreachable"] = timed_error(lambda: unreachable.execute_callable(abs, {"x": -1}))
    cluster = RayExecutor(address=address, calls_per_task=1)
    seen["spread"] = node_ids(store, "spread", cluster)
    seen["nodes"] = {
        name: n["NodeID"]
        for n in ray.nodes()
        for name in ("head_node", "worker_node")
        if n["Alive"] and name in n["Resources"]
    }
    seen["pinned_resource"] = node_ids(
        store, "pinned", cluster.with_options(resources={"worker_node": 1})
    )
    seen["pinned_cpus"] = node_ids(store, "cpus", cluster.with_options(num_cpus=2))
    gpu = cluster.with_options(resources={"gpu_node": 1}, resource_timeout=1)
    seen["unsatisfiable"] = timed_error(lambda: gpu.execute_callable(abs, {"x": -1}))
    seen["pid"] = os.getpid()
    print(json.dumps(seen), flush=True)
    sys.stdin.readline()
    ray.shutdown()
    worker.kill_all_processes(check_alive=False, allow_graceful=True)
    head.kill_all_processes(check_alive=False, allow_graceful=True)
    shutil.rmtree(temp_dir, ignore_errors=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
