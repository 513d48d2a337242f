"""Versioned writes through ``committed_version`` / ``add_verified_records``: they see
through scoped views, fall back to plain writes on backends without versions, and never let a
verified write store an id twice."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.databases.backend import add_verified_records, committed_version
from orcapod.errors import DuplicateRecordError


def batch(ids: list[str], values: list[int]) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), "v": values})


def stored(db: DeltaTableDatabase | InMemoryArrowDatabase, path: tuple[str, ...]) -> list[tuple]:
    got = db.get_all_records(path, "id")
    assert got is not None
    return sorted((r["id"], r["v"]) for r in got.to_pylist())


def test_versions_are_seen_through_views_of_a_delta_database(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path)
    view = db.at("results")
    assert committed_version(view, ("fn",)) == -1
    db.add_records(("results", "fn"), batch(["a"], [1]), "id")
    db.flush()
    assert committed_version(view, ("fn",)) == 0 == committed_version(db, ("results", "fn"))


def test_a_verified_write_through_a_view_lands_under_the_prefix_and_is_still_checked(
    tmp_path: Path,
) -> None:
    db, other = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    view = db.at("results")
    version = committed_version(view, ("fn",))
    assert view.get_records_by_ids(("fn",), ["x", "y"]) is None
    other.add_records(("results", "fn"), batch(["x"], [10]), "id")
    other.flush()  # committed after the check
    with pytest.raises(DuplicateRecordError, match="'x'"):
        add_verified_records(view, ("fn",), batch(["x", "y"], [0, 20]), "id", absent_at=version)
    add_verified_records(
        view, ("fn",), batch(["x", "y"], [0, 20]), "id", skip_duplicates=True, absent_at=version
    )
    db.flush()
    assert stored(other, ("results", "fn")) == [("x", 10), ("y", 20)]


def test_backends_without_versions_get_plain_writes(tmp_path: Path) -> None:
    db = InMemoryArrowDatabase()
    view = db.at("results")
    assert committed_version(db, ("fn",)) is None
    assert committed_version(view, ("fn",)) is None
    add_verified_records(view, ("fn",), batch(["a"], [1]), "id", absent_at=None)
    add_verified_records(view, ("fn",), batch(["b"], [2]), "id", absent_at=3)  # ignored
    with pytest.raises(DuplicateRecordError, match="'a'"):
        add_verified_records(view, ("fn",), batch(["a"], [0]), "id", absent_at=3)
    assert stored(db, ("results", "fn")) == [("a", 1), ("b", 2)]
