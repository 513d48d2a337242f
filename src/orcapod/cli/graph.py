"""``orcapod graph [STORE]``: a picture of the pipelines a store holds.

Drawn from the store's catalog (no user code): every node with its type, the rows it output
in its last run and its status when not ok. ``--format mermaid`` (the default) and ``dot``
print text and need nothing installed; ``svg`` and ``png`` are drawn by Graphviz (the
``graphviz`` Python package and the ``dot`` program, see ``orcapod.pipeline.graph_render``)
and written to ``--output FILE`` (or to standard output when it is not a terminal).
``--pipeline NAME`` keeps one pipeline of the store.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orcapod._lazy import lazy_module
from orcapod.cli.options import (
    StoreArgument,
    StoreOption,
    check_pipeline,
    console,
    fail,
    open_store,
)
from orcapod.errors import GraphRenderError

if TYPE_CHECKING:
    from orcapod.pipeline import graph_render
else:
    graph_render = lazy_module("orcapod.pipeline.graph_render")

__all__ = ["GraphFormat", "graph"]


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"
    SVG = "svg"
    PNG = "png"


def _write(output: Path, data: bytes) -> None:
    try:
        output.write_bytes(data)
    except OSError as err:
        reason = err.strerror or str(err)
        raise fail(
            f"cannot write --output {output}: {reason}; pass a file in an existing, writable folder"
        ) from err


def graph(
    store: StoreArgument = None,
    store_option: StoreOption = None,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="mermaid, dot, svg or png.")
    ] = GraphFormat.MERMAID,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file.")
    ] = None,
    pipeline: Annotated[
        str | None, typer.Option("--pipeline", help="Only this pipeline of the store.")
    ] = None,
) -> None:
    """Draw the pipeline graph: node types, row counts and failures."""
    view = open_store(store, store_option)
    check_pipeline(view, pipeline)
    nodes = view.nodes(pipeline)
    if not nodes:
        where = f"pipeline {pipeline!r}" if pipeline else "the store"
        raise fail(f"{where} has no nodes in its catalog: run a pipeline first (orcapod run)")
    if format in (GraphFormat.MERMAID, GraphFormat.DOT):
        text = (
            graph_render.to_mermaid(nodes)
            if format is GraphFormat.MERMAID
            else graph_render.to_dot(nodes)
        )
        if output is None:
            console.out(text, end="")
        else:
            _write(output, text.encode("utf-8"))
        return
    try:
        image = graph_render.render_image(nodes, "svg" if format is GraphFormat.SVG else "png")
    except GraphRenderError as err:
        raise fail(str(err)) from err
    if output is not None:
        _write(output, image)
    elif sys.stdout.isatty():
        raise fail(f"a {format.value} image is binary: pass --output FILE (or redirect it)")
    else:
        sys.stdout.buffer.write(image)
        sys.stdout.flush()
