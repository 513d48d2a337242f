"""FunctionNode: entry ids, pipeline records, incremental runs, failures, read-only views.

User functions count their calls in a file (``Probe``) — a closure over a path string, so the
function's code hash does not change between runs — and fail for the values listed in another
file, so a test can "fix" a failing input without editing the function.
"""

from __future__ import annotations

import decimal
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from orcapod.data import Packet, Tag
from orcapod.databases import ArrowDatabase, DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import ExecutionError, FailedRowsWarning, InputValidationError
from orcapod.executors import LocalExecutor, RayExecutor
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.functions.engine import write as run_writer
from orcapod.functions.engine.identify import entry_ids
from orcapod.hashing import hash_rows
from orcapod.nodes import FunctionNode, NodeRunSummary, NodeType, node_store, records
from orcapod.sources import ArrowTableSource, DictSource
from orcapod.types import ColumnConfig, ErrorPolicy, FlushPolicy, WorkClaims
from orcapod.types.columns import COMPUTED, INPUT_PACKET_HASH, PACKET_ID, PIPELINE_ENTRY_ID

# -- helpers ----------------------------------------------------------------------------------


class Probe:
    """Call log and failure switch of a user function, both real files."""

    def __init__(self, root: Path) -> None:
        self.log = root / "calls.log"
        self.fail = root / "fail.txt"
        self.log.touch()

    def calls(self) -> list[int]:
        return [int(v) for v in self.log.read_text().split()]

    def reset(self) -> None:
        self.log.write_text("")

    def fail_on(self, *values: int) -> None:
        self.fail.write_text(" ".join(str(v) for v in values))


def make_double(probe: Probe) -> Callable[[int], int | None]:
    log, fail = str(probe.log), str(probe.fail)

    def double(x: int) -> int | None:
        with open(log, "a") as f:
            f.write(f"{x}\n")
        if os.path.exists(fail):
            with open(fail) as f:
                if str(x) in f.read().split():
                    raise ValueError(f"cannot double {x}")
        if x < 0:
            return None
        return 2 * x

    return double


def double_pod(probe: Probe) -> FunctionPod:
    return FunctionPod(PythonPacketFunction(make_double(probe), "doubled"))


def source(
    ids: list[int], xs: list[int] | None = None, source_id: str = "src", **extra: list[Any]
) -> DictSource:
    xs = ids if xs is None else xs
    rows = [
        {"id": i, "x": x, **{k: v[n] for k, v in extra.items()}}
        for n, (i, x) in enumerate(zip(ids, xs, strict=True))
    ]
    return DictSource(rows, tag_columns=["id"], source_id=source_id, record_id_column="id")


def all_entry_ids(node: FunctionNode) -> list[str]:
    plan = node._input.plan()
    return list(plan.entry_ids(np.arange(plan.num_rows)).to_pylist())


def tags_and_outputs(node: FunctionNode) -> list[tuple[int, int]]:
    return [(t["id"], p["doubled"]) for t, p in node.iter_packets()]


@pytest.fixture
def probe(tmp_path: Path) -> Probe:
    return Probe(tmp_path)


