"""Stored code identities: one row per code hash, diffed to name what changed."""

from __future__ import annotations

from pathlib import Path

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.functions import PythonPacketFunction
from orcapod.functions.identity_store import (
    IDENTITY_PATH,
    StoredIdentity,
    diff_identities,
    identity_of,
    load_identities,
    record_identity,
    stored_source,
)
from orcapod.hashing.function_identity import IdentityComponent

FACTOR = 3


def triple(x: int) -> int:
    return x * FACTOR


def test_an_identity_is_stored_once_and_loaded_back(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    pf = PythonPacketFunction(triple, output_keys="y")
    record_identity(db, pf)
    record_identity(DeltaTableDatabase(tmp_path), pf)  # another process: skipped duplicate
    table = db.get_all_records(IDENTITY_PATH)
    assert table is not None and table.num_rows == 1
    loaded = load_identities(db, [pf.code_hash, "code_v1:unknown"])
    assert list(loaded) == [pf.code_hash]
    stored = loaded[pf.code_hash]
    assert stored.function_name == "triple"
    assert {c.key for c in stored.components} == {"code triple", "global FACTOR"}
    assert stored == identity_of(pf)


def test_a_function_without_python_code_stores_nothing() -> None:
    db = InMemoryArrowDatabase()

    class NoCode:
        code_hash = "code_v1:x"

    record_identity(db, NoCode())
    assert db.get_all_records(IDENTITY_PATH) is None


def test_diff_names_added_removed_and_changed_components() -> None:
    old = StoredIdentity(
        "f",
        "a",
        (
            IdentityComponent("global", "T", "1", "0.5"),
            IdentityComponent("helper", "h", "2"),
            IdentityComponent("library", "np", "3", "numpy 1.0"),
        ),
    )
    new = StoredIdentity(
        "f",
        "b",
        (
            IdentityComponent("global", "T", "9", "0.7"),
            IdentityComponent("helper", "g", "4"),
            IdentityComponent("library", "np", "3", "numpy 1.0"),
        ),
    )
    described = [c.describe() for c in diff_identities(old, new)]
    assert described == [
        "global `T` 0.5 → 0.7",
        "helper `g` added",
        "helper `h` removed",
    ]


def test_the_source_text_is_stored_with_the_identity(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    pf = PythonPacketFunction(triple, output_keys="y")
    record_identity(db, pf)
    source = stored_source(DeltaTableDatabase(tmp_path), pf.code_hash)
    assert source is not None and source.startswith("def triple(x: int) -> int:")
    assert stored_source(db, "code_v1:unknown") is None
