"""Persistent lookup indexes of DeltaTableDatabase: lookups by many values give the same rows
as a scan, fresh processes answer from the sidecars, and files without a sidecar (other
writers, compaction, damaged sidecars, older files without the column) are never missed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable, write_deltalake

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.column_index import INDEX_DIR, MIN_INDEXED_VALUES, PACK_AFTER, scheme
from orcapod.errors import DatabaseError

PATH = ("results", "fn")


def _rows(start: int, stop: int) -> pa.Table:
    return pa.table(
        {
            "id": [f"r{i}" for i in range(start, stop)],
            "key": [f"k{i}" for i in range(start, stop)],
            "n": list(range(start, stop)),
        }
    )


def _write_batches(db: DeltaTableDatabase, batches: int, size: int = 50) -> None:
    for b in range(batches):
        db.add_records(PATH, _rows(b * size, (b + 1) * size), "id")
        db.flush()


def _sidecars(db: DeltaTableDatabase, column: str = "key") -> list[Path]:
    root = Path(db.table_uri(PATH), INDEX_DIR, scheme().hex(), column)
    return sorted(root.glob("*.h64")) if root.is_dir() else []


def _keys(table: pa.Table | None) -> list[str]:
    return [] if table is None else sorted(table.column("key").to_pylist())


def _lookup(db: DeltaTableDatabase, keys: list[str]) -> pa.Table | None:
    return db.get_records_with_column_value(PATH, {"key": keys}, record_id_column="id")


def _data_files(db: DeltaTableDatabase) -> list[str]:
    return list(DeltaTable(db.table_uri(PATH)).file_uris())


def test_many_value_lookup_returns_exactly_the_stored_matches(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"k{i}" for i in range(MIN_INDEXED_VALUES)])  # before the table exists
    _write_batches(db, 4)
    # every commit wrote the sidecar of the file it added
    assert len(_sidecars(db)) == len(_data_files(db)) == 4
    wanted = [f"k{i}" for i in range(0, 400, 3)]  # present (< 200) and absent (>= 200)
    assert _keys(_lookup(db, wanted)) == sorted(k for k in wanted if int(k[1:]) < 200)
    assert _lookup(db, [f"absent{i}" for i in range(50)]) is None
    # other constraints still apply next to the narrowed one
    both = db.get_records_with_column_value(PATH, {"key": wanted, "n": [0, 3, 6, 300]})
    assert both is not None and sorted(both.column("n").to_pylist()) == [0, 3, 6]


def test_fresh_instance_answers_absent_values_from_the_sidecars_alone(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, 3)
    for file in _data_files(db):  # damage the data: only the sidecars are left to answer
        Path(file).write_bytes(b"not parquet")
    fresh = DeltaTableDatabase(tmp_path / "s")
    assert _lookup(fresh, [f"absent{i}" for i in range(100)]) is None
    with pytest.raises(DatabaseError):  # a possible hit does go to the (now broken) data
        _lookup(fresh, ["k1", *[f"absent{i}" for i in range(20)]])


def test_rows_committed_by_another_writer_without_sidecars_are_found(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, 2)
    foreign = _rows(1000, 1010).rename_columns(["__record_id", "key", "n"])
    write_deltalake(db.table_uri(PATH), foreign, mode="append")
    wanted = ["k1000", "k1009", "k5", *[f"absent{i}" for i in range(20)]]
    assert _keys(_lookup(db, wanted)) == ["k1000", "k1009", "k5"]
    assert len(_sidecars(db)) == len(_data_files(db)) == 3  # the foreign file got one too
    fresh = DeltaTableDatabase(tmp_path / "s")
    assert _keys(_lookup(fresh, wanted)) == ["k1000", "k1009", "k5"]


def test_damaged_sidecar_is_ignored_and_rebuilt(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, 2)
    first = _sidecars(db)[0]
    good = first.read_bytes()
    first.write_bytes(good[: len(good) // 2])  # e.g. a copy cut short
    fresh = DeltaTableDatabase(tmp_path / "s")
    wanted = [f"k{i}" for i in range(0, 100, 5)]
    assert _keys(_lookup(fresh, wanted)) == sorted(wanted)
    assert first.read_bytes() == good


def test_compacted_table_is_still_looked_up_correctly(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, 4)
    DeltaTable(db.table_uri(PATH)).optimize.compact()
    wanted = [f"k{i}" for i in range(150, 250)]
    for reader in (db, DeltaTableDatabase(tmp_path / "s")):
        assert _keys(_lookup(reader, wanted)) == sorted(f"k{i}" for i in range(150, 200))


def test_column_added_later_and_pending_rows(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s", batch_size=1_000)
    db.add_records(PATH, _rows(0, 20).drop_columns(["key"]), "id")
    db.flush()  # a file without the column
    db.add_records(PATH, _rows(20, 40), "id")
    db.flush()
    wanted = [f"k{i}" for i in range(20, 60)]
    # indexes the column; the old file holds only nulls there
    assert _keys(_lookup(db, wanted)) == sorted(f"k{i}" for i in range(20, 40))
    assert len(_sidecars(db)) == 2
    db.add_records(PATH, _rows(40, 45), "id")  # left pending
    assert _keys(_lookup(db, wanted)) == sorted(f"k{i}" for i in range(20, 45))
    nulls = db.get_records_with_column_value(PATH, {"key": [None, *wanted]})
    assert nulls is not None and nulls.num_rows == 45


def test_few_value_lookups_and_non_string_columns_write_no_index(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _write_batches(db, 2)
    assert _keys(_lookup(db, ["k1", "k2"])) == ["k1", "k2"]
    numbers = db.get_records_with_column_value(PATH, {"n": list(range(0, 100, 2))})
    assert numbers is not None and numbers.num_rows == 50
    assert not Path(db.table_uri(PATH), INDEX_DIR).exists()


def test_many_value_lookup_indexes_an_existing_table_for_later_processes(
    tmp_path: Path,
) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _write_batches(db, 3)  # written before anyone looked up by key: no sidecars
    assert _sidecars(db) == []
    wanted = [f"k{i}" for i in range(0, 300, 7)]
    expected = sorted(k for k in wanted if int(k[1:]) < 150)
    assert _keys(_lookup(db, wanted)) == expected
    assert len(_sidecars(db)) == 3
    later = DeltaTableDatabase(tmp_path / "s")  # discovers the indexed column on its writes
    later.add_records(PATH, _rows(150, 160), "id")
    later.flush()
    assert len(_sidecars(db)) == 4
    table = later.get_all_records(PATH)
    assert table is not None
    stored = table.filter(pc.is_in(table.column("key"), pa.array(wanted)))
    assert _keys(_lookup(later, wanted)) == _keys(stored)


def test_index_scheme_is_the_same_in_another_process() -> None:
    code = "from orcapod.databases.column_index import scheme; print(scheme().hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == scheme().hex()


def test_a_table_of_many_files_gets_one_pack_read_instead_of_a_sidecar_per_file(
    tmp_path: Path,
) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, PACK_AFTER + 2, size=10)
    pack = Path(db.table_uri(PATH), INDEX_DIR, scheme().hex(), "key", "pack.h64p")
    assert not pack.exists()  # the writer's own lookups read its cached runs, not sidecars
    wanted = [f"k{i}" for i in range(0, 200, 3)]
    expected = sorted(k for k in wanted if int(k[1:]) < 10 * (PACK_AFTER + 2))
    assert _keys(_lookup(DeltaTableDatabase(tmp_path / "s"), wanted)) == expected
    assert pack.exists()  # that fresh instance read PACK_AFTER+ sidecars: it packed them
    for sidecar in _sidecars(db):
        sidecar.unlink()
    for file in _data_files(db):  # only the pack is left to answer for absent values
        Path(file).write_bytes(b"not parquet")
    assert _lookup(DeltaTableDatabase(tmp_path / "s"), [f"absent{i}" for i in range(50)]) is None


def test_a_damaged_pack_is_ignored(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, PACK_AFTER + 1, size=10)
    wanted = [f"k{i}" for i in range(0, 120, 7)]
    expected = sorted(k for k in wanted if int(k[1:]) < 10 * (PACK_AFTER + 1))
    assert _keys(_lookup(DeltaTableDatabase(tmp_path / "s"), wanted)) == expected
    pack = Path(db.table_uri(PATH), INDEX_DIR, scheme().hex(), "key", "pack.h64p")
    data = pack.read_bytes()
    for damaged in (data[:-8], data[:40], b"OIDP" + data[4:20] + b"\xff" * 12 + data[32:]):
        pack.write_bytes(damaged)
        assert _keys(_lookup(DeltaTableDatabase(tmp_path / "s"), wanted)) == expected


def test_a_well_formed_sidecar_with_wrong_hashes_is_never_believed(tmp_path: Path) -> None:
    db = DeltaTableDatabase(tmp_path / "s")
    _lookup(db, [f"x{i}" for i in range(MIN_INDEXED_VALUES)])
    _write_batches(db, 2)
    first, second = _sidecars(db)
    good = first.read_bytes()
    # same header, same size, other hashes (the other file's): it would hide every row
    forged = good[:24] + second.read_bytes()[24 : len(good)]
    first.write_bytes(forged)
    fresh = DeltaTableDatabase(tmp_path / "s")
    wanted = [f"k{i}" for i in range(0, 100, 5)]
    assert _keys(_lookup(fresh, wanted)) == sorted(wanted)
    assert first.read_bytes() == good  # rebuilt from the data file
    # a sidecar copied from another data file is not believed either
    first.write_bytes(second.read_bytes())
    assert _keys(_lookup(DeltaTableDatabase(tmp_path / "s"), wanted)) == sorted(wanted)


def test_results_verified_absent_by_the_index_are_never_stored_twice(tmp_path: Path) -> None:
    from orcapod import function_pod
    from orcapod.nodes import FunctionNode
    from orcapod.sources import DictSource

    @function_pod("y")
    def square(x: int) -> int:
        return x * x

    rows = [{"id": i, "x": i} for i in range(100)]
    store = tmp_path / "store"
    first = FunctionNode(
        square.pod, DictSource(rows, ["id"], source_id="a"), DeltaTableDatabase(store)
    )
    assert first.run().computed == 100
    results = Path(
        DeltaTableDatabase(store).table_uri(("_result", *first.result_cache.record_path))
    )
    sidecars = list(results.glob(f"{INDEX_DIR}/*/*/*.h64"))
    assert sidecars
    for sidecar in sidecars:  # well formed, but the hashes of nothing: "all absent"
        data = sidecar.read_bytes()
        sidecar.write_bytes(data[:16] + (0).to_bytes(8, "little"))
    other = FunctionNode(
        square.pod, DictSource(rows, ["id"], source_id="b"), DeltaTableDatabase(store)
    )
    summary = other.run()
    assert (summary.computed, summary.reused) == (0, 100)
    stored = other.result_cache.get_all_records(include_system_columns=True)
    assert stored is not None and stored.num_rows == 100


def test_files_committed_between_lookups_are_found_then_and_after_compaction(
    tmp_path: Path,
) -> None:
    """A writer that looks up between its commits (a node's chunks) finds every value of
    every file it added (their runs merged, held once), also after the table is compacted."""
    db = DeltaTableDatabase(tmp_path / "s")
    _write_batches(db, 2)
    wanted = [f"k{i}" for i in range(0, 600, 2)]
    for b in range(2, 12):  # commit, then look up everything committed so far
        db.add_records(PATH, _rows(b * 50, (b + 1) * 50), "id")
        db.flush()
        found = _keys(_lookup(db, wanted))
        assert found == sorted(k for k in wanted if int(k[1:]) < (b + 1) * 50)
    DeltaTable(db.table_uri(PATH)).optimize.compact()
    assert _keys(_lookup(db, wanted)) == sorted(wanted)