@pytest.fixture(params=["memory", "delta"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    if request.param == "memory":
        return InMemoryArrowDatabase()
    return DeltaTableDatabase(tmp_path / "store")


# -- identity ---------------------------------------------------------------------------------


def test_vectorised_entry_ids_equal_the_one_row_form(probe: Probe) -> None:
    import datetime as dt

    rows = [
        {"subject": "s1", "session": 1, "day": dt.date(2024, 1, 1), "x": 1},
        {"subject": "s1", "session": 2, "day": dt.date(2024, 1, 2), "x": 2},
        {"subject": "s2", "session": 1, "day": dt.date(2024, 1, 3), "x": 1},
    ]
    src = DictSource(rows, tag_columns=["subject", "session", "day"], source_id="subjects")
    node = FunctionNode(double_pod(probe), src, InMemoryArrowDatabase())
    table = src.as_table(ColumnConfig(system_tags=True, source=True))
    tag_keys, packet_keys = src.keys(ColumnConfig(system_tags=True))
    vectorised = entry_ids(table, tag_keys, hash_rows(table.select(list(packet_keys))))
    one_by_one = [node.compute_pipeline_entry_id(tag, packet) for tag, packet in src]
    assert vectorised.to_pylist() == one_by_one
    assert all_entry_ids(node) == one_by_one  # what the node itself computes
    assert len(set(one_by_one)) == 3


def test_entry_id_depends_on_tag_system_tags_and_packet(probe: Probe) -> None:
    node = FunctionNode(double_pod(probe), source([1]), InMemoryArrowDatabase())
    ((tag, packet),) = source([1]).iter_packets()
    base = node.compute_pipeline_entry_id(tag, packet)
    assert node.compute_pipeline_entry_id(tag, packet) == base
    assert node.compute_pipeline_entry_id(tag.update(id=2), packet) != base
    assert node.compute_pipeline_entry_id(tag, packet.update(x=5)) != base
    other_system = tag.with_system_tags(**{k: "elsewhere" for k in tag.system_tags()})
    assert node.compute_pipeline_entry_id(other_system, packet) != base


def test_identical_user_tags_from_different_sources_are_different_entries(
    probe: Probe, db: ArrowDatabase
) -> None:
    a = FunctionNode(double_pod(probe), source([1, 2], source_id="a"), db)
    b = FunctionNode(double_pod(probe), source([1, 2], source_id="b"), db)
    ids_a = set(all_entry_ids(a))
    ids_b = set(all_entry_ids(b))
    assert ids_a.isdisjoint(ids_b)
    assert a.record_path == b.record_path  # same structure: one table
    a.run()
    assert b.run() == NodeRunSummary("double", computed=0, reused=2)  # result-cache hits
    records = db.get_all_records(a.record_path, record_id_column=PIPELINE_ENTRY_ID)
    assert records is not None and records.num_rows == 4


def test_adding_rows_leaves_old_entry_ids_untouched(probe: Probe) -> None:
    small = FunctionNode(double_pod(probe), source([1, 2, 3]), InMemoryArrowDatabase())
    large = FunctionNode(double_pod(probe), source([1, 2, 3, 4, 5]), InMemoryArrowDatabase())
    assert all_entry_ids(large)[:3] == all_entry_ids(small)


def test_node_identity(probe: Probe) -> None:
    pod = double_pod(probe)
    node = FunctionNode(pod, source([1, 2]), InMemoryArrowDatabase(), label="dbl")
    same_shape = FunctionNode(pod, source([7, 8, 9]), InMemoryArrowDatabase())
    assert node.label == "dbl" and same_shape.label == "double"
    assert node.node_type is NodeType.FUNCTION
    assert node.pipeline_hash() == same_shape.pipeline_hash()
    assert node.content_hash() != same_shape.content_hash()
    assert node.upstreams[0].source_id == "src"
    assert node.output_schema() == ({"id": int}, {"doubled": int})  # `-> int | None` filters


# -- records and results ----------------------------------------------------------------------


def test_same_packet_under_n_tags_is_one_result_and_n_records(
    probe: Probe, db: ArrowDatabase
) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2, 3], xs=[5, 5, 5]), db)
    summary = node.run()
    assert probe.calls() == [5]
    assert summary == NodeRunSummary("double", computed=3)
    results = node.result_cache.get_all_records(include_system_columns=True)
    assert results is not None and results.num_rows == 1
    records = db.get_all_records(node.record_path, record_id_column=PIPELINE_ENTRY_ID)
    assert records is not None and records.num_rows == 3
    assert set(records.column(PACKET_ID).to_pylist()) == set(results.column(PACKET_ID).to_pylist())
    assert tags_and_outputs(node) == [(1, 10), (2, 10), (3, 10)]


def test_records_hold_source_columns_and_no_input_data(probe: Probe, db: ArrowDatabase) -> None:
    src = source([1, 2], note=["a", "b"])  # an extra packet column the function ignores
    node = FunctionNode(double_pod(probe), src, db)
    node.run()
    records = db.get_all_records(node.record_path, record_id_column=PIPELINE_ENTRY_ID)
    assert records is not None
    names = set(records.column_names)
    assert {"_source_x", PACKET_ID, INPUT_PACKET_HASH, COMPUTED} <= names
    assert "_source_note" not in names  # provenance of what the function read, only
    assert "id" in names and any(n.startswith("_tag_source_id") for n in names)
    assert "x" not in names and "note" not in names and "doubled" not in names
    by_id = {r["id"]: r for r in records.to_pylist()}
    assert by_id[1]["_source_x"] == "src::id=1::x"
    assert by_id[1][COMPUTED] is True


def test_changing_or_adding_a_column_the_function_does_not_read_recomputes_nothing(
    probe: Probe, db: ArrowDatabase
) -> None:
    first = FunctionNode(double_pod(probe), source([1, 2], note=["a", "b"]), db)
    assert first.run().computed == 2
    changed = FunctionNode(double_pod(probe), source([1, 2], note=["c", "d"]), db)
    assert changed.run().computed == 0
    wider = FunctionNode(double_pod(probe), source([1, 2], note=["a", "b"], more=[7, 8]), db)
    summary = wider.run()
    assert summary.computed == 0 and summary.reused == 2
    assert tags_and_outputs(wider) == tags_and_outputs(first)
    # the stored key is the hash of what the function read
    (record,) = [r for r in first.get_all_records(all_info=True).to_pylist() if r["id"] == 1]
    assert record[INPUT_PACKET_HASH] == Packet({"x": 1}).content_hash().to_string()


