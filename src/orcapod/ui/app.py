"""``create_app(store)``: the web view of a store as a Starlette application.

Pages (server-rendered with Jinja2; templates in ``orcapod/ui/templates``, one stylesheet and
one small script in ``orcapod/ui/static``, served by the app itself: nothing is fetched from
elsewhere, so the view works offline):

* ``/``: the graph page: every pipeline of the store, each drawn left to right
  (``orcapod.ui.graph_svg``), with its last run and a table of its nodes; ``?pipeline=NAME``
  shows one.
* ``/node/{pipeline}/{label}``: a node: its failures (``FAILURES_PER_PAGE`` at a time,
  ``?failures=N`` for the N-th page; error, traceback, captured output, source rows), why
  its last run computed what it did, its rows (``?page=N&size=N``, ``?sort=COLUMN&desc=1``),
  its schema, its code identity and the runs that included it.
* ``/node/{pipeline}/{label}/row/{entry_id}``: one row: tags, outputs, how it was computed,
  its captured output, its failure, its lineage back to the source rows.
* ``/runs``: the run history (``?pipeline=NAME``), with each node's counts, status and time.
* ``/api/fingerprint``: JSON ``{"fingerprint": ..., "running": bool}``; every page polls it
  (every ``poll_seconds``; 0: never) and reloads itself when it changes, so a page follows a
  run.

An unknown pipeline, node or row is a 404 page that says what exists.

Decision: node and row addresses are read from the request's raw path. The pages link
``/node/{pipeline}/{label}`` with each part percent-encoded, ``/`` included (``%2F``), but
the server decodes ``%2F`` before routing, so a label such as ``a/b`` could not be told
from two path segments. The raw path keeps the encoding, so each segment is exactly one
name. An address typed with a bare ``/`` inside a name (or served through a proxy that
decodes the path) is matched against the store instead: the longest pipeline name, then
the longest label of it, that the decoded path starts with.

The app only reads (every route is a GET); it reads the store through ``UiStore`` and never
imports the user's code. Handlers are plain functions, run by Starlette in its thread pool.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from orcapod.cli.show import user_frames
from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError, NodeNotFoundError, OrcapodError
from orcapod.pipeline import NodeInfo
from orcapod.ui.graph_svg import STATUS_STROKE, draw_graph
from orcapod.ui.reader import UiStore

__all__ = ["create_app"]

_HERE = Path(__file__).parent
PAGE_SIZES = (20, 50, 100, 500)
#: failures shown on a node page at a time (each carries its traceback and captured output)
FAILURES_PER_PAGE = 20
_NODE_PREFIX = "/node/"
_ROW = "row"
#: how a missing value is shown (an en dash)
NONE_SHOWN = "\u2013"
#: characters of a cell shown in a table (the full value is in the cell's title)
CELL_CHARS = 120


def cell(value: Any, limit: int = CELL_CHARS) -> str:
    """How a value is shown in a table cell."""
    if value is None:
        return NONE_SHOWN
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Mapping) and set(value) == {"path"}:
        return str(value["path"])  # a stored pathlib.Path
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, bytes):
        return value[:32].hex() + ("…" if len(value) > 32 else "")
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short(value: Any, n: int = 12) -> str:
    """A hash or id shortened for display (``method:`` prefixes dropped)."""
    text = "" if value is None else str(value)
    if ":" in text:
        text = text.rsplit(":", 1)[-1]
    return text[:n]


def seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return NONE_SHOWN
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def took(run: Any) -> str:
    if run.started_at is None or run.ended_at is None:
        return "running" if run.status == "running" else NONE_SHOWN
    return seconds((run.ended_at - run.started_at).total_seconds())


def node_url(node: NodeInfo | None = None, pipeline: str = "", label: str = "") -> str:
    if node is not None:
        pipeline, label = node.pipeline, node.label
    return f"/node/{quote(pipeline, safe='')}/{quote(label, safe='')}"


def row_url(node: NodeInfo, entry_id: str) -> str:
    return f"{node_url(node)}/row/{quote(entry_id, safe='')}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cell=cell, short=short, seconds=seconds, user_frames=user_frames)
    env.globals.update(
        node_url=node_url,
        row_url=row_url,
        took=took,
        status_colour=STATUS_STROKE,
        urlencode=urlencode,
    )
    return env


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _raw_segments(request: Request) -> list[str] | None:
    """The segments of the request's path after ``/node/``, each decoded on its own (so an
    encoded ``/`` stays inside its segment); None when the server gives no raw path."""
    raw = request.scope.get("raw_path")
    if not isinstance(raw, bytes):
        return None
    root = str(request.scope.get("root_path") or "").encode()
    if root and raw.startswith(root):
        raw = raw[len(root) :]
    prefix = _NODE_PREFIX.encode()
    if not raw.startswith(prefix):
        return None
    parts = raw[len(prefix) :].split(b"/")
    return [unquote_to_bytes(part).decode("utf-8", "replace") for part in parts]


def _poll_ms(poll_seconds: float) -> int:
    if not isinstance(poll_seconds, (int, float)) or not math.isfinite(poll_seconds):
        raise InputValidationError(
            f"poll_seconds must be a number of seconds, got {poll_seconds!r}; "
            "pass e.g. 2 (or 0 for pages that never check the store for changes)"
        )
    if poll_seconds < 0:
        raise InputValidationError(
            f"poll_seconds must be 0 or more, got {poll_seconds!r}; "
            "pass 0 for pages that never check the store for changes"
        )
    return max(1, round(poll_seconds * 1000)) if poll_seconds > 0 else 0


class _Pages:
    def __init__(self, store: UiStore, poll_seconds: float) -> None:
        self.store = store
        self.poll_ms = _poll_ms(poll_seconds)
        self.env = _environment()

    def render(self, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        template = self.env.get_template(name)
        html = template.render(
            store=self.store.location,
            fingerprint=self.store.fingerprint(),
            poll_ms=self.poll_ms,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def unknown_pipeline(self, wanted: str, names: list[str]) -> Response:
        known = ", ".join(repr(n) for n in names) if names else "none yet"
        message = f"no pipeline {wanted!r} in this store; its pipelines: {known}"
        return self.render("error.html", status_code=404, title="not found", message=message)

    def graph(self, request: Request) -> Response:
        wanted = request.query_params.get("pipeline")
        pipelines = self.store.pipelines()
        if wanted is not None and wanted not in {p.name for p in pipelines}:
            return self.unknown_pipeline(wanted, [p.name for p in pipelines])
        nodes = {p.name: self.store.nodes(p.name) for p in pipelines}
        shown = [p for p in pipelines if wanted in (None, p.name)]
        pictures = {p.name: draw_graph(nodes[p.name]) for p in shown}
        return self.render(
            "graph.html",
            title="graph",
            pipelines=pipelines,
            shown=shown,
            nodes=nodes,
            pictures=pictures,
            wanted=wanted,
        )

    def locate(self, request: Request) -> tuple[NodeInfo, str | None]:
        """The node, and the row's entry id, that a ``/node/...`` address names (module
        docstring)."""
        segments = _raw_segments(request)
        if segments is not None and (
            len(segments) == 2 or (len(segments) == 4 and segments[2] == _ROW)
        ):
            try:
                node = self.store.node(segments[0], segments[1])
            except NodeNotFoundError as err:
                found = self.match(request.path_params["where"])
                if found is None:
                    raise err from None
                return found
            return node, segments[3] if len(segments) == 4 else None
        found = self.match(request.path_params["where"])
        if found is None:
            raise NodeNotFoundError(
                f"no node at {_NODE_PREFIX}{request.path_params['where']} in this store; "
                "open a node from the graph page (its address encodes '/' in names as %2F)"
            )
        return found

    def match(self, where: str) -> tuple[NodeInfo, str | None] | None:
        """The node (and row) a decoded path after ``/node/`` names, matched against the
        store's pipeline names and labels, the longest first."""
        names = sorted((p.name for p in self.store.pipelines()), key=len, reverse=True)
        for pipeline in names:
            if not where.startswith(pipeline + "/"):
                continue
            rest = where[len(pipeline) + 1 :]
            for node in sorted(self.store.nodes(pipeline), key=lambda n: -len(n.label)):
                if rest == node.label:
                    return node, None
                if rest.startswith(f"{node.label}/{_ROW}/"):
                    return node, rest[len(node.label) + len(_ROW) + 2 :]
        return None

    def node_or_row(self, request: Request) -> Response:
        node, entry_id = self.locate(request)
        if entry_id is None:
            return self.node(request, node)
        return self.row(node, entry_id)

    def node(self, request: Request, node: NodeInfo) -> Response:
        size = _int(request, "size", 50)
        size = size if size in PAGE_SIZES else 50
        page = max(1, _int(request, "page", 1))
        sort = request.query_params.get("sort") or None
        descending = request.query_params.get("desc") == "1"
        rows = self.store.rows(node, (page - 1) * size, size, sort, descending)
        failed = self.store.failure_count(node) if node.node_type == "function" else 0
        failure_pages = max(1, -(-failed // FAILURES_PER_PAGE))
        failure_page = min(max(1, _int(request, "failures", 1)), failure_pages)
        failures = []
        if failed:
            offset = (failure_page - 1) * FAILURES_PER_PAGE
            failures = self.store.failures(node, FAILURES_PER_PAGE, offset=offset)
        source_values = self.store.source_values(s for f in failures for s in f.sources)
        history = self.store.runs(node.pipeline)
        identity = self.store.identity(node, history)
        return self.render(
            "node.html",
            title=node.label,
            node=node,
            rows=rows,
            size=size,
            sizes=PAGE_SIZES,
            failures=failures,
            failure_total=failed,
            failure_page=failure_page,
            failure_pages=failure_pages,
            failure_offset=(failure_page - 1) * FAILURES_PER_PAGE,
            source_values=source_values,
            why=self.store.why(node, identity),
            identity=identity.current,
            previous=identity.previous,
            source=identity.source,
            runs=self.store.node_runs(node, history)[:20],
        )

    def row(self, node: NodeInfo, entry_id: str) -> Response:
        detail = self.store.row(node, entry_id)
        labels = {n.label for n in self.store.nodes(node.pipeline)}
        return self.render(
            "row.html", title=f"{node.label} row", node=node, row=detail, labels=labels
        )

    def runs(self, request: Request) -> Response:
        wanted = request.query_params.get("pipeline")
        names = [p.name for p in self.store.pipelines()]
        runs = self.store.runs(wanted)
        if wanted is not None and wanted not in names and not runs:
            names += sorted({r.pipeline for r in self.store.runs()} - set(names))
            return self.unknown_pipeline(wanted, names)
        return self.render(
            "runs.html",
            title="runs",
            runs=runs[: _int(request, "limit", 100)],
            pipelines=names,
            wanted=wanted,
        )

    def fingerprint(self, request: Request) -> Response:
        runs = self.store.runs()
        running = any(r.status == "running" for r in runs[:10])
        return JSONResponse({"fingerprint": self.store.fingerprint(), "running": running})

    def not_found(self, request: Request, exc: Exception) -> Response:
        return self.render("error.html", status_code=404, title="not found", message=str(exc))

    def failed(self, request: Request, exc: Exception) -> Response:
        return self.render("error.html", status_code=500, title="error", message=str(exc))


def create_app(
    store: str | os.PathLike[str] | ArrowDatabase, poll_seconds: float = 2.0
) -> Starlette:
    """The web view of ``store`` (module docstring); serve it with ``orcapod.ui.serve``.

    ``poll_seconds``: how often pages check the store for changes (0: never); a negative or
    non-finite number raises ``InputValidationError``."""
    pages = _Pages(UiStore(store), poll_seconds)
    routes = [
        Route("/", pages.graph),
        Route("/runs", pages.runs),
        Route(_NODE_PREFIX + "{where:path}", pages.node_or_row),
        Route("/api/fingerprint", pages.fingerprint),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    return Starlette(
        routes=routes,
        exception_handlers={NodeNotFoundError: pages.not_found, OrcapodError: pages.failed},
    )
