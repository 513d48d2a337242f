"""``node.lineage(tag)``: the upstream path of one output row through every kind of operator,
from the node graph and from the store alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.maintenance import compact_store
from orcapod.errors import FailedRowsWarning, InputValidationError
from orcapod.functions import function_pod
from orcapod.nodes.store_lineage import decode_segment, lineage_from_store
from orcapod.pipeline import Pipeline, StoreView
from orcapod.sources import DictSource


@function_pod("bmi")
def bmi(weight: float, height: float) -> float:
    return round(weight / height**2, 2)


@function_pod("score")
def score(bmi: float) -> float:
    return bmi * 2


@function_pod("total")
def total(score: list[float]) -> float:
    return sum(score)


@function_pod("mass")
def mass(kg: float) -> float:
    return kg * 1000


def _subjects() -> DictSource:
    rows = [{"subject": s, "height": h} for s, h in (("ada", 1.68), ("bob", 1.82), ("cyd", 1.75))]
    return DictSource(
        rows, tag_columns=["subject"], source_id="subjects", record_id_column="subject"
    )


def _visits() -> DictSource:
    rows = [
        {"subject": "ada", "visit": 1, "weight": 61.0},
        {"subject": "ada", "visit": 2, "weight": 62.5},
        {"subject": "bob", "visit": 1, "weight": 91.0},
        {"subject": "cyd", "visit": 1, "weight": 70.2},
    ]
    return DictSource(rows, tag_columns=["subject", "visit"], source_id="visits")


def _run(tmp_path: Path, build) -> Pipeline:
    pipeline = Pipeline("study", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        build()
    pipeline.run()
    return pipeline


def _sources(lineage) -> set[tuple[str, str, str | None]]:
    return {(r.source_id, r.record_id, r.column) for r in lineage.sources}


def test_join_then_two_functions(tmp_path: Path) -> None:
    pipeline = _run(tmp_path, lambda: score.pod(bmi.pod(_subjects().join(_visits()))))
    lineage = pipeline.score.lineage({"subject": "bob", "visit": 1})
    assert [(f.function, f.depth) for f in lineage.functions] == [("score", 0), ("bmi", 1)]
    assert lineage.functions[0].outputs == {"score": str(round(91.0 / 1.82**2, 2) * 2)}
    assert [op.node for op in lineage.operators] == ["Join"]
    visits_row = {r.record_id for r in lineage.sources if r.source_id == "visits"}
    assert len(visits_row) == 1
    assert ("subjects", "subject=bob", "height") in _sources(lineage)
    step = lineage.functions[1]
    assert step.code_hash == pipeline.bmi.packet_function.code_hash
    assert step.executor == "local" and step.computed_at


def test_semi_join_keeps_the_left_rows_provenance(tmp_path: Path) -> None:
    wanted = DictSource(
        [{"subject": "ada", "note": "keep"}], tag_columns=["subject"], source_id="wanted"
    )
    pipeline = _run(tmp_path, lambda: bmi.pod(_visits().semi_join(wanted).join(_subjects())))
    lineage = pipeline.bmi.lineage({"subject": "ada", "visit": 2})
    assert [op.operator for op in lineage.operators][:1] == ["Join()"]
    assert any("SemiJoin" in op.operator for op in lineage.operators)
    assert ("subjects", "subject=ada", "height") in _sources(lineage)
    with pytest.raises(InputValidationError, match="no stored row"):
        pipeline.bmi.lineage({"subject": "bob", "visit": 1})  # filtered out by the semi-join


def test_batch_traces_one_output_to_many_source_rows(tmp_path: Path) -> None:
    pipeline = _run(
        tmp_path, lambda: total.pod(score.pod(bmi.pod(_subjects().join(_visits()))).batch(2))
    )
    rows = pipeline.total.as_table().to_pylist()
    first = {"subject": rows[0]["subject"], "visit": rows[0]["visit"]}
    lineage = pipeline.total.lineage(first)
    names = [f.function for f in lineage.functions]
    assert names.count("score") == 2 and names.count("bmi") == 2
    assert len([r for r in lineage.sources if r.source_id == "visits"]) == 2
    assert any(op.node == "Batch" for op in lineage.operators)


def test_map_packets_and_map_tags_keep_the_path(tmp_path: Path) -> None:
    pipeline = _run(
        tmp_path,
        lambda: mass.pod(_visits().map_packets({"weight": "kg"}).map_tags({"visit": "session"})),
    )
    lineage = pipeline.mass.lineage({"subject": "ada", "session": 2})
    assert lineage.functions[0].outputs == {"mass": "62500.0"}
    assert {op.node for op in lineage.operators} == {"MapPackets", "MapTags"}
    (row,) = lineage.sources
    assert row.source_id == "visits" and row.column == "weight"


def test_rename_between_two_functions_is_followed(tmp_path: Path) -> None:
    pipeline = _run(
        tmp_path,
        lambda: mass.pod(
            bmi.pod(_subjects().join(_visits()))
            .map_packets({"bmi": "kg"})
            .map_tags({"visit": "session"})
        ),
    )
    lineage = pipeline.mass.lineage({"subject": "cyd", "session": 1})
    assert [f.function for f in lineage.functions] == ["mass", "bmi"]
    assert ("subjects", "subject=cyd", "height") in _sources(lineage)


def test_prov_json_links_results_activities_and_sources(tmp_path: Path) -> None:
    pipeline = _run(tmp_path, lambda: score.pod(bmi.pod(_subjects().join(_visits()))))
    prov = pipeline.score.lineage({"subject": "ada", "visit": 1}).to_prov()
    json.dumps(prov)
    assert len(prov["wasGeneratedBy"]) == 2 and len(prov["wasAssociatedWith"]) == 2
    used = {u["prov:entity"] for u in prov["used"].values()}
    assert "orcapod:source/subjects/subject=ada" in used
    assert used <= set(prov["entity"])
    agents = list(prov["agent"].values())
    assert {a["prov:label"] for a in agents} == {"bmi", "score"}


def test_the_table_has_a_row_per_step_and_source(tmp_path: Path) -> None:
    pipeline = _run(tmp_path, lambda: score.pod(bmi.pod(_subjects().join(_visits()))))
    lineage = pipeline.score.lineage({"subject": "ada", "visit": 1})
    table = lineage.to_table()
    kinds = table.column("kind").to_pylist()
    assert kinds.count("function") == 2 and kinds.count("operator") == 1
    assert kinds.count("source") == len(lineage.sources)
    assert "score" in str(lineage)


def test_from_the_store_alone(tmp_path: Path) -> None:
    pipeline = _run(
        tmp_path, lambda: total.pod(score.pod(bmi.pod(_subjects().join(_visits()))).batch(2))
    )
    first = pipeline.total.as_table().to_pylist()[0]
    tag = {"subject": first["subject"], "visit": first["visit"]}
    from_graph = pipeline.total.lineage(tag)
    alone = lineage_from_store(tmp_path / "store", "total", tag)
    assert [f.result_id for f in alone.functions] == [f.result_id for f in from_graph.functions]
    assert _sources(alone) == _sources(from_graph)
    assert alone.operators == ()
    with pytest.raises(InputValidationError, match="no records of a function"):
        lineage_from_store(tmp_path / "store", "nothing", tag)


def test_a_partial_or_unknown_tag_is_a_clear_error(tmp_path: Path) -> None:
    pipeline = _run(tmp_path, lambda: bmi.pod(_subjects().join(_visits())))
    with pytest.raises(InputValidationError, match=r"give every tag column.*missing \['visit'\]"):
        pipeline.bmi.lineage({"subject": "ada"})
    with pytest.raises(
        InputValidationError, match=r"no tag column 'visits'.*\['subject', 'visit'\]"
    ):
        pipeline.bmi.lineage({"subject": "ada", "visits": 1})
    assert pipeline.bmi.lineage({"subject": "bob"}).functions[0].outputs == {"bmi": "27.47"}
    with pytest.raises(InputValidationError, match="needs the row's tag"):
        pipeline.bmi.lineage({})


def test_directory_names_decode_to_path_segments() -> None:
    assert decode_segment("schema~3Aobject_v1~3Aab") == "schema:object_v1:ab"
    assert decode_segment("plain") == "plain"


def test_one_function_applied_by_two_nodes(tmp_path: Path) -> None:
    pipeline = _run(
        tmp_path,
        lambda: mass.pod(
            mass.pod(_visits().map_packets({"weight": "kg"})).map_packets({"mass": "kg"})
        ),
    )
    last = [label for label in pipeline.nodes if label.startswith("mass")][-1]
    lineage = pipeline.nodes[last].lineage({"subject": "bob", "visit": 1})
    assert [f.function for f in lineage.functions] == ["mass", "mass"]
    assert lineage.functions[0].outputs == {"mass": "91000000.0"}
    (row,) = lineage.sources
    assert (row.source_id, row.column) == ("visits", "weight")


def _packs(store: Path) -> list[Path]:
    return sorted(store.rglob("_orcapod_index/locate-*.pack"))


def test_lineage_is_the_same_with_a_fresh_damaged_or_compacted_id_index(tmp_path: Path) -> None:
    """Lineage looks ids up through each table's record-id locator (``id_locator``): the
    answer does not depend on whether its pack exists, is damaged, or predates compaction."""
    pipeline = _run(tmp_path, lambda: score.pod(bmi.pod(_subjects().join(_visits()))))
    tag = {"subject": "ada", "visit": 2}
    first = pipeline.score.lineage(tag)
    store = tmp_path / "store"
    packs = _packs(store)
    assert packs  # the first lineage wrote them
    for pack in packs:
        data = bytearray(pack.read_bytes())
        data[-3] ^= 0xFF
        pack.write_bytes(bytes(data))
    assert pipeline.score.lineage(tag) == first
    assert lineage_from_store(store, "score", tag).functions == first.functions
    compact_store(store, retention_hours=0)
    again = _run(tmp_path, lambda: score.pod(bmi.pod(_subjects().join(_visits()))))
    assert again.score.lineage(tag) == first
    for pack in _packs(store):
        pack.unlink()
    assert lineage_from_store(store, "score", tag).functions == first.functions


@function_pod("doubled")
def doubled(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return 2 * x


def _changing(tmp_path: Path, xb: int) -> Pipeline:
    rows = [{"k": "a", "x": 1}, {"k": "b", "x": xb}]
    source = DictSource(rows, tag_columns=["k"], source_id="src", record_id_column="k")
    pipeline = Pipeline("changes", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        doubled.pod(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        pipeline.run()
    return pipeline


def test_lineage_of_a_row_whose_input_changed_is_that_of_its_current_value(tmp_path: Path) -> None:
    _changing(tmp_path, 2)
    _changing(tmp_path, 3)
    pipeline = _changing(tmp_path, 5)  # three inputs, so three records, for tag b
    (step,) = pipeline.doubled.lineage({"k": "b"}).functions
    assert step.outputs == {"doubled": "10"}
    alone = lineage_from_store(tmp_path / "store", "doubled", {"k": "b"})
    assert [f.result_id for f in alone.functions] == [step.result_id]
    assert any("2 earlier record(s)" in note for note in alone.notes)
    untouched = lineage_from_store(tmp_path / "store", "doubled", {"k": "a"})
    assert not any("earlier record" in note for note in untouched.notes)


def test_lineage_from_the_store_of_a_row_whose_input_changed_back_is_that_of_its_value(
    tmp_path: Path,
) -> None:
    _changing(tmp_path, 2)
    _changing(tmp_path, 3)
    pipeline = _changing(tmp_path, 2)  # back: b's first record is reused, its second is newer
    (step,) = pipeline.doubled.lineage({"k": "b"}).functions
    assert step.outputs == {"doubled": "4"}
    view = StoreView(tmp_path / "store")
    alone = lineage_from_store(
        tmp_path / "store", "doubled", {"k": "b"}, superseded=view.superseded_entries
    )
    assert [f.result_id for f in alone.functions] == [step.result_id]
    assert not any("earlier record" in note for note in alone.notes)


def test_lineage_of_a_row_whose_current_input_failed_says_so(tmp_path: Path) -> None:
    _changing(tmp_path, 2)
    pipeline = _changing(tmp_path, -1)  # b's new input fails: only its old record is stored
    with pytest.raises(InputValidationError, match=r"current input.*no stored result.*failures"):
        pipeline.doubled.lineage({"k": "b"})


def test_rows_sharing_every_tag_value_are_named_by_their_system_tags(tmp_path: Path) -> None:
    rows = [{"k": "a", "x": 1}, {"k": "a", "x": 2}]  # same tag, two source rows
    pipeline = Pipeline("twins", DeltaTableDatabase(tmp_path / "store"))
    with pipeline:
        doubled.pod(DictSource(rows, tag_columns=["k"], source_id="src"))
    pipeline.run()
    with pytest.raises(InputValidationError, match=r"2 rows .* different source rows.*_tag_"):
        pipeline.doubled.lineage({"k": "a"})
    second = pipeline.doubled.as_table(all_info=True).to_pylist()[1]
    where = {k: v for k, v in second.items() if k == "k" or k.startswith("_tag_")}
    (step,) = pipeline.doubled.lineage(where).functions
    assert step.outputs == {"doubled": "4"}
    alone = lineage_from_store(tmp_path / "store", "doubled", where)
    assert [f.result_id for f in alone.functions] == [step.result_id]


@function_pod("checked")
def checked(height: float) -> float | None:
    if height > 1.8:
        raise ValueError("too tall to check")
    return None if height < 1.7 else height


def test_lineage_of_a_row_that_failed_or_was_filtered_says_so(tmp_path: Path) -> None:
    """A row without output names why: its latest call failed (with the error), or the
    function returned None for it; a tag no row has is still 'no stored row'."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FailedRowsWarning)
        pipeline = _run(tmp_path, lambda: checked.pod(_subjects()))
    with pytest.raises(InputValidationError, match=r"latest call failed \(ValueError: too tall"):
        pipeline.checked.lineage({"subject": "bob"})
    with pytest.raises(InputValidationError, match="filtered out: the function returned None"):
        pipeline.checked.lineage({"subject": "ada"})
    assert pipeline.checked.lineage({"subject": "cyd"}).functions[0].function == "checked"
    with pytest.raises(InputValidationError, match="no stored row"):
        pipeline.checked.lineage({"subject": "nobody"})
    with pytest.raises(InputValidationError, match=r"latest call failed \(ValueError: too tall"):
        lineage_from_store(tmp_path / "store", "checked", {"subject": "bob"})
    with pytest.raises(InputValidationError, match="filtered out: the function returned None"):
        lineage_from_store(tmp_path / "store", "checked", {"subject": "ada"})