def test_known_packet_under_a_new_tag_is_a_cache_hit(probe: Probe, db: ArrowDatabase) -> None:
    FunctionNode(double_pod(probe), source([1], xs=[4]), db).run()
    probe.reset()
    node = FunctionNode(double_pod(probe), source([1, 2], xs=[4, 4]), db)
    summary = node.run()
    assert probe.calls() == []  # phase 2 ran for id=2 but hit the result cache
    assert summary == NodeRunSummary("double", computed=0, reused=2)
    records = {
        r["id"]: r
        for r in db.get_all_records(node.record_path).to_pylist()  # type: ignore[union-attr]
    }
    assert records[1][COMPUTED] is True and records[2][COMPUTED] is False
    assert records[1][PACKET_ID] == records[2][PACKET_ID]
    assert tags_and_outputs(node) == [(1, 8), (2, 8)]


def test_phase_one_skips_recorded_entries_of_an_earlier_node(
    probe: Probe, db: ArrowDatabase
) -> None:
    first = FunctionNode(double_pod(probe), source([1, 2, 3]), db)
    first.run()
    probe.reset()
    again = FunctionNode(double_pod(probe), source([1, 2, 3]), db)
    assert tags_and_outputs(again) == [(1, 2), (2, 4), (3, 6)]  # recorded before any run
    assert again.run() == NodeRunSummary("double", reused=3)
    assert probe.calls() == []


# -- incremental runs -------------------------------------------------------------------------


def test_rerun_computes_nothing(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source(list(range(20))), db)
    assert node.run() == NodeRunSummary("double", computed=20)
    assert node.run() == NodeRunSummary("double", reused=20)
    assert sorted(probe.calls()) == list(range(20))


def test_adding_rows_computes_only_the_new_ones(probe: Probe, db: ArrowDatabase) -> None:
    FunctionNode(double_pod(probe), source(list(range(10))), db).run()
    probe.reset()
    grown = FunctionNode(double_pod(probe), source(list(range(13))), db)
    assert grown.run() == NodeRunSummary("double", computed=3, reused=10)
    assert sorted(probe.calls()) == [10, 11, 12]
    assert tags_and_outputs(grown) == [(i, 2 * i) for i in range(13)]


def test_a_semantic_edit_of_the_function_recomputes(probe: Probe, db: ArrowDatabase) -> None:
    def scale(x: int) -> int:
        return 2 * x

    def scale_v2(x: int) -> int:
        return 3 * x

    src = source([1, 2])
    old = FunctionNode(FunctionPod(PythonPacketFunction(scale, "y")), src, db)
    old.run()
    edited = PythonPacketFunction(scale_v2, "y", function_name="scale")
    new = FunctionNode(FunctionPod(edited), src, db)
    assert new.pipeline_hash() == old.pipeline_hash()
    assert list(new.iter_packets()) == []  # old code's records are not this code's
    assert new.run() == NodeRunSummary("scale", computed=2)
    assert [p["y"] for _, p in new.iter_packets()] == [3, 6]
    assert [p["y"] for _, p in old.iter_packets()] == [2, 4]


# -- reading ----------------------------------------------------------------------------------


def test_iter_packets_reads_and_never_computes(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source([3, 1, 2]), db)
    assert list(node.iter_packets()) == []
    assert node.as_table().num_rows == 0
    assert node.as_table().column_names == ["id", "doubled"]
    assert probe.calls() == []
    node.run()
    assert tags_and_outputs(node) == [(3, 6), (1, 2), (2, 4)]  # input order
    table = node.as_table(all_info=True)
    assert table.column("__computed").to_pylist() == [True] * 3
    assert all(s.startswith("double:") for s in table.column("_source_doubled").to_pylist())


def test_views_show_only_the_current_inputs_rows(probe: Probe, db: ArrowDatabase) -> None:
    a = FunctionNode(double_pod(probe), source([1, 2, 3], source_id="a"), db)
    a.run()
    b = FunctionNode(double_pod(probe), source([2, 9], source_id="b"), db)
    assert a.record_path == b.record_path
    assert list(b.iter_packets()) == []
    b.run()
    assert tags_and_outputs(b) == [(2, 4), (9, 18)]
    assert tags_and_outputs(a) == [(1, 2), (2, 4), (3, 6)]
    all_b = b.get_all_records()
    assert all_b is not None and all_b.to_pylist() == [
        {"id": 2, "doubled": 4},
        {"id": 9, "doubled": 18},
    ]


def test_get_all_records_joins_records_and_results(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2]), db)
    assert node.get_all_records() is None
    node.run()
    full = node.get_all_records(all_info=True)
    assert full is not None
    names = full.column_names
    assert names[0] == "id"
    assert names.index("_source_x") < names.index(PACKET_ID) < names.index("doubled")
    assert names.index("doubled") < names.index("_source_doubled")
    assert full.column("doubled").to_pylist() == [2, 4]
    only_meta = node.get_all_records(columns={"meta": True})
    assert only_meta is not None and PACKET_ID in only_meta.column_names
    assert "_source_x" not in only_meta.column_names


