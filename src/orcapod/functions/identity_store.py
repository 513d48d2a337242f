"""Stored code identities: a function's identity components, once per distinct code hash.

A code hash says *that* a function changed; its components
(``orcapod.hashing.function_identity.function_identity_components``) say *what* changed. They
are stored in the result database at ``IDENTITY_PATH`` (``_identity``; in a pipeline the
store's shared results area, ``<store>/_result/_identity``), one row per code hash:

``__record_id`` (the code hash) · ``function_name`` · ``code_hash`` · ``components`` (JSON: a
list of ``[kind, name, digest, summary]``) · ``source`` (the function's source text as written
when the code hash was first stored, null when it cannot be read; ``stored_source``) ·
``__recorded_at`` (UTC).

A function node writes its function's row when it runs (``record_identity``); storing the
same identity again is skipped (``skip_duplicates``), and a process remembers what it wrote,
so a rerun costs one set look-up. A new process adds the row again; a Delta store on object
storage tells that it is stored from the table's ids sidecar, without opening the table
(two concurrent requests: ``databases.delta_reads``). ``diff_identities`` compares two
stored identities and names every added, removed or changed component.

Decisions:

* Only Python functions have components; other packet functions store nothing.
* A code hash whose components are not stored (results written before components were
  recorded) is explained as "code changed (components not recorded)".
"""

from __future__ import annotations

import inspect
import json
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from orcapod.databases import ArrowDatabase
from orcapod.hashing.function_identity import IdentityComponent, function_identity_components

__all__ = [
    "ComponentChange",
    "IDENTITY_PATH",
    "StoredIdentity",
    "diff_identities",
    "identity_of",
    "load_identities",
    "record_identity",
    "stored_source",
]

IDENTITY_PATH = ("_identity",)

_written: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


@dataclass(frozen=True)
class StoredIdentity:
    """The components of one code hash of one function."""

    function_name: str
    code_hash: str
    components: tuple[IdentityComponent, ...]

    def by_key(self) -> dict[str, IdentityComponent]:
        return {c.key: c for c in self.components}


@dataclass(frozen=True)
class ComponentChange:
    """One component that differs between two identities (``old``/``new`` None: added/removed)."""

    kind: str
    name: str
    old: IdentityComponent | None
    new: IdentityComponent | None

    def describe(self) -> str:
        """E.g. ``global `THRESHOLD` 0.5 → 0.7`` or ``helper `features.normalise` changed``."""
        label = f"{self.kind} `{self.name}`"
        if self.old is None:
            return f"{label} added" + (
                f" ({self.new.summary})" if self.new and self.new.summary else ""
            )
        if self.new is None:
            return f"{label} removed"
        if self.old.summary and self.new.summary and self.old.summary != self.new.summary:
            return f"{label} {self.old.summary} → {self.new.summary}"
        return f"{label} changed ({self.old.digest[:12]} → {self.new.digest[:12]})"


def identity_of(packet_function: Any) -> StoredIdentity | None:
    """The identity of a packet function (None when it is not a Python function)."""
    fn = getattr(packet_function, "function", None)
    if fn is None or not callable(fn):
        return None
    code_hash, components = function_identity_components(fn)
    return StoredIdentity(
        str(packet_function.canonical_function_name), code_hash.to_string(), components
    )


def record_identity(database: ArrowDatabase, packet_function: Any) -> None:
    """Store ``packet_function``'s identity in ``database`` unless stored already."""
    code_hash = str(packet_function.code_hash)
    with _lock:
        done = _written.setdefault(database, set())
        if code_hash in done:
            return
    identity = identity_of(packet_function)
    if identity is None:
        return
    if identity.code_hash != code_hash:  # the function was edited since it was hashed
        return
    components = json.dumps(
        [[c.kind, c.name, c.digest, c.summary] for c in identity.components],
        ensure_ascii=False,
    )
    table = pa.table(
        {
            "function_name": pa.array([identity.function_name], pa.large_string()),
            "code_hash": pa.array([code_hash], pa.large_string()),
            "components": pa.array([components], pa.large_string()),
            "source": pa.array([_source_text(packet_function)], pa.large_string()),
            "__recorded_at": pa.array([datetime.now(UTC)], pa.timestamp("us", tz="UTC")),
        }
    )
    database.add_record(IDENTITY_PATH, code_hash, table, skip_duplicates=True, flush=True)
    with _lock:
        _written.setdefault(database, set()).add(code_hash)


def _source_text(packet_function: Any) -> str | None:
    """The source text of a packet function's Python function (None when unreadable)."""
    try:
        return inspect.getsource(inspect.unwrap(packet_function.function))
    except (OSError, TypeError):  # REPL or exec'd code, builtins: no source file
        return None


def stored_source(database: ArrowDatabase, code_hash: str) -> str | None:
    """The source text stored with ``code_hash`` (None when not stored)."""
    table = database.get_records_by_ids(IDENTITY_PATH, [code_hash])
    if table is None or table.num_rows == 0 or "source" not in table.column_names:
        return None
    value = table.column("source")[0].as_py()
    return None if value is None else str(value)


def load_identities(
    database: ArrowDatabase, code_hashes: Iterable[str]
) -> dict[str, StoredIdentity]:
    """The stored identities of ``code_hashes`` (those not stored are absent)."""
    wanted = sorted(set(code_hashes))
    if not wanted:
        return {}
    table = database.get_records_by_ids(IDENTITY_PATH, wanted)
    if table is None:
        return {}
    out: dict[str, StoredIdentity] = {}
    for row in table.select(["function_name", "code_hash", "components"]).to_pylist():
        parts = tuple(IdentityComponent(*item) for item in json.loads(row["components"]))
        out[row["code_hash"]] = StoredIdentity(row["function_name"], row["code_hash"], parts)
    return out


def diff_identities(
    old: StoredIdentity | Mapping[str, IdentityComponent],
    new: StoredIdentity | Mapping[str, IdentityComponent],
) -> list[ComponentChange]:
    """Every component added, removed or changed from ``old`` to ``new`` (sorted by key)."""
    before = old.by_key() if isinstance(old, StoredIdentity) else dict(old)
    after = new.by_key() if isinstance(new, StoredIdentity) else dict(new)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a is not None and b is not None and a.digest == b.digest:
            continue
        ref = b if b is not None else a
        assert ref is not None
        changes.append(ComponentChange(ref.kind, ref.name, a, b))
    return changes
