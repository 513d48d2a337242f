"""How ``RayExecutor`` connects to a Ray cluster, and what it checks before it relies on it.

:func:`connect` starts Ray on first use when ``ray.is_initialized()`` is False (one thread at a
time): ``ray.init(address=..., ignore_reinit_error=True, include_dashboard=False)``; when the
address is None a local Ray is started on ``127.0.0.1``. A Ray that is already initialised (by
the caller or an earlier executor) is used as is, whatever the executor's ``address``.

Two mistakes used to hang a run with no error: an address nothing answers at (Ray retries its
connection for a long time), and a task asking for resources no node has (Ray queues it as
"infeasible" forever). Both now fail fast with ``ExecutorError``:

* :func:`check_reachable`: before ``ray.init(address=...)`` with an explicit ``host:port``
  (``ray://host:port`` included), one TCP connection to it is tried for at most
  ``connect_timeout`` seconds. ``"auto"`` and ``None`` (a local Ray) are left to Ray.
* :func:`wait_for_feasible`: before the first task of a function with a set of options is
  sent, the options' demand (``num_cpus`` - Ray's default 1 -, ``num_gpus``, ``memory``,
  custom ``resources``) is compared with the TOTAL resources of each alive node
  (``ray.nodes()``): a task must fit on one node. When none fits, the nodes are read again
  every half second for at most ``resource_timeout`` seconds (a node may be joining, or an
  autoscaler starting one), then ``ExecutorError`` names the demand and what each node has.

A return value Ray cannot pickle fails in the worker AFTER the function returned: the remote
traceback then holds only Ray's own frames (its pickler), never the user's code, which is how
:func:`unsendable_return` tells it from a ``TypeError`` raised by the function itself.

Secrets. An address may carry credentials (``ray://user:password@host:10001``):
:func:`public_address` strips the userinfo, and only that form is stored in provenance,
hashed, or shown in a repr or an error.

Start-up work done early. Ray sets up its serialization in each process on the process's first
task or ``ray.put`` (``ray.util.serialization_addons``): it imports pydantic, starlette and
pyarrow, about 0.15 s of CPU per process, seconds of wall time on a busy machine. On a fresh
local Ray that cost fell on the first run's critical path twice, once in the driver before its
first task could be sent and then in every worker before its first call could start. So when
:func:`connect` starts a local Ray it has those modules (:data:`PRELOAD_MODULES`, the ones
installed) imported while Ray starts instead: by the workers as they start (Ray's
``preload_python_modules`` setting, which only a Ray started here can take), and by the
driver on a background thread during ``ray.init`` (which imports none of them itself; the
thread is joined before :func:`connect` returns, so it never imports alongside the caller).
When ``ray.init`` joins a running cluster instead (``RAY_ADDRESS``, or a ``ray start`` cluster
on this machine), Ray refuses settings and it is called again without them. A worker still
booting when ``ray.init`` returns (a busy machine) finishes its share after; either way the
imports are no longer paid on the first task.

Workers that boot while ``ray.init`` waits, at the caller's priority. A fresh worker needs
about 0.5 s of CPU before it can run a task (importing Ray, then the modules above). Ray
starts its workers when the first driver connects, at the very end of ``ray.init``, and runs
them at nice 15, below every process at normal priority (the driver, Ray's own services, the
user's other programs), so on 2 CPUs a first run found them still booting: its first call
started 0.2-0.25 s after ``ray.init`` returned, and the workers sat idle for about half a
second of worker time in a 1 s run. A local Ray started here therefore has its workers started
with the raylet (Ray's ``enable_worker_prestart``: they boot while ``ray.init`` polls for the
raylet, which leaves the CPU idle, and the driver then connects without waiting for them to be
spawned) and run at the caller's priority (``worker_niceness`` 0: the user's calls get the CPU
share ``LocalExecutor`` would get them in the caller's process; Ray lowers workers so that its
services and the user's processes stay responsive on a busy cluster node, but on the caller's
own machine the driver mostly waits for these very calls). Measured on 2 CPUs, fresh
processes (``benchmarks/ray_executor.py --cold``): the first call starts 0.05-0.07 s after
``ray.init`` instead of 0.2-0.25 s, and ``ray.init`` itself is no slower. A cluster the user
started or joins keeps its own settings (:func:`local_settings` applies to a Ray started here
only).

A cluster on loopback only (tests, one machine): see the README's "Ray cluster" recipe. Ray
maps ``127.0.0.1`` to the machine's own address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
is set in the environment of the head and of the driver before Ray is imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from orcapod.errors import ExecutorError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_RESOURCE_TIMEOUT",
    "PRELOAD_MODULES",
    "check_reachable",
    "connect",
    "infeasible",
    "installed_modules",
    "local_settings",
    "public_address",
    "short_repr",
    "task_demand",
    "unsendable_return",
    "wait_for_feasible",
]

DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds to reach an explicit address
DEFAULT_RESOURCE_TIMEOUT = 10.0  # seconds to wait for a node that fits a task's demand
_POLL_SECONDS = 0.5
_INIT_LOCK = threading.Lock()
#: what Ray's serialization imports in a process on its first task (module docstring)
PRELOAD_MODULES = (
    "ray._common.pydantic_compat",
    "pydantic.v1.fields",
    "starlette.datastructures",
    "pyarrow",
    "pyarrow.json",
    "ray._private.arrow_serialization",
)


def public_address(address: str | None) -> str | None:
    """``address`` without userinfo (``ray://user:pw@host:1`` -> ``ray://host:1``)."""
    if address is None or "@" not in address:
        return address
    scheme, sep, rest = address.rpartition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}"