def test_as_source_reads_stored_results(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2]), db)
    node.run()
    derived = node.as_source()
    assert derived.as_table().to_pylist() == [{"id": 1, "doubled": 2}, {"id": 2, "doubled": 4}]
    assert probe.calls() == [1, 2]


# -- filtered rows and failures ---------------------------------------------------------------


def test_none_results_are_recorded_and_not_recomputed(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2, 3], xs=[1, -1, 3]), db)
    assert node.run() == NodeRunSummary("double", computed=2, filtered=1)
    assert tags_and_outputs(node) == [(1, 2), (3, 6)]
    probe.reset()
    assert node.run() == NodeRunSummary("double", reused=2, filtered=1)
    tagged_again = FunctionNode(double_pod(probe), source([7], xs=[-1]), db)
    assert tagged_again.run() == NodeRunSummary("double", filtered=1)  # a FILTERED cache hit
    assert probe.calls() == []


def test_failures_are_recorded_warned_once_and_retried(probe: Probe, db: ArrowDatabase) -> None:
    probe.fail_on(2, 4)
    node = FunctionNode(double_pod(probe), source([1, 2, 3, 4]), db)
    with pytest.warns(FailedRowsWarning, match=r"2 of 4 rows .*node.failures\(\)") as caught:
        summary = node.run()
    assert len(caught) == 1
    assert summary == NodeRunSummary("double", computed=2, failed=2)
    assert not summary.ok
    failures = node.failures()
    assert failures.column("id").to_pylist() == [2, 4] or sorted(
        failures.column("id").to_pylist()
    ) == [2, 4]
    row = {r["id"]: r for r in failures.to_pylist()}[2]
    assert row["__error_type"] == "builtins.ValueError"
    assert row["__error_message"] == "cannot double 2"
    assert "ValueError: cannot double 2" in row["__traceback"]
    assert row["__failed_at"] is not None and row[INPUT_PACKET_HASH].startswith("arrow_row_v1:")
    assert tags_and_outputs(node) == [(1, 2), (3, 6)]
    probe.reset()
    probe.fail_on(4)
    with pytest.warns(FailedRowsWarning, match="1 of 4 rows"):
        assert node.run() == NodeRunSummary("double", computed=1, reused=2, failed=1)
    assert probe.calls() == [2, 4]  # only the failed rows are retried
    assert node.failures().column("id").to_pylist() == [4]
    probe.fail_on()
    assert node.run() == NodeRunSummary("double", computed=1, reused=3)
    assert node.failures().num_rows == 0
    assert tags_and_outputs(node) == [(1, 2), (2, 4), (3, 6), (4, 8)]


def test_fail_fast_raises_with_the_tag_and_keeps_finished_work(
    probe: Probe, db: ArrowDatabase
) -> None:
    probe.fail_on(3)
    node = FunctionNode(
        double_pod(probe), source([1, 2, 3, 4]), db, error_policy=ErrorPolicy.FAIL_FAST
    )
    with pytest.raises(ExecutionError, match=r"\{'id': 3\}.*cannot double 3") as info:
        node.run()
    assert isinstance(info.value.__cause__, ValueError)
    assert probe.calls() == [1, 2, 3]
    assert tags_and_outputs(node) == [(1, 2), (2, 4)]
    assert node.failures().column("id").to_pylist() == [3]
    probe.reset()
    probe.fail_on()
    assert node.run() == NodeRunSummary("double", computed=2, reused=2)
    assert probe.calls() == [3, 4]


def test_error_policy_set_as_its_documented_string_takes_effect(
    probe: Probe, db: ArrowDatabase
) -> None:
    probe.fail_on(2)
    node = FunctionNode(double_pod(probe), source([1, 2, 3]), db)
    node.error_policy = "fail_fast"  # type: ignore[assignment]
    assert node.error_policy is ErrorPolicy.FAIL_FAST
    with pytest.raises(ExecutionError, match="cannot double 2"):
        node.run()
    node.error_policy = ErrorPolicy.CONTINUE
    with pytest.warns(FailedRowsWarning, match="1 of 3 rows"):
        assert node.run() == NodeRunSummary("double", computed=1, reused=1, failed=1)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("error_policy", "ignore", r"error_policy must be one of 'fail_fast', 'continue'"),
        ("error_policy", None, r"error_policy must be one of 'fail_fast', 'continue'"),
        ("work_claims", "yes", r"work_claims must be a WorkClaims, .* or None"),
        ("chunk_rows", "10", r"chunk_rows must be a positive integer"),
        ("chunk_rows", 0, r"chunk_rows must be a positive integer"),
        ("chunk_rows", True, r"chunk_rows must be a positive integer"),
        ("flush_policy", 5, r"flush_policy must be a FlushPolicy"),
    ],
)
def test_a_wrong_node_setting_is_refused_when_assigned_and_the_old_one_kept(
    probe: Probe, setting: str, value: Any, message: str
) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2]), InMemoryArrowDatabase())
    before = getattr(node, setting)
    with pytest.raises(InputValidationError, match=rf"node 'double': {message}"):
        setattr(node, setting, value)
    assert getattr(node, setting) == before
    assert node.run() == NodeRunSummary("double", computed=2)


