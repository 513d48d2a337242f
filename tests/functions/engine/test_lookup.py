"""The engine's look-up phase: one Arrow answer per batch of input hashes (hit, filtered,
miss; the newest result wins; match constraints narrow it), on in-memory and Delta stores."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from orcapod.data import Packet
from orcapod.databases import ArrowDatabase, DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.functions import PythonPacketFunction, ResultCache
from orcapod.functions.engine.lookup import lookup
from orcapod.functions.result_cache import match_constraints
from orcapod.types import CacheMatch


def half(x: int) -> int | None:
    return None if x % 2 else x // 2


PF = PythonPacketFunction(half, "h")
VARIATION = PF.get_function_variation_data()
EXECUTION = PF.get_execution_data()


@pytest.fixture(params=["memory", "delta"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> ResultCache:
    db: ArrowDatabase = (
        InMemoryArrowDatabase() if request.param == "memory" else DeltaTableDatabase(tmp_path)
    )
    return ResultCache(db, ("results",), output_schema=PF.output_packet_schema)


def _hash(x: int) -> str:
    return Packet({"x": x}).content_hash().to_string()


def test_hits_filtered_results_and_misses_are_told_apart(cache: ResultCache) -> None:
    ids = {x: cache.store(Packet({"x": x}), PF.call(Packet({"x": x})), VARIATION, EXECUTION)
           for x in (2, 3)}  # fmt: skip
    wanted = pa.array([_hash(x) for x in (2, 3, 4)], pa.large_string())
    answers = lookup(cache, wanted, match_constraints(CacheMatch.CODE, PF.code_hash, {}))
    assert answers.hit.tolist() == [True, False, False]
    assert answers.filtered.tolist() == [False, True, False]
    assert answers.miss.tolist() == [False, False, True]
    assert answers.record_ids.to_pylist() == [ids[2], None, None]


def test_the_newest_result_answers_and_other_code_is_not_matched(cache: ResultCache) -> None:
    packet = Packet({"x": 8})
    cache.store(packet, Packet({"h": 1}), VARIATION, EXECUTION)
    newest = cache.store(packet, Packet({"h": 4}), VARIATION, EXECUTION)
    wanted = pa.array([_hash(8)], pa.large_string())
    same_code = match_constraints(CacheMatch.CODE, PF.code_hash, {})
    assert lookup(cache, wanted, same_code).record_ids.to_pylist() == [newest]
    other_code = match_constraints(CacheMatch.CODE, "another code hash", {})
    assert lookup(cache, wanted, other_code).miss.tolist() == [True]


def test_an_empty_batch_and_an_empty_store_are_all_misses(cache: ResultCache) -> None:
    empty = pa.array([], pa.large_string())
    assert len(lookup(cache, empty, {}).record_ids) == 0
    answers = lookup(cache, pa.array([_hash(1)], pa.large_string()), {})
    assert answers.miss.tolist() == [True]
