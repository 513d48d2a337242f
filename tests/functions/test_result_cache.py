"""ResultCache over in-memory and real Delta Lake databases: lookup miss/hit, newest wins,
additional constraints and match tiers, stored columns, filtered results, auto flush,
lookup_many as one query, get_all_records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from orcapod.data import Packet
from orcapod.databases import (
    ArrowDatabase,
    DeltaTableDatabase,
    InMemoryArrowDatabase,
    NoOpArrowDatabase,
)
from orcapod.errors import InputValidationError
from orcapod.functions import PythonPacketFunction, ResultCache
from orcapod.functions.result_cache import FILTERED, match_constraints
from orcapod.types import CacheMatch, Schema

PATH = ("results", "square")


def square(x: int) -> int:
    return x * x


PF = PythonPacketFunction(square, "y")
VARIATION = PF.get_function_variation_data()
EXECUTION = PF.get_execution_data()


def compute(x: int) -> tuple[Packet, Packet]:
    packet = Packet({"x": x})
    out = PF.call(packet)
    assert out is not None
    return packet, out


def make_cache(db: ArrowDatabase, **kwargs: Any) -> ResultCache:
    return ResultCache(db, PATH, output_schema=PF.output_packet_schema, **kwargs)


def test_lookup_miss_on_empty_database_and_on_other_packet(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    assert cache.lookup(Packet({"x": 1})) is None
    packet, out = compute(2)
    cache.store(packet, out, VARIATION, EXECUTION)
    assert cache.lookup(Packet({"x": 1})) is None


def test_lookup_hit_returns_the_stored_packet_with_provenance(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(3)
    record_id = cache.store(packet, out, VARIATION, EXECUTION)
    hit = cache.lookup(Packet({"x": 3}))
    assert isinstance(hit, Packet)
    assert hit.as_dict() == {"y": 9}
    assert hit.schema() == PF.output_packet_schema
    assert hit.source_info() == out.source_info()
    assert hit.get_meta_value("__computed") is False
    assert hit.get_meta_value("__packet_id") == record_id
    assert isinstance(hit.get_meta_value("__pod_ts"), dt.datetime)
    # the record id is the one in the computed packet's source info
    assert out.source_info()["y"].split("::")[1] == record_id


def test_different_record_paths_are_isolated(db: ArrowDatabase) -> None:
    packet, out = compute(3)
    ResultCache(db, ("a",)).store(packet, out, VARIATION, EXECUTION)
    assert ResultCache(db, ("b",)).lookup(packet) is None
    assert ResultCache(db, ("a",)).lookup(packet) is not None


def test_storing_the_same_result_twice_is_a_skip_not_a_duplicate(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(4)
    first = cache.store(packet, out, VARIATION, EXECUTION)
    second = cache.store(packet, out, VARIATION, EXECUTION)
    assert first == second
    records = cache.get_all_records(include_system_columns=True)
    assert records is not None and records.num_rows == 1


def test_newest_pod_ts_wins_among_several_matches(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet = Packet({"x": 5})
    older = Packet({"y": 1}, source_info={"y": "old::1::y"})
    newer = Packet({"y": 2}, source_info={"y": "new::2::y"})
    t0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    # two results for one packet under different execution data (different record ids)
    cache.store_many(
        [(packet.content_hash(), newer)], VARIATION, {"e": "b"}, pod_ts=t0 + dt.timedelta(1)
    )
    cache.store_many([(packet.content_hash(), older)], VARIATION, {"e": "a"}, pod_ts=t0)
    hit = cache.lookup(packet)
    assert isinstance(hit, Packet) and hit["y"] == 2
    assert hit.get_meta_value("__pod_ts") == t0 + dt.timedelta(1)


def test_additional_constraints_filter_matches(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(6)
    cache.store(packet, out, VARIATION, EXECUTION)
    assert cache.lookup(packet, {"__pf_var_function_name": "square"}) is not None
    assert cache.lookup(packet, {"__pf_var_function_name": "cube"}) is None


def test_match_tiers_build_the_expected_constraints() -> None:
    execution = {"executor_type": "local", "python_version": "3.11.0"}
    assert match_constraints(CacheMatch.VERSION, "code:1", execution) == {}
    assert match_constraints(CacheMatch.CODE, "code:1", execution) == {
        "__pf_var_function_content_hash": "code:1"
    }
    assert match_constraints("strict", "code:1", execution) == {
        "__pf_var_function_content_hash": "code:1",
        "__pf_exec_executor_type": "local",
        "__pf_exec_python_version": "3.11.0",
    }


def test_tiers_against_stored_results_old_results_stay_unmatched(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(7)
    cache.store(packet, out, VARIATION, EXECUTION)
    other_code = "code_v1:" + "0" * 64
    other_exec = {**EXECUTION, "executor_type": "ray"}
    assert cache.lookup(packet, match_constraints("version", other_code, other_exec)) is not None
    assert cache.lookup(packet, match_constraints("code", other_code, EXECUTION)) is None
    assert cache.lookup(packet, match_constraints("code", PF.code_hash, other_exec)) is not None
    assert cache.lookup(packet, match_constraints("strict", PF.code_hash, other_exec)) is None
    assert cache.lookup(packet, match_constraints("strict", PF.code_hash, EXECUTION)) is not None
    records = cache.get_all_records(include_system_columns=True)
    assert records is not None and records.num_rows == 1  # nothing was deleted


def test_stored_columns_in_order_with_types(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(8)
    cache.store(packet, out, VARIATION, EXECUTION)
    table = cache.get_all_records(include_system_columns=True)
    assert table is not None
    expected = [
        "__packet_id",
        "__input_packet_hash",
        *("__pf_var_" + k for k in VARIATION),
        *("__pf_exec_" + k for k in EXECUTION),
        "y",
        "_source_y",
        "__pod_ts",
    ]
    assert sorted(table.column_names) == sorted(expected)
    row = table.to_pylist()[0]
    assert row["__input_packet_hash"] == packet.content_hash().to_string()
    assert row["__pf_var_function_content_hash"] == PF.code_hash
    assert row["__pf_exec_executor_type"] == "none"
    assert row["y"] == 64
    assert row["_source_y"] == out.source_info()["y"]
    ts_type = table.schema.field("__pod_ts").type
    assert pa.types.is_timestamp(ts_type) and ts_type.tz == "UTC"


def test_filtered_result_is_stored_and_found_as_filtered(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet = Packet({"x": 9})
    cache.store(packet, None, VARIATION, EXECUTION)
    assert cache.lookup(packet) is FILTERED
    assert repr(FILTERED) == "FILTERED"
    assert cache.get_all_records() is None  # no computed result to show
    records = cache.get_all_records(include_system_columns=True)
    assert records is not None and records.num_rows == 1


def test_lookup_many_aligned_with_input_in_one_query(db: ArrowDatabase) -> None:
    queries: list[Mapping[str, object]] = []

    class Counting:
        def __init__(self, inner: ArrowDatabase) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def get_records_with_column_value(
            self,
            path: Sequence[str],
            constraints: Mapping[str, object],
            record_id_column: str | None = None,
            columns: Sequence[str] | None = None,
        ) -> Any:
            queries.append(constraints)
            return self.inner.get_records_with_column_value(
                path, constraints, record_id_column, columns
            )

    cache = ResultCache(Counting(db), PATH, output_schema=PF.output_packet_schema)  # type: ignore[arg-type]
    entries = [compute(x) for x in range(10)]
    cache.store_many([(p.content_hash(), o) for p, o in entries[:6]], VARIATION, EXECUTION)
    cache.store(Packet({"x": 50}), None, VARIATION, EXECUTION)
    wanted = [Packet({"x": x}).content_hash() for x in (9, 0, 50, 5, 3, 3)]
    found = cache.lookup_many(wanted)
    assert len(queries) == 1
    assert found[0] is None and found[2] is FILTERED
    assert [p["y"] for p in (found[1], found[3], found[4], found[5])] == [0, 25, 9, 9]  # type: ignore[index]
    assert cache.lookup_many([]) == []


def test_auto_flush_commits_each_store(tmp_path: Path) -> None:
    flushes: list[int] = []

    class Counting(InMemoryArrowDatabase):
        def flush(self) -> None:
            flushes.append(1)

    cache = ResultCache(Counting(), PATH)
    assert cache.auto_flush is True
    packet, out = compute(1)
    cache.store(packet, out, VARIATION, EXECUTION)
    assert len(flushes) == 1
    cache.set_auto_flush(False)
    assert cache.auto_flush is False
    cache.store_many(
        [(Packet({"x": k}).content_hash(), out) for k in range(5)], VARIATION, EXECUTION
    )
    assert len(flushes) == 1
    cache.store(packet, out, VARIATION, EXECUTION, flush=True)
    assert len(flushes) == 2
    assert ResultCache(Counting(), PATH, auto_flush=False).auto_flush is False


def test_auto_flush_makes_results_durable_in_delta(tmp_path: Path) -> None:
    cache = ResultCache(DeltaTableDatabase(tmp_path / "d"), PATH)
    packet, out = compute(3)
    cache.store(packet, out, VARIATION, EXECUTION)
    reopened = ResultCache(DeltaTableDatabase(tmp_path / "d"), PATH)
    hit = reopened.lookup(packet)
    assert isinstance(hit, Packet) and hit["y"] == 9
    deferred = ResultCache(DeltaTableDatabase(tmp_path / "e"), PATH, auto_flush=False)
    deferred.store(packet, out, VARIATION, EXECUTION)
    assert ResultCache(DeltaTableDatabase(tmp_path / "e"), PATH).lookup(packet) is None
    deferred.flush()
    assert ResultCache(DeltaTableDatabase(tmp_path / "e"), PATH).lookup(packet) is not None


def test_get_all_records_empty_and_with_or_without_system_columns(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    assert cache.get_all_records() is None
    assert cache.get_all_records(include_system_columns=True) is None
    for x in (1, 2):
        cache.store(*compute(x), VARIATION, EXECUTION)
    plain = cache.get_all_records()
    assert plain is not None
    assert sorted(plain.column_names) == ["_source_y", "y"]
    assert sorted(plain.column("y").to_pylist()) == [1, 4]
    full = cache.get_all_records(include_system_columns=True)
    assert full is not None and "__packet_id" in full.column_names
    assert "__input_packet_hash" in full.column_names and full.num_rows == 2


def test_without_output_schema_types_come_from_the_stored_table(db: ArrowDatabase) -> None:
    cache = ResultCache(db, PATH)
    packet, out = compute(2)
    cache.store(packet, out, VARIATION, EXECUTION)
    hit = cache.lookup(packet)
    assert isinstance(hit, Packet) and hit.as_dict() == {"y": 4}
    assert hit.schema() == Schema({"y": int})


def test_rejects_a_non_database_and_bad_paths() -> None:
    with pytest.raises(InputValidationError, match="ArrowDatabase"):
        ResultCache({}, PATH)  # type: ignore[arg-type]
    with pytest.raises(InputValidationError):
        ResultCache(InMemoryArrowDatabase(), ("a", ""))


def _stored_sources(cache: ResultCache) -> dict[str, str | None]:
    table = cache.get_all_records(include_system_columns=True)
    assert table is not None
    return dict(
        zip(
            table.column("__input_packet_hash").to_pylist(),
            table.column("_source_y").to_pylist(),
            strict=True,
        )
    )


def test_store_many_mixed_batch_keeps_every_kind_of_source_info(db: ArrowDatabase) -> None:
    # a cache at the function's own URI: its computed packets' (unresolved, lazy) source info
    # is built from the record ids in bulk; it must equal what the packets resolve to
    cache = ResultCache(db, PF.uri, output_schema=PF.output_packet_schema)
    lazy_in, lazy_out = compute(3)
    given_in = Packet({"x": 4})
    given_out = Packet({"y": 16}, source_info={"y": "elsewhere::r7::y"})
    missing_in = Packet({"x": 5})
    missing_out = Packet({"y": 25})
    filtered_in = Packet({"x": 6})
    ids = cache.store_many(
        [
            (lazy_in.content_hash(), lazy_out),
            (given_in.content_hash(), given_out),
            (missing_in.content_hash(), missing_out),
            (filtered_in.content_hash(), None),
        ],
        VARIATION,
        EXECUTION,
    )
    sources = _stored_sources(cache)
    assert sources[lazy_in.content_hash().to_string()] == lazy_out.source_info()["y"]
    assert lazy_out.source_info()["y"] == ":".join(PF.uri) + "::" + ids[0] + "::y"
    assert sources[given_in.content_hash().to_string()] == "elsewhere::r7::y"
    assert sources[missing_in.content_hash().to_string()] == ":".join(PF.uri) + f"::{ids[2]}::y"
    assert sources[filtered_in.content_hash().to_string()] is None


def test_store_many_lazy_source_info_under_another_uri_resolves_to_its_own(
    db: ArrowDatabase,
) -> None:
    # PATH is not the function's URI: the packets keep the tokens of the function that made
    # them (resolved from their input hashes), as one-by-one resolution would give
    cache = make_cache(db)
    pairs = [compute(x) for x in range(10, 15)]
    cache.store_many([(p.content_hash(), out) for p, out in pairs], VARIATION, EXECUTION)
    sources = _stored_sources(cache)
    for packet, out in pairs:
        expected = ":".join(PF.uri) + "::"
        assert sources[packet.content_hash().to_string()] == out.source_info()["y"]
        assert out.source_info()["y"].startswith(expected)


def test_own_values_keeps_values_of_own_outputs_and_stores_the_same_rows(
    db: ArrowDatabase,
) -> None:
    cache = ResultCache(db, PF.uri, output_schema=PF.output_packet_schema)
    pairs = [compute(x) for x in (20, 21)]
    other = Packet({"y": 1}, source_info={"y": "elsewhere::r1::y"})
    outputs = [pairs[0][1], None, other, pairs[1][1]]
    kept = cache.own_values(outputs, VARIATION, EXECUTION)
    assert kept[0] == {"y": 400} and kept[3] == {"y": 441}
    assert kept[1] is None and kept[2] is other
    hashes = [pairs[0][0].content_hash(), Packet({"x": 0}).content_hash()]
    hashes += [Packet({"x": 1}).content_hash(), pairs[1][0].content_hash()]
    cache.store_many(list(zip(hashes, kept, strict=True)), VARIATION, EXECUTION)
    sources = _stored_sources(cache)
    for packet, out in pairs:
        assert sources[packet.content_hash().to_string()] == out.source_info()["y"]
    assert sources[hashes[1].to_string()] is None
    assert sources[hashes[2].to_string()] == "elsewhere::r1::y"


def test_plain_values_need_an_output_schema(db: ArrowDatabase) -> None:
    cache = ResultCache(db, PATH)
    with pytest.raises(InputValidationError, match="output_schema"):
        cache.store_many([(Packet({"x": 1}).content_hash(), {"y": 1})], VARIATION, EXECUTION)


def test_store_outputs_takes_aligned_lists(db: ArrowDatabase) -> None:
    cache = make_cache(db)
    packet, out = compute(30)
    (record_id,) = cache.store_outputs([packet.content_hash()], [out], VARIATION, EXECUTION)
    hit = cache.lookup(packet)
    assert isinstance(hit, Packet) and hit["y"] == 900
    assert hit.get_meta_value("__packet_id") == record_id
    with pytest.raises(InputValidationError, match="one input hash per output"):
        cache.store_outputs([packet.content_hash()], [out, None], VARIATION, EXECUTION)


def test_committed_version_is_none_without_versions_and_counts_delta_commits(
    tmp_path: Path,
) -> None:
    assert make_cache(NoOpArrowDatabase()).committed_version() is None
    cache = make_cache(DeltaTableDatabase(tmp_path / "d").at("results"))
    assert cache.committed_version() == -1
    packet, out = compute(4)
    cache.store(packet, out, VARIATION, EXECUTION)
    assert cache.committed_version() == 0


@pytest.mark.parametrize("tier", list(CacheMatch))
def test_misses_stored_as_verified_never_duplicate_a_result_stored_meanwhile(
    tmp_path: Path, tier: CacheMatch
) -> None:
    """A miss is stored with ``absent_at``; another writer (a second database instance, as
    another process) stored the same result after the lookup: it is kept once."""
    mine = make_cache(DeltaTableDatabase(tmp_path / "d"))
    other = make_cache(DeltaTableDatabase(tmp_path / "d"))
    other.store(*compute(1), VARIATION, EXECUTION)
    constraints = match_constraints(tier, PF.code_hash, EXECUTION)
    packets = [compute(x) for x in (2, 3)]
    version = mine.committed_version()
    found = mine.lookup_many([p.content_hash() for p, _ in packets], constraints)
    assert found == [None, None]
    other.store(*packets[0], VARIATION, EXECUTION)  # committed after the lookup
    mine.store_outputs(
        [p.content_hash() for p, _ in packets],
        [out for _, out in packets],
        VARIATION,
        EXECUTION,
        absent_at=version,
    )
    stored = make_cache(DeltaTableDatabase(tmp_path / "d")).get_all_records(True)
    assert stored is not None
    assert sorted(stored.column("y").to_pylist()) == [1, 4, 9]
    assert len(set(stored.column("__packet_id").to_pylist())) == 3


def test_a_different_output_for_a_stored_input_is_kept_and_the_newest_wins(
    db: ArrowDatabase,
) -> None:
    cache = make_cache(db)
    packet = Packet({"x": 2})
    first = cache.store(packet, Packet({"y": 3}), VARIATION, EXECUTION)
    second = cache.store(packet, Packet({"y": 4}), VARIATION, EXECUTION)
    assert second != first
    hit = cache.lookup(packet)
    assert isinstance(hit, Packet) and hit.as_dict() == {"y": 4}
    assert hit.get_meta_value("__packet_id") == second
    # storing an identical output again adds nothing and answers its existing id
    assert cache.store(packet, Packet({"y": 4}), VARIATION, EXECUTION) == second
    assert cache.store(packet, Packet({"y": 3}), VARIATION, EXECUTION) == first
    stored = cache.get_all_records(include_system_columns=True)
    assert stored is not None and sorted(stored.column("y").to_pylist()) == [3, 4]
