import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.sources import CachedSource, DictSource
from orcapod.sources.cached import row_hash_ids
from orcapod.types import ColumnConfig


@pytest.fixture(params=["memory", "delta"])
def database(request, tmp_path):
    if request.param == "memory":
        return InMemoryArrowDatabase()
    return DeltaTableDatabase(tmp_path / "store")


def _source(*subjects, source_id="patients", record_id_column="subject"):
    rows = [{"subject": s, "weight": float(i)} for i, s in enumerate(subjects)]
    return DictSource(
        rows, tag_columns=["subject"], source_id=source_id, record_id_column=record_id_column
    )


def _subjects(stream):
    return sorted(stream.as_table().column("subject").to_pylist())


def test_serves_every_row_ever_seen_once(database):
    first = CachedSource(_source("a", "b"), database)
    assert _subjects(first) == ["a", "b"]
    # the live source moved on: "a" is gone, "c" is new; "b" is unchanged
    rows = [{"subject": "b", "weight": 1.0}, {"subject": "c", "weight": 2.0}]
    later = DictSource(
        rows, tag_columns=["subject"], source_id="patients", record_id_column="subject"
    )
    second = CachedSource(later, database)
    assert second.cache_path == first.cache_path
    assert _subjects(second) == ["a", "b", "c"]
    assert CachedSource(later, database).num_rows == 3  # no duplicates, whatever the reruns


def test_keeps_system_tags_and_source_info(database):
    source = _source("a", "b")
    cached = CachedSource(source, database)
    full = ColumnConfig(source=True, system_tags=True)
    assert cached.as_table(full).sort_by("subject").to_pylist() == (
        source.as_table(full).sort_by("subject").to_pylist()
    )
    assert cached.output_schema() == source.output_schema()
    assert cached.keys(full) == source.keys(full)


def test_identity_follows_the_served_rows(database):
    cached = CachedSource(_source("a", "b"), database)
    same = CachedSource(_source("a", "b"), database)
    assert cached.content_hash() == same.content_hash()
    assert cached.pipeline_hash() == _source("a", "b").pipeline_hash()
    grown = CachedSource(_source("a", "b", "c"), database)
    assert grown.content_hash() != cached.content_hash()


def test_separate_sources_get_separate_tables():
    database = InMemoryArrowDatabase()
    a = CachedSource(_source("a", source_id="one"), database)
    b = CachedSource(_source("b", source_id="two"), database)
    assert _subjects(a) == ["a"] and _subjects(b) == ["b"]
    explicit = CachedSource(_source("z"), database, cache_path=("mine",))
    assert explicit.cache_path == ("mine",) and _subjects(explicit) == ["z"]


def test_record_is_durable_in_a_new_database_object(tmp_path):
    CachedSource(_source("a", "b"), DeltaTableDatabase(tmp_path / "s")).as_table()
    reopened = DeltaTableDatabase(tmp_path / "s")
    assert _subjects(CachedSource(_source("c"), reopened)) == ["a", "b", "c"]


def test_row_ids_are_row_local_hex_digests():
    table = _source("a", "b").as_table(ColumnConfig(source=True, system_tags=True))
    ids = row_hash_ids(table).to_pylist()
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert row_hash_ids(table.slice(1, 1)).to_pylist() == ids[1:]


def test_rejects_a_non_database():
    with pytest.raises(InputValidationError, match="ArrowDatabase"):
        CachedSource(_source("a"), {"not": "a database"})


def test_cache_path_prefix_scopes_the_default_path(database):
    source = _source("a")
    cached = source.cached(database, cache_path_prefix=("team",))
    assert (
        cached.cache_path[0] == "team"
        and cached.cache_path[1:] == CachedSource(source, database).cache_path
    )
    assert _subjects(cached) == ["a"]


def test_source_id_names_the_cache_and_records_can_be_read(database):
    live = _source("a", "b")
    cached = CachedSource(live, database, source_id="renamed")
    assert cached.source_id == "renamed" and "renamed" in cached.cache_path
    assert cached.get_all_records() is None  # nothing recorded before first use
    assert _subjects(cached) == ["a", "b"]
    records = cached.get_all_records()
    assert records is not None and records.num_rows == 2
    assert cached.data_context_key == live.data_context_key
