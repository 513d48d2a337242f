"""``orcapod demo``: a real, persistent, incremental pipeline in a few lines.

Two sources (subjects with their height; visits with a weight), a join on ``subject``, and two
function pods (``compute_bmi``, then ``classify``), stored in a Delta Lake store under
``./orcapod-demo`` (relative to the working directory). The first run computes every row;
every later run finds all of them recorded and computes nothing. Delete the directory to
start over.

The functions live at module level so a saved pipeline can reference them by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pyarrow as pa

from orcapod._lazy import lazy_module
from orcapod.cli.options import DEMO_STORE
from orcapod.databases import DeltaTableDatabase
from orcapod.functions import function_pod
from orcapod.functions.decorator import PodFunction
from orcapod.nodes.summary import NodeType
from orcapod.pipeline import Pipeline, PipelineRunSummary
from orcapod.sources import DictSource

if TYPE_CHECKING:
    from rich import console as rich_console
    from rich import table as rich_table
else:
    rich_console = lazy_module("rich.console")
    rich_table = lazy_module("rich.table")

__all__ = ["classify", "compute_bmi", "run_demo"]

SUBJECTS = [
    {"subject": "ada", "height": 1.68},
    {"subject": "bob", "height": 1.82},
    {"subject": "cyd", "height": 1.75},
]
VISITS = [
    {"subject": "ada", "visit": 1, "weight": 61.0},
    {"subject": "ada", "visit": 2, "weight": 62.5},
    {"subject": "bob", "visit": 1, "weight": 91.0},
    {"subject": "cyd", "visit": 1, "weight": 70.2},
    {"subject": "cyd", "visit": 2, "weight": 83.9},
]


@function_pod("bmi")
def compute_bmi(weight: float, height: float) -> float:
    """Body-mass index from weight (kg) and height (m)."""
    return round(weight / height**2, 2)


@function_pod("category")
def classify(bmi: float) -> str:
    """WHO category of a body-mass index."""
    if bmi < 18.5:
        return "underweight"
    if bmi < 25:
        return "normal"
    if bmi < 30:
        return "overweight"
    return "obese"


def build_pipeline(store: Path) -> Pipeline:
    """The demo pipeline over a Delta Lake store at ``store``."""
    subjects = DictSource(SUBJECTS, tag_columns=["subject"], source_id="subjects", label="subjects")
    visits = DictSource(
        VISITS, tag_columns=["subject", "visit"], source_id="visits", label="visits"
    )
    pipeline = Pipeline("demo", DeltaTableDatabase(store))
    with pipeline:
        joined = visits.join(subjects)
        bmi = cast(PodFunction, compute_bmi).pod(joined)
        cast(PodFunction, classify).pod(bmi)
    return pipeline


def _results(pipeline: Pipeline) -> pa.Table:
    bmi = pipeline.nodes["compute_bmi"].as_table()
    category = pipeline.nodes["classify"].as_table()
    return bmi.join(category, keys=["subject", "visit"]).sort_by(
        [("subject", "ascending"), ("visit", "ascending")]
    )


def _table(title: str, table: pa.Table) -> rich_table.Table:
    view = rich_table.Table(title=title)
    for name in table.column_names:
        view.add_column(name)
    for row in table.to_pylist():
        view.add_row(*(str(v) for v in row.values()))
    return view


def _summary_table(summary: PipelineRunSummary) -> rich_table.Table:
    view = rich_table.Table(title="per-node summary")
    for name in ("node", "type", "computed", "reused", "failed", "rows"):
        view.add_column(name, justify="left" if name in ("node", "type") else "right")
    for label, _, computed, reused, _, failed, rows in summary.rows():
        node_type = summary.node_type(label)
        if node_type is NodeType.FUNCTION:
            cells = [str(c) for c in (computed, reused, failed)]
        else:
            cells = ["-", "-", "-"]
        view.add_row(label, node_type.value, *cells, str(rows))  # rows it outputs
    return view


def run_demo(
    store: Path = DEMO_STORE, console: rich_console.Console | None = None
) -> PipelineRunSummary:
    """Build and run the demo pipeline, print results and the summary; return the summary."""
    console = console or rich_console.Console()
    pipeline = build_pipeline(store)
    console.print(f"[bold]pipeline[/] {pipeline.name!r} with nodes {list(pipeline.nodes)}")
    console.print(f"[bold]store[/]    Delta Lake at {store.absolute()}")
    summary = pipeline.run()
    console.print(_table("results", _results(pipeline)))
    console.print(_summary_table(summary))
    if summary.failed:
        console.print(f"[red]{summary.failed} row(s) failed[/]")
    if summary.computed == 0:
        console.print(
            f"[green]Nothing was recomputed:[/] all {summary.reused} function results were "
            f"already stored in {store}/. Delete that directory to start over."
        )
    else:
        console.print(
            f"Computed {summary.computed} function results and stored them in {store}/. "
            "Run [bold]orcapod demo[/] again: nothing will be recomputed."
        )
    return summary
