"""How much of the earlier orcapod's public API (0.1.4 from PyPI) this orcapod offers.

Install the earlier release in its own virtual environment first, e.g.::

    python3.11 -m venv /tmp/old-venv && /tmp/old-venv/bin/pip install orcapod==0.1.4
    .venv/bin/python benchmarks/compat_surface.py --old-python /tmp/old-venv/bin/python

Both installations are introspected the same way, each in its own subprocess (the same
introspection code runs under both interpreters; nothing is imported across them): every
public name of the listed packages (``__all__``, else the public names defined in orcapod),
and for classes and functions their parameters (name, kind, default) and, for classes, their
public members defined by orcapod classes (methods with their parameters, properties,
fields, enum members).

Then every earlier name is looked up here — in the matching package, else in any public
package ("moved") — and compared: missing names, missing members, missing parameters, and
parameters whose default differs. 0.1.4 renamed "packet" to "data" in many names
(``Packet`` -> ``Data``, ``iter_packets`` -> ``iter_data``); this orcapod keeps the packet
names, so those renames are mapped back before comparing (see ``RENAMES``).

Prints one JSON line of counts for the packages in scope of the compatibility work (types,
errors, contexts, system_constants, hashing, data, streams, sources, operators) and one for
all packages; ``--details`` also prints every difference, one per line. ``--new-src DIR``
measures another source tree (e.g. an older checkout) with this interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

# earlier package -> the package holding the same names here
MODULES = {
    "orcapod.types": "orcapod.types",
    "orcapod.errors": "orcapod.errors",
    "orcapod.contexts": "orcapod.contexts",
    "orcapod.system_constants": "orcapod.system_constants",
    "orcapod.hashing": "orcapod.hashing",
    "orcapod.core.datagrams": "orcapod.data",
    "orcapod.streams": "orcapod.streams",
    "orcapod.sources": "orcapod.sources",
    "orcapod.operators": "orcapod.operators",
    "orcapod": "orcapod",
    "orcapod.databases": "orcapod.databases",
    "orcapod.nodes": "orcapod.nodes",
    "orcapod.pipeline": "orcapod.pipeline",
}
IN_SCOPE = set(list(MODULES)[:9])

# 0.1.4 spelling -> the spelling kept here
RENAMES = {
    "Data": "Packet",
    "MapData": "MapPackets",
    "SelectDataColumns": "SelectPacketColumns",
    "DropDataColumns": "DropPacketColumns",
    "iter_data": "iter_packets",
    "async_iter_data": "async_iter_packets",
    "map_data": "map_packets",
    "select_data_columns": "select_packet_columns",
    "drop_data_columns": "drop_packet_columns",
    "data_columns": "packet_columns",
    "DataFunctionUnavailableError": "PacketFunctionUnavailableError",
    "DATA_RECORD_ID": "PACKET_RECORD_ID",
    "INPUT_DATA_HASH_COL": "INPUT_PACKET_HASH_COL",
    "DataLogger": "PacketLogger",
    # 0.1.4 also renamed the run configuration (the target keeps NodeConfig / ExecutorType)
    "PodConfig": "NodeConfig",
    "OrchestratorType": "ExecutorType",
    "orchestrator": "executor",
}

# imported helpers that 0.1.4 leaves visible in its modules, not API
IGNORED = {"TYPE_CHECKING", "pa", "annotations"}

INTROSPECT = r"""
import enum, importlib, inspect, json, sys, types, typing

def params(obj):
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls"):
            continue
        default = None if p.default is inspect.Parameter.empty else repr(p.default)[:60]
        out.append([p.name, p.kind.name, default])
    return out

def owner(cls, name):
    for klass in inspect.getmro(cls):
        if name in vars(klass):
            return klass
    return None

def members(cls):
    out = {}
    for name in dir(cls):
        if name.startswith("_"):
            continue
        klass = owner(cls, name)
        if klass is None or not (getattr(klass, "__module__", "") or "").startswith("orcapod"):
            continue
        value = inspect.getattr_static(cls, name)
        if isinstance(value, property):
            out[name] = {"kind": "property"}
        elif isinstance(value, (classmethod, staticmethod)) or inspect.isfunction(value):
            out[name] = {"kind": "method", "params": params(getattr(cls, name))}
        else:
            out[name] = {"kind": "attribute"}
    return out

def describe(obj):
    if inspect.isclass(obj):
        return {"kind": "class", "params": params(obj), "members": members(obj),
                "bases": [b.__name__ for b in inspect.getmro(obj)[1:]]}
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return {"kind": "function", "params": params(obj)}
    if isinstance(obj, (str, int, float, bool, bytes, tuple, frozenset)):
        return {"kind": "constant", "value": repr(obj)[:60]}
    if isinstance(obj, (types.UnionType, types.GenericAlias)) or typing.get_origin(obj):
        return {"kind": "alias"}
    module = getattr(type(obj), "__module__", "") or ""
    if module.startswith("orcapod"):
        return {"kind": "instance", "members": members(type(obj))}
    return None

def public_names(mod):
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    names = []
    for name in dir(mod):
        if name.startswith("_"):
            continue
        obj = getattr(mod, name)
        if inspect.ismodule(obj):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (getattr(obj, "__module__", "") or "").startswith("orcapod"):
                continue
        names.append(name)
    return names

