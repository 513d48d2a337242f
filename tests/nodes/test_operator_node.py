import polars as pl
import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import InputValidationError, PipelineError
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode, OperatorNode, SourceNode
from orcapod.operators import Join, MapPackets, PolarsFilter
from orcapod.sources import DerivedSource, DictSource
from orcapod.types import CacheMode, ColumnConfig
from orcapod.types.columns import NODE_CONTENT_HASH

FULL = ColumnConfig(source=True, system_tags=True)


def _heights(rows=None):
    rows = rows or [
        {"subject": "s1", "height": 1.75},
        {"subject": "s2", "height": 1.80},
        {"subject": "s3", "height": 1.60},
    ]
    return DictSource(rows, tag_columns=["subject"], source_id="heights")


def _weights():
    rows = [
        {"subject": "s1", "weight": 70.0},
        {"subject": "s2", "weight": 82.5},
        {"subject": "s3", "weight": 50.0},
    ]
    return DictSource(rows, tag_columns=["subject"], source_id="weights")


@pytest.fixture(params=["memory", "delta"])
def database(request, tmp_path):
    if request.param == "memory":
        return InMemoryArrowDatabase()
    return DeltaTableDatabase(tmp_path / "store")


class CountingJoin(Join):
    """A real Join that counts how often it computes (to prove REPLAY never does)."""

    computes = 0

    def _compute(self, inputs, tables, layout):
        type(self).computes += 1
        return super()._compute(inputs, tables, layout)


def _stored(database, node):
    table = database.get_all_records(node.record_path)
    return 0 if table is None else table.num_rows


def test_off_computes_the_operator_and_writes_nothing(database):
    heights, weights = _heights(), _weights()
    node = OperatorNode(Join(), [heights, weights], pipeline_database=database)
    summary = node.run()
    expected = Join().static_process(heights, weights)
    assert node.as_table(FULL).equals(expected.as_table(FULL))
    assert summary.total == 3
    assert node.content_hash() == Join()(heights, weights).content_hash()
    assert node.pipeline_hash() == Join()(heights, weights).pipeline_hash()
    assert node.output_schema() == expected.output_schema()
    database.flush()
    assert _stored(database, node) == 0


def test_log_writes_rows_once_however_often_it_runs(database):
    node = OperatorNode(
        Join(), [_heights(), _weights()], pipeline_database=database, cache_mode=CacheMode.LOG
    )
    node.run()
    node.run()
    node.flush()
    assert _stored(database, node) == 3
    again = OperatorNode(
        Join(), [_heights(), _weights()], pipeline_database=database, cache_mode=CacheMode.LOG
    )
    again.run()
    again.flush()
    assert _stored(database, again) == 3
    stored = database.get_all_records(node.record_path)
    assert set(stored.column(NODE_CONTENT_HASH).to_pylist()) == {node.content_hash().to_string()}


def test_replay_serves_logged_rows_without_computing(database):
    CountingJoin.computes = 0
    heights, weights = _heights(), _weights()
    logger = OperatorNode(
        CountingJoin(), [heights, weights], pipeline_database=database, cache_mode=CacheMode.LOG
    )
    logger.run()
    logger.flush()
    assert CountingJoin.computes == 1
    replay = OperatorNode(
        CountingJoin(), [heights, weights], pipeline_database=database, cache_mode=CacheMode.REPLAY
    )
    summary = replay.run()
    assert CountingJoin.computes == 1
    assert (summary.computed, summary.reused) == (0, 3)
    got = replay.as_table(FULL).sort_by("subject")
    want = logger.as_table(FULL).sort_by("subject")
    assert got.to_pylist() == want.to_pylist()
    assert replay.output_schema() == logger.output_schema()


def test_replay_with_nothing_stored_is_empty_with_the_predicted_schema():
    node = OperatorNode(
        Join(),
        [_heights(), _weights()],
        pipeline_database=InMemoryArrowDatabase(),
        cache_mode=CacheMode.REPLAY,
    )
    assert node.run().total == 0
    table = node.as_table()
    assert table.num_rows == 0
    assert table.column_names == Join()(_heights(), _weights()).as_table().column_names
    assert set(table.column_names) == {"subject", "height", "weight"}