def test_node_settings_accept_their_documented_values(probe: Probe) -> None:
    node = FunctionNode(double_pod(probe), source([1, 2, 3]), InMemoryArrowDatabase())
    node.work_claims = None
    node.chunk_rows = 2
    node.flush_policy = FlushPolicy(rows=1)
    assert node.run() == NodeRunSummary("double", computed=3)
    node.work_claims = WorkClaims(lease_seconds=5.0)
    assert node.work_claims == WorkClaims(lease_seconds=5.0)
    with pytest.raises(InputValidationError, match="error_policy must be one of"):
        FunctionNode(double_pod(probe), source([1]), error_policy="bogus")


# -- executors --------------------------------------------------------------------------------


def test_node_executor_is_the_nodes_own(probe: Probe) -> None:
    pod = double_pod(probe)
    node = FunctionNode(pod, source([1, 2]), InMemoryArrowDatabase())
    node.executor = LocalExecutor(max_workers=2)
    assert node.executor == LocalExecutor(max_workers=2)
    assert pod.executor is None and pod.packet_function.executor is None
    with pytest.raises(Exception, match="not an executor"):
        node.executor = "fast"  # type: ignore[assignment]
    assert node.run(max_concurrency=2) == NodeRunSummary("double", computed=2)
    with pytest.raises(InputValidationError):
        node.run(max_concurrency=0)


def test_threaded_executor_runs_in_a_bounded_window(probe: Probe, db: ArrowDatabase) -> None:
    probe.fail_on(7, 21)
    node = FunctionNode(double_pod(probe), source(list(range(30))), db)
    node.executor = LocalExecutor(max_workers=4)
    with pytest.warns(FailedRowsWarning, match="2 of 30"):
        assert node.run(max_concurrency=4) == NodeRunSummary("double", computed=28, failed=2)
    assert node.failures().column("id").to_pylist() == [7, 21]
    probe.fail_on()
    assert node.run(max_concurrency=4) == NodeRunSummary("double", computed=2, reused=28)
    assert tags_and_outputs(node) == [(i, 2 * i) for i in range(30)]
    fast = FunctionNode(
        double_pod(probe),
        source([1, 2, 3], xs=[101, 102, 103], source_id="f"),
        db,
        error_policy="fail_fast",
    )
    fast.executor = LocalExecutor(max_workers=2)
    probe.fail_on(102)
    with pytest.raises(ExecutionError, match=r"\{'id': 2\}"):
        fast.run()
    assert fast.failures().column("id").to_pylist() == [2]


def test_input_without_the_functions_columns_is_rejected(probe: Probe) -> None:
    src = DictSource([{"id": 1, "y": 2}], tag_columns=["id"])
    with pytest.raises(InputValidationError, match="'x'"):
        FunctionNode(double_pod(probe), src, InMemoryArrowDatabase())


def interval(seconds: float) -> tuple[float, float]:
    start = time.time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:  # busy: occupies a CPU like real work
        pass
    return start, time.time()


@pytest.mark.ray
def test_ray_executor_runs_packets_concurrently_through_run(
    ray_session: ModuleType, tmp_path: Path
) -> None:
    pf = PythonPacketFunction(interval, ["start", "end"])
    src = DictSource([{"id": i, "seconds": 0.6 + i * 1e-3} for i in range(4)], tag_columns=["id"])
    node = FunctionNode(FunctionPod(pf), src, DeltaTableDatabase(tmp_path / "store"))
    node.executor = RayExecutor(num_cpus=1)
    assert node.run() == NodeRunSummary("interval", computed=4)
    spans = [(p["start"], p["end"]) for _, p in node.iter_packets()]
    overlapping = sum(
        1 for i, a in enumerate(spans) for b in spans[i + 1 :] if a[0] < b[1] and b[0] < a[1]
    )
    # 4 tasks on 2 CPUs: one after another, no two would overlap (a busy machine can delay a
    # worker's start, so only one overlapping pair is required)
    assert overlapping >= 1


# -- persistence across processes -------------------------------------------------------------

_SCRIPT = """
import json, os, sys
from orcapod.databases import DeltaTableDatabase
from orcapod.functions import FunctionPod, PythonPacketFunction
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
from orcapod.types import FlushPolicy

LOG = {log!r}

def slow_double(x: int) -> int:
    with open(LOG, "a") as f:
        f.write(f"{{x}}\\n")
    import time; time.sleep({delay})
    return 2 * x

n = int(sys.argv[1])
src = DictSource([{{"id": i, "x": i}} for i in range(n)], tag_columns=["id"],
                 source_id="src", record_id_column="id")
node = FunctionNode(FunctionPod(PythonPacketFunction(slow_double, "y")), src,
                    DeltaTableDatabase({store!r}))
node.flush_policy = FlushPolicy(seconds={flush_seconds})
before = len(node.as_table())
summary = node.run()
print(json.dumps({{"before": before, "computed": summary.computed, "reused": summary.reused,
                  "after": len(node.as_table())}}))
"""