def _host_port(address: str) -> tuple[str, int] | None:
    """The ``(host, port)`` an explicit address names; None for ``auto``/``local``/no port."""
    if address in ("auto", "local") or not address:
        return None
    parts = urlsplit(address if "://" in address else f"gcs://{address}")
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or port is None:
        return None
    return parts.hostname, port


def check_reachable(address: str | None, timeout: float) -> None:
    """Raise ``ExecutorError`` unless the host:port of ``address`` accepts a TCP connection
    within ``timeout`` seconds (nothing is checked for None, ``auto``, ``local``)."""
    if address is None:
        return
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as err:
        raise ExecutorError(
            f"no Ray cluster answers at {public_address(address)!r} (tried for {timeout:g} s: "
            f"{err}). Start the cluster (`ray start --head`) or fix the address; raise "
            "connect_timeout= if it is slow to answer."
        ) from err


def connect(ray: ModuleType, address: str | None, connect_timeout: float) -> None:
    """Start or join Ray unless it is initialised (module docstring); ``ExecutorError`` when
    the address does not answer within ``connect_timeout`` seconds or Ray cannot start."""
    with _INIT_LOCK:
        if ray.is_initialized():
            return
        check_reachable(address, connect_timeout)
        options: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False}
        settings: dict[str, Any] = {}
        importer = None
        if address is None:
            preload = installed_modules(PRELOAD_MODULES)
            options["_node_ip_address"] = "127.0.0.1"
            settings = local_settings(preload)
            importer = threading.Thread(
                target=_import_quietly, args=(preload,), name="orcapod-ray-preload", daemon=True
            )
            importer.start()
        try:
            try:
                _init(ray, address, options, settings)
            except ValueError as err:
                if not settings or "_system_config" not in str(err):
                    raise
                _init(ray, address, options, {})  # joining a running cluster: no settings
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise ExecutorError(
                f"could not start or connect to Ray (address={public_address(address)!r}): "
                f"{err}. Start Ray yourself with ray.init(...), or fix the address."
            ) from err
        finally:
            if importer is not None:  # done by now, as a rule; never racing the caller's imports
                importer.join()


def local_settings(preload: Sequence[str]) -> dict[str, Any]:
    """Ray's system settings for a local Ray started here (module docstring): workers preload
    ``preload``, start with the raylet, and run at the caller's priority."""
    config: dict[str, Any] = {"enable_worker_prestart": True, "worker_niceness": 0}
    if preload:
        config["preload_python_modules"] = list(preload)
    return config


def _init(
    ray: ModuleType, address: str | None, options: dict[str, Any], settings: dict[str, Any]
) -> None:
    ray.init(address=address, **options, **({"_system_config": settings} if settings else {}))


def installed_modules(names: Sequence[str]) -> list[str]:
    """The modules of ``names`` that are installed here (a local Ray's workers share this
    environment), without importing them."""
    found = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):  # a parent package missing or broken
            continue
    return found


def _import_quietly(names: Sequence[str]) -> None:
    """Import ``names`` (the driver's share of the start-up work; a failure is left for Ray
    to meet and report when it needs the module)."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - only a head start, never required
            continue


def task_demand(options: Mapping[str, Any]) -> dict[str, float]:
    """What one task with these Ray options asks of the node it runs on."""
    demand: dict[str, float] = {}
    num_cpus = options.get("num_cpus")
    demand["CPU"] = 1.0 if num_cpus is None else float(num_cpus)
    for option, resource in (("num_gpus", "GPU"), ("memory", "memory")):
        if options.get(option):
            demand[resource] = float(options[option])
    for name, amount in (options.get("resources") or {}).items():
        demand[str(name)] = float(amount)
    return {name: amount for name, amount in demand.items() if amount > 0}


def infeasible(demand: Mapping[str, float], nodes: Sequence[Mapping[str, float]]) -> bool:
    """True when no node's total resources cover ``demand``."""
    return not any(
        all(node.get(name, 0.0) + 1e-9 >= amount for name, amount in demand.items())
        for node in nodes
    )


def _alive_nodes(ray: ModuleType) -> list[dict[str, float]]:
    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def wait_for_feasible(
    ray: ModuleType, options: Mapping[str, Any], timeout: float, name: str
) -> None:
    """Return once some alive node can run a task with ``options``; raise ``ExecutorError``
    after ``timeout`` seconds when none can (``name``: the function, for the message)."""
    demand = task_demand(options)
    if not demand:
        return
    deadline = time.monotonic() + timeout
    while True:
        nodes = _alive_nodes(ray)
        if not infeasible(demand, nodes):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    shown = [
        {k: v for k, v in sorted(node.items()) if not k.startswith("node:") and k != "memory"}
        for node in nodes
    ]
    raise ExecutorError(
        f"no node of the Ray cluster can run {name!r}: a task asks for {demand}, and the "
        f"{len(nodes)} alive node(s) have {shown} (waited {timeout:g} s). Ask for resources a "
        "node has (num_cpus=, num_gpus=, resources=), add such a node, or raise "
        "resource_timeout= while one is starting."
    )


_FRAME = re.compile(r'File "([^"]+)"')


def unsendable_return(ray: ModuleType, err: Exception) -> bool:
    """Did this Ray task error come from pickling the task's return value in the worker?
    (Every frame of the remote traceback is Ray's own, and its pickler is among them.)"""
    files = _FRAME.findall(str(err))
    ray_dir = os.path.dirname(str(ray.__file__))
    return (
        bool(files)
        and all(path.startswith(ray_dir) for path in files)
        and any("pickle" in os.path.basename(path) for path in files)
    )


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters (for naming a row in a message)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
