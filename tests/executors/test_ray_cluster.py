"""RayExecutor on a real two-node Ray cluster on 127.0.0.1 (``loopback_cluster.py``, run once
per module in a subprocess: a process can join only one Ray cluster, and this one already
has the session's local Ray), and the cluster checks that need no cluster."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from orcapod.errors import ExecutorError
from orcapod.executors import RayExecutor
from orcapod.executors.ray_cluster import (
    PRELOAD_MODULES,
    infeasible,
    installed_modules,
    public_address,
    task_demand,
)

SCRIPT = Path(__file__).with_name("loopback_cluster.py")
FIRST_USE = Path(__file__).with_name("ray_first_use.py")


def _process_tree(root: int) -> set[int]:
    """``root`` and all its descendants (from ``/proc/<pid>/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            parent = int(stat.rpartition(")")[2].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo.extend(children.get(pid, []))
    return tree


def _sockets_of(pids: set[int]) -> list[tuple[str, str, str]]:
    """(local address, peer address, process) of every TCP/UDP socket of ``pids`` (``ss``)."""
    out = subprocess.run(
        ["ss", "-tuanpH"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    found = []
    for line in out.splitlines():
        owners = {int(pid) for pid in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            fields = line.split()
            found.append((fields[4], fields[5], fields[-1]))
    return found


def _host(address: str) -> str:
    return address.rpartition(":")[0].strip("[]").removeprefix("::ffff:")


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What the cluster script saw, plus ``sockets``: the sockets of its processes (head,
    second node, their workers, the driver) while the cluster was up."""
    store = tmp_path_factory.mktemp("cluster_store")
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        line = process.stdout.readline()
        assert line, f"the cluster script ended early (exit code {process.poll()})"
        seen: dict[str, Any] = json.loads(line)
        seen["sockets"] = _sockets_of(_process_tree(process.pid))
        yield seen
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@pytest.mark.ray
@pytest.mark.slow
def test_a_pipeline_runs_on_both_nodes(cluster_run: dict[str, Any]) -> None:
    nodes = cluster_run["nodes"]
    assert set(cluster_run["spread"]) == {nodes["head_node"], nodes["worker_node"]}


@pytest.mark.ray
@pytest.mark.slow
def test_resources_and_num_cpus_pin_tasks_to_a_node(cluster_run: dict[str, Any]) -> None:
    worker = cluster_run["nodes"]["worker_node"]
    assert cluster_run["pinned_resource"] == [worker] * 12  # resources={"worker_node": 1}
    assert cluster_run["pinned_cpus"] == [worker] * 12  # num_cpus=2: only it has 2 CPUs


@pytest.mark.ray
@pytest.mark.slow
def test_unreachable_address_and_unsatisfiable_resources_fail_in_bounded_time(
    cluster_run: dict[str, Any],
) -> None:
    unreachable = cluster_run["unreachable"]
    assert "no Ray cluster answers at '127.0.0.1:" in unreachable["error"]
    assert unreachable["seconds"] < 30  # connect_timeout=1, where Ray itself retries for minutes
    unsatisfiable = cluster_run["unsatisfiable"]
    assert "asks for {'CPU': 1.0, 'gpu_node': 1.0}" in unsatisfiable["error"]
    assert "'worker_node': 100.0" in unsatisfiable["error"]  # what the nodes have
    assert 1 <= unsatisfiable["seconds"] < 30  # resource_timeout=1; Ray would wait forever


@pytest.mark.ray
@pytest.mark.slow
def test_the_cluster_listens_and_connects_on_loopback_only(cluster_run: dict[str, Any]) -> None:
    sockets = cluster_run["sockets"]
    assert any(local.endswith(cluster_run["address"].rpartition(":")[2]) for local, _, _ in sockets)
    outside = [
        s
        for s in sockets
        if _host(s[0]) != "127.0.0.1" or _host(s[1]) not in ("127.0.0.1", "*", "0.0.0.0")
    ]
    assert outside == []


@pytest.mark.ray
def _ray_processes(pids: set[int]) -> set[int]:
    """Those of ``pids`` that are Ray's own processes (other children of the test process, such
    as the S3 test server, are not Ray's to check)."""
    found = set()
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if b"ray" in command:
            found.add(pid)
    return found


def test_local_ray_of_the_tests_listens_on_loopback_only(ray_session: ModuleType) -> None:
    # Ray's dashboard process probes the cloud metadata address (169.254.169.254) once at
    # start whatever the usage-stats setting says: an outgoing attempt Ray makes on its own,
    # which ends within its timeout. Every other socket must be on loopback.
    sockets = _sockets_of(_ray_processes(_process_tree(os.getpid())))
    assert sockets  # Ray's own servers, at least
    outside = [s for s in sockets if _host(s[0]) != "127.0.0.1"]
    assert [s for s in outside if _host(s[1]) != "169.254.169.254"] == []


@pytest.mark.ray
def test_unsatisfiable_resources_fail_on_the_local_ray(ray_session: ModuleType) -> None:
    executor = RayExecutor(resources={"gpu_node": 1}, resource_timeout=0.2)
    with pytest.raises(ExecutorError, match="no node of the Ray cluster can run 'abs'"):
        executor.execute_callable(abs, {"x": -1})
    with pytest.raises(ExecutorError, match="asks for {'CPU': 64.0}"):
        RayExecutor(num_cpus=64, resource_timeout=0).submit_callable(abs, {"x": -1})


def _first_use(ray_address: str) -> dict[str, Any]:
    """What ``ray_first_use.py`` saw, run in a fresh process with ``RAY_ADDRESS`` set."""
    env = {**os.environ, "RAY_ADDRESS": ray_address}
    done = subprocess.run(
        [sys.executable, str(FIRST_USE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return seen


@pytest.mark.ray
@pytest.mark.slow
def test_a_local_ray_started_by_the_executor_has_preloading_workers_at_the_callers_priority() -> (
    None
):
    seen = _first_use("local")  # what address=None does when no cluster is running
    flags = [arg for arg in seen["argv"] if arg.startswith("--worker-preload-modules=")]
    assert flags, seen["argv"]
    preloaded = flags[0].partition("=")[2].split(",")
    assert preloaded == installed_modules(PRELOAD_MODULES)
    assert "pyarrow" in preloaded
    assert seen["node"] == seen["driver_node"]
    # the calls run at the caller's priority, not Ray's default of nice 15 above it
    assert seen["niceness"] == seen["driver_niceness"]


@pytest.mark.ray
@pytest.mark.slow
def test_address_none_joins_a_running_cluster_without_start_up_settings(
    ray_session: ModuleType,
) -> None:
    # RAY_ADDRESS makes ray.init(address=None) join the session's Ray, which refuses settings
    # for starting one: the executor joins it without them
    seen = _first_use(ray_session.get_runtime_context().gcs_address)
    assert seen["node"] == seen["driver_node"] == ray_session.get_runtime_context().get_node_id()
    assert not any(arg.startswith("--worker-preload-modules=") for arg in seen["argv"])


def test_installed_modules_keeps_the_importable_names_in_order() -> None:
    names = ["pyarrow", "no_such_module_here", "no_such_package_here.sub", "json"]
    assert installed_modules(names) == ["pyarrow", "json"]


def test_task_demand_and_feasibility() -> None:
    assert task_demand({}) == {"CPU": 1.0}
    assert task_demand({"num_cpus": 0, "resources": {"a": 2}, "num_gpus": 1}) == {
        "a": 2.0,
        "GPU": 1.0,
    }
    nodes = [{"CPU": 1.0, "a": 1.0}, {"CPU": 4.0}]
    assert not infeasible({"CPU": 4.0}, nodes)
    assert infeasible({"CPU": 2.0, "a": 1.0}, nodes)  # one node must hold it all


def test_address_userinfo_never_reaches_provenance_or_repr() -> None:
    executor = RayExecutor(address="ray://alice:s3cret@head.example:10001")
    assert public_address(executor.address) == "ray://head.example:10001"
    assert "s3cret" not in executor.get_executor_data()["executor_options"]
    assert "s3cret" not in repr(executor)
    assert "head.example:10001" in executor.get_executor_data()["executor_options"]
    assert public_address("127.0.0.1:6379") == "127.0.0.1:6379"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_cpus": "lots"}, r"num_cpus='lots'\) must be a non-negative number"),
        ({"num_gpus": -1}, r"num_gpus=-1\) must be a non-negative number"),
        ({"resources": {"gpu": "one"}}, r"resources=.* must map resource names"),
        ({"connect_timeout": "10"}, r"connect_timeout='10'\) must be a number of seconds"),
        ({"resource_timeout": -1}, r"resource_timeout=-1\) must be a number of seconds"),
    ],
)
def test_bad_options_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ExecutorError, match=message):
        RayExecutor(**kwargs)
