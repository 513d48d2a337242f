"""A pipeline saved by another process whose function module is gone still reads: its
function nodes load read-only and answer ``as_table()`` from the store; status (the store's
catalog) and graph pictures work on it too."""

import subprocess
import sys
import textwrap

import pytest

from orcapod.pipeline import LoadStatus, Pipeline, StoreView
from orcapod.pipeline.graph_render import to_dot, to_mermaid

MODULE = textwrap.dedent(
    """
    from orcapod import Pipeline, function_pod
    from orcapod.databases import DeltaTableDatabase
    from orcapod.sources import DictSource


    @function_pod("area")
    def area(width: float, height: float) -> float:
        return width * height


    @function_pod("label")
    def size_label(area: float) -> str:
        return "big" if area > 10 else "small"


    def build(store):
        rooms = DictSource(
            [
                {"room": "a", "width": 2.0, "height": 3.0},
                {"room": "b", "width": 4.0, "height": 5.0},
            ],
            tag_columns=["room"],
            label="rooms",
        )
        pipeline = Pipeline("house", DeltaTableDatabase(store))
        with pipeline:
            size_label.pod(area.pod(rooms))
        return pipeline
    """
)

SAVE = textwrap.dedent(
    """
    import sys
    import vanishing_rooms

    pipeline = vanishing_rooms.build(sys.argv[1])
    pipeline.run()
    pipeline.save(sys.argv[2])
    """
)


@pytest.fixture
def saved_elsewhere(tmp_path):
    """(path of the saved pipeline, store), saved by a subprocess whose module is then
    deleted."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "vanishing_rooms.py").write_text(MODULE)
    (code / "save.py").write_text(SAVE)
    store, saved = tmp_path / "store", tmp_path / "house.json"
    subprocess.run(
        [sys.executable, "save.py", str(store), str(saved)],
        cwd=code,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (code / "vanishing_rooms.py").unlink()
    assert "vanishing_rooms" not in sys.modules
    return saved, store


def test_function_nodes_load_read_only_and_read_their_stored_rows(saved_elsewhere):
    saved, _ = saved_elsewhere
    loaded = Pipeline.load(saved)
    assert loaded.load_statuses["rooms"] is LoadStatus.FULL
    assert loaded.load_statuses["area"] is LoadStatus.READ_ONLY
    assert loaded.load_statuses["size_label"] is LoadStatus.READ_ONLY
    assert "vanishing_rooms" in loaded.area.load_reason
    assert loaded.area.as_table().to_pylist() == [
        {"room": "a", "area": 6.0},
        {"room": "b", "area": 20.0},
    ]
    assert loaded.size_label.as_table().to_pylist() == [
        {"room": "a", "label": "small"},
        {"room": "b", "label": "big"},
    ]


def test_graph_pictures_of_the_loaded_pipeline_show_types_and_rows(saved_elsewhere):
    saved, _ = saved_elsewhere
    loaded = Pipeline.load(saved)
    mermaid = to_mermaid(loaded)
    assert '[("rooms<br/>source · 2 rows")]' in mermaid
    assert '["area<br/>function · 2 rows"]' in mermaid
    assert '["size_label<br/>function · 2 rows"]' in mermaid
    assert '"house.area" -> "house.size_label";' in to_dot(loaded)


def test_status_of_the_store_needs_no_code(saved_elsewhere):
    _, store = saved_elsewhere
    nodes = {n.label: n for n in StoreView(store).nodes("house")}
    assert [nodes[label].status for label in ("rooms", "area", "size_label")] == ["ok"] * 3
    assert nodes["size_label"].rows == 2