def _script(tmp_path: Path, delay: float, flush_seconds: float) -> Path:
    path = tmp_path / "run_node.py"
    path.write_text(
        textwrap.dedent(
            _SCRIPT.format(
                log=str(tmp_path / "calls.log"),
                store=str(tmp_path / "store"),
                delay=delay,
                flush_seconds=flush_seconds,
            )
        )
    )
    return path


def _run(script: Path, n: int) -> dict[str, int]:
    import json

    done = subprocess.run(
        [sys.executable, str(script), str(n)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, int] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_a_new_process_sees_everything_flushed(tmp_path: Path) -> None:
    script = _script(tmp_path, delay=0, flush_seconds=1.0)
    assert _run(script, 20) == {"before": 0, "computed": 20, "reused": 0, "after": 20}
    assert _run(script, 20) == {"before": 20, "computed": 0, "reused": 20, "after": 20}
    assert _run(script, 25) == {"before": 20, "computed": 5, "reused": 20, "after": 25}
    assert len((tmp_path / "calls.log").read_text().split()) == 25


@pytest.mark.slow
def test_a_killed_run_keeps_the_work_flushed_before_the_kill(tmp_path: Path) -> None:
    script = _script(tmp_path, delay=0.05, flush_seconds=0.2)
    log = tmp_path / "calls.log"
    log.touch()
    proc = subprocess.Popen([sys.executable, str(script), "80"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(log.read_text().split()) < 40 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    started = len(log.read_text().split())
    assert started < 80
    result = _run(script, 80)
    # everything finished more than one flush interval before the kill was kept
    assert result["reused"] >= started - 10
    assert result["computed"] + result["reused"] == 80
    assert result["after"] == 80
    assert len(log.read_text().split()) == started + result["computed"]


def test_tag_and_packet_types_are_preserved(probe: Probe) -> None:
    node = FunctionNode(double_pod(probe), source([1]), InMemoryArrowDatabase())
    node.run()
    ((tag, packet),) = node.flow()
    assert isinstance(tag, Tag) and isinstance(packet, Packet)
    assert tag.as_dict() == {"id": 1} and packet.as_dict() == {"doubled": 2}
    assert packet.get_meta_value(COMPUTED) is True
    assert node.execute() == node.flow()
    tbl = node.as_table(ColumnConfig(system_tags=True))
    assert isinstance(tbl, pa.Table) and any(c.startswith("_tag_") for c in tbl.column_names)
    src = ArrowTableSource(pa.table({"id": [1], "x": [1]}), tag_columns=["id"])
    assert FunctionNode(double_pod(probe), src).run() == NodeRunSummary(
        "double", reused=0, computed=1
    )


def test_large_id_sets_take_the_projected_scan_path(
    probe: Probe, db: ArrowDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lookups of more ids than FILTER_LIMIT read projected columns and match in numpy."""
    monkeypatch.setattr(records, "FILTER_LIMIT", 1)
    other = FunctionNode(double_pod(probe), source([1, 2, 50], source_id="other"), db)
    other.run()
    probe.fail_on(3)
    node = FunctionNode(double_pod(probe), source(list(range(8)), xs=[0, 1, 2, 3, 4, -1, 1, 7]), db)
    with pytest.warns(FailedRowsWarning):
        assert node.run() == NodeRunSummary("double", computed=3, reused=3, filtered=1, failed=1)
    assert tags_and_outputs(node) == [(0, 0), (1, 2), (2, 4), (4, 8), (6, 2), (7, 14)]
    assert node.failures().column("id").to_pylist() == [3]
    full = node.get_all_records()
    assert full is not None and full.column("id").to_pylist() == [0, 1, 2, 4, 6, 7]
    probe.fail_on()
    assert node.run() == NodeRunSummary("double", computed=1, reused=6, filtered=1)
    assert tags_and_outputs(other) == [(1, 2), (2, 4), (50, 100)]


def test_databases_and_paths(probe: Probe, db: ArrowDatabase) -> None:
    node = FunctionNode(double_pod(probe), source([1]), db)
    pf = node.packet_function
    assert node.result_cache.record_path == pf.uri  # shared by every pipeline using it
    assert node.record_path[: len(pf.uri)] == pf.uri
    assert node.record_path[-2] == "schema:" + node.pipeline_hash().to_string()
    assert node.record_path[-1] == "code:" + pf.code_hash
    node.run()
    stored = db.at("_result").get_all_records(pf.uri)
    assert stored is not None and stored.column("doubled").to_pylist() == [2]
    with pytest.raises(InputValidationError, match="ArrowDatabase"):
        FunctionNode(double_pod(probe), source([1]), "not a db")  # type: ignore[arg-type]


def test_views_are_snapshots_until_a_run_or_clear_cache(probe: Probe, db: ArrowDatabase) -> None:
    reader = FunctionNode(double_pod(probe), source([1, 2]), db)
    assert list(reader.iter_packets()) == []
    FunctionNode(double_pod(probe), source([1, 2]), db).run()  # another node stores them
    assert list(reader.iter_packets()) == []
    reader.clear_cache()
    assert tags_and_outputs(reader) == [(1, 2), (2, 4)]


def _stored_results(node: FunctionNode) -> list[dict[str, Any]]:
    table = node.result_cache.get_all_records(include_system_columns=True)
    assert table is not None
    rows = table.drop_columns(["__pod_ts"]).sort_by(PACKET_ID).to_pylist()
    return rows


def test_buffered_outputs_kept_as_values_store_the_same_rows(
    probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run writer keeps only the values of the function's own outputs between flushes;
    the stored results (output values and ``_source_*`` tokens) are those of the packets."""
    xs = [3, -1, 4, 1, 5, -9, 2, 6, 5, 3]
    stored = []
    for compact_rows in (10**9, 3):  # never / every 3 buffered rows
        monkeypatch.setattr(run_writer, "_COMPACT_ROWS", compact_rows)
        node = FunctionNode(
            double_pod(probe), source(list(range(10)), xs=xs), InMemoryArrowDatabase()
        )
        node.run()
        stored.append(_stored_results(node))
    assert stored[0] == stored[1]
    uri = ":".join(node._packet_function.uri)
    computed = [r for r in stored[1] if r["doubled"] is not None]
    assert sorted(r["doubled"] for r in computed) == sorted(2 * x for x in set(xs) if x >= 0)
    for row in computed:
        assert row["_source_doubled"] == f"{uri}::{row[PACKET_ID]}::doubled"
    assert [r["_source_doubled"] for r in stored[1] if r["doubled"] is None] == [None, None]


def test_rows_another_writer_stores_during_a_run_are_stored_once(
    probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run verifies its novel rows absent (one query for entry ids, one result lookup) and
    writes them without re-checking what was committed before; another writer - its own
    DeltaTableDatabase on the same store, as another process - records the same rows between
    the run's lookups and its first write. No result and no record is stored twice."""
    hook: list[Callable[[], Any]] = []
    real_flush = run_writer.RunWriter.flush

    def flush(self: run_writer.RunWriter) -> None:
        while hook:  # the first write waits for the other writer to finish
            hook.pop()()
        real_flush(self)

    monkeypatch.setattr(run_writer.RunWriter, "flush", flush)

    def node(ids: list[int]) -> FunctionNode:
        return FunctionNode(double_pod(probe), source(ids), DeltaTableDatabase(tmp_path / "s"))

    node([1]).run()  # both tables exist: the run below verifies at a real version
    mine, other = node([1, 2, 3, 4]), node([1, 2, 3])
    hook.append(other.run)
    assert mine.run() == NodeRunSummary("double", computed=3, reused=1)
    reader = DeltaTableDatabase(tmp_path / "s")
    records = reader.get_all_records(mine.record_path, PIPELINE_ENTRY_ID)
    assert records is not None and records.num_rows == 4
    assert len(set(records.column(PIPELINE_ENTRY_ID).to_pylist())) == 4
    results = mine.result_cache.get_all_records(include_system_columns=True)
    assert results is not None and results.num_rows == 4
    assert sorted(results.column("doubled").to_pylist()) == [2, 4, 6, 8]
    assert len(set(results.column(PACKET_ID).to_pylist())) == 4
    assert tags_and_outputs(node([1, 2, 3, 4])) == [(1, 2), (2, 4), (3, 6), (4, 8)]


# -- outputs the store cannot hold ---------------------------------------------------------

_UNSTORABLE: dict[str, tuple[Any, Any]] = {
    "int beyond int64": (int, 2**70),
    "lone surrogate": (str, "\ud800"),
    "decimal over 38 digits": (decimal.Decimal, decimal.Decimal("1" * 40)),
    "list holding a huge int": (list[int], [1, 2**70]),
}


@pytest.mark.parametrize("kind", sorted(_UNSTORABLE))
def test_an_output_the_store_cannot_hold_fails_only_its_own_row(
    kind: str, db: ArrowDatabase
) -> None:
    tp, bad = _UNSTORABLE[kind]
    good = {int: 7, str: "ok", decimal.Decimal: decimal.Decimal("1.5"), list[int]: [1, 2]}[tp]
    calls: list[int] = []

    def emit(x: int):  # type: ignore[no-untyped-def]
        calls.append(x)
        return bad if x == 2 else good

    emit.__annotations__["return"] = tp
    pod = FunctionPod(PythonPacketFunction(emit, "out"))
    node = FunctionNode(pod, source([0, 1, 2, 3, 4]), db)
    with pytest.warns(FailedRowsWarning):
        summary = node.run()
    assert (summary.computed, summary.failed) == (4, 1)
    assert [r["id"] for r in node.as_table().to_pylist()] == [0, 1, 3, 4]
    (failure,) = node.failures().to_pylist()
    assert failure["id"] == 2
    assert "'emit'" in failure["__error_message"]
    assert "cannot be stored" in failure["__error_message"]
    calls.clear()
    with pytest.warns(FailedRowsWarning):
        again = FunctionNode(pod, source([0, 1, 2, 3, 4]), db).run()
    assert calls == [2] and (again.reused, again.failed) == (4, 1)  # only the bad row retried


def test_fail_fast_commits_the_storable_rows_before_raising(tmp_path: Path) -> None:
    def emit(x: int) -> int:
        return 2**70 if x == 1 else x

    db = DeltaTableDatabase(tmp_path / "store")
    pod = FunctionPod(PythonPacketFunction(emit, "out"))
    node = FunctionNode(pod, source([0, 1, 2]), db, error_policy=ErrorPolicy.FAIL_FAST)
    with pytest.raises(ExecutionError, match="cannot be stored"):
        node.run()
    fresh = FunctionNode(pod, source([0, 1, 2]), DeltaTableDatabase(tmp_path / "store"))
    assert [r["id"] for r in fresh.as_table().to_pylist()] == [0, 2]


@pytest.mark.parametrize("scan", [False, True], ids=["filtered_query", "projected_scan"])
def test_records_whose_results_are_gone_are_recomputed_not_reported_as_reused(
    probe: Probe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scan: bool
) -> None:
    if scan:  # many ids: the existence check scans the result ids and matches their hashes
        monkeypatch.setattr(node_store, "FILTER_LIMIT", 1)
    records = tmp_path / "records"
    # results kept in memory by an earlier process: the records outlive them
    first = FunctionNode(double_pod(probe), source([1, 2, 3]), DeltaTableDatabase(records))
    first.attach_databases(DeltaTableDatabase(records), InMemoryArrowDatabase())
    assert first.run().computed == 3
    node = FunctionNode(double_pod(probe), source([1, 2, 3]), DeltaTableDatabase(records))
    node.attach_databases(DeltaTableDatabase(records), InMemoryArrowDatabase())
    summary = node.run()
    assert (summary.computed, summary.reused) == (3, 0)
    assert tags_and_outputs(node) == [(1, 2), (2, 4), (3, 6)]
    # results deleted from a persistent store: the same
    results = tmp_path / "results"
    kept = FunctionNode(double_pod(probe), source([1, 2]), DeltaTableDatabase(tmp_path / "p"))
    kept.attach_databases(DeltaTableDatabase(tmp_path / "p"), DeltaTableDatabase(results))
    assert kept.run().computed == 2
    shutil.rmtree(results)
    again = FunctionNode(double_pod(probe), source([1, 2]), DeltaTableDatabase(tmp_path / "p"))
    again.attach_databases(DeltaTableDatabase(tmp_path / "p"), DeltaTableDatabase(results))
    assert again.run().computed == 2
    assert tags_and_outputs(again) == [(1, 2), (2, 4)]
    # and results that do exist are found: the next run reuses every row
    last = FunctionNode(double_pod(probe), source([1, 2]), DeltaTableDatabase(tmp_path / "p"))
    last.attach_databases(DeltaTableDatabase(tmp_path / "p"), DeltaTableDatabase(results))
    assert (last.run().computed, last.run().reused) == (0, 2)


def test_results_recomputed_for_records_whose_results_are_gone_keep_one_record_per_row(
    probe: Probe, tmp_path: Path
) -> None:
    store = tmp_path / "p"

    def node(results: ArrowDatabase, executor: Any = None) -> FunctionNode:
        made = FunctionNode(double_pod(probe), source([1, 2, 3]), DeltaTableDatabase(store))
        made.attach_databases(DeltaTableDatabase(store), results)
        if executor is not None:
            made.executor = executor
        return made

    assert node(InMemoryArrowDatabase()).run().computed == 3
    # results gone, and another executor (other execution data, so other result ids)
    results = InMemoryArrowDatabase()
    again = node(results, LocalExecutor(max_workers=2))
    assert again.run().computed == 3
    assert tags_and_outputs(again) == [(1, 2), (2, 4), (3, 6)]
    recorded = DeltaTableDatabase(store).get_all_records(again.record_path, "entry")
    assert recorded is not None and recorded.num_rows == 3  # never a second record per row
    # stored under the ids the records point at: the next run reuses them
    summary = node(results, LocalExecutor(max_workers=2)).run()
    assert (summary.computed, summary.reused) == (0, 3)