result = {}
for module_name in sys.argv[1:]:
    try:
        mod = importlib.import_module(module_name)
    except ImportError:
        result[module_name] = None
        continue
    entry = {}
    for name in public_names(mod):
        obj = getattr(mod, name, None)
        if inspect.ismodule(obj):
            entry[name] = {"kind": "module"}
            continue
        described = describe(obj) if obj is not None else None
        if described is not None:
            entry[name] = described
    result[module_name] = {"names": entry, "all": list(getattr(mod, "__all__", []))}
print(json.dumps(result))
"""


def introspect(python: str, modules: list[str], src: str | None = None) -> dict[str, Any]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run(
        [python, "-W", "ignore", "-c", INTROSPECT, *modules],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd="/",
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _find(new: dict[str, Any], module: str, name: str) -> tuple[str, dict[str, Any] | None]:
    here = (new.get(module) or {}).get("names", {})
    if name in here:
        return "present", here[name]
    for other, info in new.items():
        if info and name in info["all"]:
            return f"moved:{other}", info["names"].get(name)
    return "missing", None


def _compare_params(
    where: str, old: list[Any] | None, new: list[Any] | None, diffs: list[dict[str, str]]
) -> tuple[int, int, int]:
    """(old parameters, missing here, default differs) for one signature."""
    if old is None:
        return 0, 0, 0
    new_params = {p[0]: p for p in new or []}
    total = missing = differs = 0
    for name, kind, default in old:
        if kind in ("VAR_POSITIONAL", "VAR_KEYWORD"):
            continue
        total += 1
        mine = new_params.get(RENAMES.get(name, name))
        if mine is None:
            missing += 1
            diffs.append({"what": "missing parameter", "where": where, "name": name})
        elif default is not None and mine[2] is not None and default != mine[2]:
            differs += 1
            diffs.append(
                {
                    "what": "default differs",
                    "where": where,
                    "name": name,
                    "old": default,
                    "new": mine[2],
                }
            )
    return total, missing, differs


def compare(
    old: dict[str, Any], new: dict[str, Any]
) -> tuple[dict[str, dict[str, int]], list[dict[str, str]]]:
    counts: dict[str, dict[str, int]] = {}
    diffs: list[dict[str, str]] = []
    keys = [
        "names",
        "missing_names",
        "moved_names",
        "members",
        "missing_members",
        "params",
        "missing_params",
        "default_differs",
    ]
    for scope in ("in_scope", "all"):
        counts[scope] = dict.fromkeys(keys, 0)
    for old_module, new_module in MODULES.items():
        info = old.get(old_module)
        if not info:
            continue
        scopes = ["all", "in_scope"] if old_module in IN_SCOPE else ["all"]

        def add(key: str, n: int = 1, scopes: list[str] = scopes) -> None:
            for scope in scopes:
                counts[scope][key] += n

        for name, described in info["names"].items():
            if described["kind"] == "module" or name in IGNORED:
                continue
            add("names")
            status, mine = _find(new, new_module, RENAMES.get(name, name))
            where = f"{old_module}.{name}"
            if status == "missing":
                add("missing_names")
                diffs.append({"what": "missing name", "where": where})
                continue
            if status != "present":
                add("moved_names")
                diffs.append({"what": "moved name", "where": where, "to": status[6:]})
            mine = mine or {}
            total, missing, differs = _compare_params(
                where, described.get("params"), mine.get("params"), diffs
            )
            add("params", total)
            add("missing_params", missing)
            add("default_differs", differs)
            my_members = mine.get("members", {})
            for member, m in described.get("members", {}).items():
                add("members")
                target = RENAMES.get(member, member)
                if target not in my_members:
                    add("missing_members")
                    diffs.append({"what": "missing member", "where": f"{where}.{member}"})
                    continue
                total, missing, differs = _compare_params(
                    f"{where}.{member}", m.get("params"), my_members[target].get("params"), diffs
                )
                add("params", total)
                add("missing_params", missing)
                add("default_differs", differs)
    return counts, diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old-python", required=True, help="python of the 0.1.4 venv")
    parser.add_argument("--new-python", default=sys.executable)
    parser.add_argument("--new-src", default=None, help="measure this source tree instead")
    parser.add_argument("--details", action="store_true", help="print every difference")
    args = parser.parse_args()
    old = introspect(args.old_python, list(MODULES))
    new = introspect(args.new_python, sorted(set(MODULES.values())), args.new_src)
    counts, diffs = compare(old, new)
    if args.details:
        for diff in diffs:
            print(json.dumps(diff))
    for scope, figures in counts.items():
        present = figures["names"] - figures["missing_names"]
        members = figures["members"] - figures["missing_members"]
        params = figures["params"] - figures["missing_params"]
        print(
            json.dumps(
                {
                    "scope": scope,
                    **figures,
                    "names_covered": round(present / max(figures["names"], 1), 3),
                    "members_covered": round(members / max(figures["members"], 1), 3),
                    "params_covered": round(params / max(figures["params"], 1), 3),
                }
            )
        )


if __name__ == "__main__":
    main()