def test_logged_rows_of_other_inputs_are_not_replayed():
    database = InMemoryArrowDatabase()
    OperatorNode(
        Join(), [_heights(), _weights()], pipeline_database=database, cache_mode=CacheMode.LOG
    ).run()
    fewer = _heights([{"subject": "s1", "height": 1.75}])
    replay = OperatorNode(
        Join(), [fewer, _weights()], pipeline_database=database, cache_mode=CacheMode.REPLAY
    )
    assert replay.as_table().num_rows == 0  # a different node content hash


def test_cache_modes_other_than_off_need_a_database():
    with pytest.raises(PipelineError, match="needs a pipeline_database"):
        OperatorNode(Join(), [_heights(), _weights()], cache_mode=CacheMode.LOG)
    node = OperatorNode(Join(), [_heights(), _weights()])
    with pytest.raises(PipelineError, match="needs a pipeline_database"):
        node.cache_mode = CacheMode.REPLAY
    with pytest.raises(PipelineError, match="no pipeline_database"):
        node.get_all_records()


def test_bad_inputs_fail_at_construction():
    with pytest.raises(InputValidationError):
        OperatorNode(MapPackets({"nope": "x"}), [_heights()])
    with pytest.raises(InputValidationError, match="operator"):
        OperatorNode("join", [_heights()])  # type: ignore[arg-type]


def test_polars_expression_filter_runs_as_a_node():
    node = OperatorNode(PolarsFilter(pl.col("height") > 1.7), [_heights()])
    node.run()
    assert node.as_table().column("subject").to_pylist() == ["s1", "s2"]


def test_label_defaults_to_the_operator_class():
    node = OperatorNode(Join(), [_heights(), _weights()])
    assert node.label == "Join"
    node.label = "joined"
    assert node.label == "joined"


def test_reading_below_a_function_node_follows_its_runs():
    calls = []

    @function_pod("bmi")
    def bmi(height: float) -> float:
        calls.append(height)
        return 70.0 / height**2

    fn = FunctionNode(bmi.pod, SourceNode(_heights()), pipeline_database=InMemoryArrowDatabase())
    below = OperatorNode(MapPackets({"bmi": "index"}), [fn])
    assert below.as_table().num_rows == 0  # nothing stored yet; reading never computes
    fn.run()
    assert below.as_table().num_rows == 3  # not a stale cached result
    assert len(calls) == 3
    assert below.as_table().column_names == ["subject", "index"]


def test_provenance_survives_the_node():
    heights, weights = _heights(), _weights()
    node = OperatorNode(Join(), [heights, weights])
    table = node.as_table(FULL).sort_by("subject")
    assert table.column("_source_height").to_pylist() == [
        f"heights::row_{i}::height" for i in range(3)
    ]
    assert table.column("_source_weight").to_pylist() == [
        f"weights::row_{i}::weight" for i in range(3)
    ]


def test_logged_rows_read_back_and_as_source(database):
    node = OperatorNode(
        Join(), [_heights(), _weights()], pipeline_database=database, cache_mode=CacheMode.LOG
    )
    assert node.get_all_records() is None
    node.run()
    node.flush()
    records = node.get_all_records().sort_by("subject")
    assert records.to_pylist() == node.as_table().sort_by("subject").to_pylist()
    derived = node.as_source()
    assert isinstance(derived, DerivedSource)
    assert derived.as_table().sort_by("subject").to_pylist() == records.to_pylist()


def test_a_cache_mode_is_a_member_or_its_name_and_anything_else_lists_the_modes():
    node = OperatorNode(Join(), [_heights(), _weights()], pipeline_database=InMemoryArrowDatabase())
    node.cache_mode = "log"
    assert node.cache_mode is CacheMode.LOG
    with pytest.raises(InputValidationError, match="cache_mode.*'off'.*'log'.*'replay'"):
        node.cache_mode = "bogus"
    assert node.cache_mode is CacheMode.LOG
