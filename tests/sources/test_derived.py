import pytest

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.functions import function_pod
from orcapod.nodes import FunctionNode, SourceNode
from orcapod.sources import DerivedSource, DictSource
from orcapod.types import ColumnConfig

ROWS = [
    {"subject": "s1", "weight": 70.0, "height": 1.75},
    {"subject": "s2", "weight": 82.5, "height": 1.80},
    {"subject": "s3", "weight": 50.0, "height": 1.60},
]


@pytest.fixture(params=["memory", "delta"])
def database(request, tmp_path):
    if request.param == "memory":
        return InMemoryArrowDatabase()
    return DeltaTableDatabase(tmp_path / "store")


@pytest.fixture
def counted():
    calls: list[float] = []

    @function_pod("bmi")
    def bmi(weight: float, height: float) -> float:
        calls.append(weight)
        return round(weight / height**2, 3)

    return bmi, calls


@pytest.fixture
def node(counted, database):
    bmi, _ = counted
    source = DictSource(ROWS, tag_columns=["subject"], source_id="patients")
    return FunctionNode(bmi.pod, SourceNode(source), pipeline_database=database)


def test_reads_the_nodes_stored_results_without_computing(node, counted):
    _, calls = counted
    node.run()
    assert len(calls) == 3
    derived = node.as_source()
    assert isinstance(derived, DerivedSource)
    table = derived.as_table().sort_by("subject")
    assert table.to_pylist() == node.as_table().sort_by("subject").to_pylist()
    assert table.column_names == ["subject", "bmi"]
    assert len(calls) == 3  # reading is a query, never a recomputation


def test_before_the_origin_ran_it_is_empty_with_the_origins_schema(node, counted):
    _, calls = counted
    derived = DerivedSource(node)
    assert derived.as_table().num_rows == 0
    assert derived.output_schema() == node.output_schema()
    assert calls == []


def test_has_its_own_identity_from_the_origins_content_hash(node):
    node.run()
    derived = node.as_source()
    assert derived.content_hash() != node.content_hash()
    assert derived.content_hash() == DerivedSource(node).content_hash()
    assert derived.source_id == f"derived:{node.content_hash().to_hex(16)}"
    named = DerivedSource(node, source_id="bmis")
    assert named.source_id == "bmis"
    assert named.content_hash() != derived.content_hash()
    assert derived.pipeline_hash() != node.pipeline_hash()  # a root: schema only
    other_rows = DictSource(ROWS[:2], tag_columns=["subject"], source_id="patients")
    other = FunctionNode(node.function_pod, SourceNode(other_rows))
    assert DerivedSource(other).content_hash() != derived.content_hash()


def test_keeps_stored_provenance(node):
    node.run()
    table = node.as_source().as_table(ColumnConfig(source=True, system_tags=True))
    system = [c for c in table.column_names if c.startswith("_tag_")]
    assert len(system) == 2
    assert all(
        v.startswith("patients") or v.startswith("row_")
        for c in system
        for v in table.column(c).to_pylist()
    )
    assert table.column("_source_bmi").null_count == 0
    assert "_source_weight" not in table.column_names  # input provenance stays in records
    assert not [c for c in table.column_names if c.startswith("__")]


def test_feeds_another_function_node(node):
    node.run()

    @function_pod("heavy")
    def heavy(bmi: float) -> bool:
        return bmi > 25

    downstream = FunctionNode(heavy.pod, SourceNode(node.as_source()))
    summary = downstream.run()
    assert summary.computed == 3
    assert sorted(downstream.as_table().column("heavy").to_pylist()) == [False, False, True]


def test_rejects_what_is_not_a_node():
    with pytest.raises(InputValidationError, match="function or operator node"):
        DerivedSource(DictSource(ROWS, tag_columns=["subject"]))
