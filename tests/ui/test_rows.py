"""A page of a node's rows read in the store matches the node's rows as ``StoreView`` (and
``orcapod show``) gives them, in every order."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from orcapod.databases import DeltaTableDatabase, InMemoryArrowDatabase
from orcapod.functions import function_pod
from orcapod.pipeline import Pipeline, StoreView
from orcapod.sources import DictSource
from orcapod.ui.reader import UiStore
from orcapod.ui.rows import read_page


@pytest.fixture(scope="module")
def view(imaging_project) -> StoreView:
    return StoreView(imaging_project.store)


def test_pages_cover_the_rows_once_tags_first(view: StoreView, imaging_project):
    scans = imaging_project.scans
    node = view.node("imaging.segment")
    expected = view.node_rows("imaging.segment").to_pylist()
    seen = []
    for offset in range(0, scans, 20):
        page = read_page(view.database, node, offset, 20)
        assert page.columns == ("scan", "mask_area") and page.tag_columns == ("scan",)
        assert page.total == scans - 1
        seen.extend(dict(zip(page.columns, r, strict=True)) for r in page.rows)
        assert all(i is not None for i in page.record_ids)
    assert sorted(seen, key=lambda r: r["scan"]) == expected


@pytest.mark.parametrize("column", ["scan", "mask_area"])
@pytest.mark.parametrize("descending", [False, True])
def test_sorting_by_a_tag_or_an_output_column(view: StoreView, column: str, descending: bool):
    node = view.node("imaging.segment")
    page = read_page(view.database, node, 5, 10, column, descending)
    everything = sorted(
        view.node_rows("imaging.segment").to_pylist(), key=lambda r: r[column], reverse=descending
    )
    assert [r[page.columns.index(column)] for r in page.rows] == [
        r[column] for r in everything[5:15]
    ]


def test_a_source_node_has_no_stored_rows(view: StoreView):
    page = read_page(view.database, view.node("imaging.exposures"))
    assert not page.stored and page.rows == ()


@function_pod("y")
def double(x: int) -> int:
    return 2 * x


def test_a_store_polars_cannot_scan_is_paged_in_arrow():
    store = InMemoryArrowDatabase()
    pipeline = Pipeline("mem", store)
    with pipeline:
        double.pod(DictSource([{"k": k, "x": k} for k in range(7)], tag_columns=["k"]))
    pipeline.run(progress=False)
    view = StoreView(store)
    page = read_page(store, view.node("double"), 2, 3, "y", True)
    assert page.total == 7
    assert page.rows == ((4, 8), (3, 6), (2, 4))


@function_pod("ramp")
def ramp(n: int) -> NDArray[np.float64]:
    return np.arange(n, dtype=np.float64)


def test_array_outputs_are_paged_alike_in_memory_and_on_disk(tmp_path):
    pages = []
    for store in (InMemoryArrowDatabase(), DeltaTableDatabase(tmp_path / "store")):
        pipeline = Pipeline("arrays", store)
        with pipeline:
            ramp.pod(DictSource([{"k": k, "n": k} for k in range(1, 5)], tag_columns=["k"]))
        pipeline.run(progress=False)
        pages.append(read_page(store, StoreView(store).node("ramp"), 1, 2, "k", False))
    in_memory, on_disk = pages
    assert in_memory.total == on_disk.total == 4
    assert [row[0] for row in in_memory.rows] == [2, 3]
    assert in_memory.rows == on_disk.rows


def test_pages_list_a_nodes_current_rows_after_its_input_changed_and_changed_back(tmp_path):
    for store in (InMemoryArrowDatabase(), DeltaTableDatabase(tmp_path / "store")):
        for second in (2, 3, 2, 5):  # k=1 changes to 3, back to 2, then to 5
            rows = [{"k": 0, "x": 0}, {"k": 1, "x": second}, {"k": 2, "x": 7}]
            pipeline = Pipeline("changes", store)
            with pipeline:
                double.pod(DictSource(rows, tag_columns=["k"], record_id_column="k"))
            pipeline.run(progress=False)
        ui = UiStore(store)
        page = ui.rows(ui.view.node("double"), 0, 10, "k")
        assert page.total == 3
        assert page.rows == ((0, 0), (1, 10), (2, 14))
        shown = ui.view.node_rows("double").to_pylist()
        assert page.rows == tuple(tuple(r.values()) for r in shown)
