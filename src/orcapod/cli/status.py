"""``orcapod status [STORE]`` and ``orcapod runs [STORE]``: what ran in a store, and how.

Both read only the store's catalog and run history (small tables), never a node's records,
so they answer at once however many rows the nodes hold.

``status`` prints, per pipeline, its last run and one line per node: type, the rows it
output in its last run, computed / reused / filtered / failed counts (function nodes), its
status (``ok``, ``failed``: some of its rows failed; ``partial``: a node upstream of it has
failed rows; ``error``: it raised; ``not run``) and the command that shows its failures (with
``--store`` naming the store as given, so it can be pasted as is). ``runs`` prints the run
history, newest first (``--pipeline`` keeps one pipeline, which must be one of the store's;
``--limit`` the newest N, N >= 0).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orcapod.cli.options import (
    StoreArgument,
    StoreOption,
    check_pipeline,
    console,
    open_store,
    print_rows,
    short_run,
)

if TYPE_CHECKING:
    from orcapod.pipeline import NodeInfo, RunInfo

__all__ = ["runs", "status"]

_COUNTS = ("computed", "reused", "filtered", "failed")
_TROUBLE = ("failed", "error", "partial")


def _node_row(node: NodeInfo) -> list[object]:
    function = node.node_type == "function"
    counts = [getattr(node, c) if function else None for c in _COUNTS]
    return [node.label, node.node_type, node.rows, *counts, node.status]


def _duration(run: RunInfo) -> str:
    if run.started_at is None or run.ended_at is None:
        return "-"
    return f"{(run.ended_at - run.started_at).total_seconds():.1f}s"


def status(store: StoreArgument = None, store_option: StoreOption = None) -> None:
    """Pipelines, nodes, rows, last run, failures and partial nodes of a store."""
    view = open_store(store, store_option)
    given = shlex.quote(str(store or store_option or Path()))
    pipelines = view.pipelines()
    if not pipelines:
        console.print("no pipeline has run in this store yet (orcapod run FILE.py)")
        return
    for info in pipelines:
        nodes = view.nodes(info.name)
        if info.last_run is None:
            title = f"pipeline {info.name}: not run"
        else:
            when = info.last_run_at.strftime("%Y-%m-%d %H:%M:%S") if info.last_run_at else "?"
            run = short_run(info.last_run)
            title = f"pipeline {info.name}: last run {run} at {when} UTC, {info.status}"
        print_rows(
            ["node", "type", "rows", *_COUNTS, "status"],
            [_node_row(n) for n in nodes],
            title=title,
            numeric=("rows", *_COUNTS),
            wrap=False,
        )
        if info.error:
            console.print(f"  the run stopped on: {info.error}", markup=False)
        for node in nodes:
            if node.failed and node.status in ("failed", "error", "interrupted"):
                console.print(
                    f"  {node.label}: {node.failed} failed row(s); see orcapod logs "
                    f"{node.name} --failed --store {given}",
                    markup=False,
                )
            if node.status == "interrupted":
                console.print(
                    f"  {node.label}: interrupted before it finished (the rows it stored are "
                    "kept); run the pipeline again to go on"
                )
            elif node.status == "partial":
                console.print(f"  {node.label}: partial (an upstream node has failed rows)")
            elif node.status == "stale":
                console.print(
                    f"  {node.label}: stale (store maintenance deleted stored rows of it); run "
                    "the pipeline again to compute them"
                )
        console.print()


def runs(
    store: StoreArgument = None,
    store_option: StoreOption = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline's runs.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=0, help="Only the newest N runs.")
    ] = None,
) -> None:
    """The run history of a store, newest first."""
    view = open_store(store, store_option)
    check_pipeline(view, pipeline)
    history = view.runs(pipeline)
    if not history:
        console.print("no run recorded in this store yet (orcapod run FILE.py)")
        return
    if limit == 0:
        console.print(f"--limit 0: none of the {len(history)} recorded run(s) shown")
        return
    if limit is not None:
        history = history[:limit]
    print_rows(
        ["run", "pipeline", "started (UTC)", "took", *_COUNTS, "status"],
        [
            [
                short_run(r.run_id),
                r.pipeline,
                r.started_at,
                _duration(r),
                *(getattr(r, c) for c in _COUNTS),
                r.status,
            ]
            for r in history
        ],
        numeric=("took", *_COUNTS),
        wrap=False,
    )
