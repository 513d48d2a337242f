"""What the ``orcapod`` commands share: finding the store, and printing tables.

The store is the directory given to ``DeltaTableDatabase(...)`` by the pipelines. A command
takes it from, in this order: its positional ``STORE`` argument (where the command has one),
``--store PATH``, or the ``ORCAPOD_STORE`` environment variable. Nothing of the user's code
is imported: every command reads the store through ``orcapod.pipeline.StoreView``.

Tables are printed with rich; values are shown as text (``None`` as ``-``, floats as Python
writes them, times to the second in UTC), long ones wrapped by rich to the terminal width
(``COLUMNS`` when output is not a terminal). A run is shown by the first ``RUN_ID_CHARS``
characters of its id, and any unique prefix of an id names the run (``run_id``).

rich is imported when something is first printed (``LazyConsole``, ``lazy_module``): it takes
about as long to import as the rest of the command line, and ``orcapod --help`` (printed by
typer without rich) and a command that fails before printing do not need it. The same
holds for the store reader (``orcapod.pipeline.store_view``), the graph renderer and the
maintenance functions: each command module loads what it needs when it runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from orcapod._lazy import lazy_module
from orcapod.errors import OrcapodError

if TYPE_CHECKING:
    from rich import box
    from rich import console as rich_console
    from rich import markup as rich_markup
    from rich import table as rich_table

    from orcapod.pipeline import store_view
else:
    box = lazy_module("rich.box")
    rich_console = lazy_module("rich.console")
    rich_markup = lazy_module("rich.markup")
    rich_table = lazy_module("rich.table")
    store_view = lazy_module("orcapod.pipeline.store_view")

__all__ = [
    "DEMO_STORE",
    "RUN_ID_CHARS",
    "LazyConsole",
    "STORE_ENV",
    "StoreArgument",
    "StoreOption",
    "check_pipeline",
    "console",
    "fail",
    "lazy_console",
    "open_store",
    "print_rows",
    "run_id",
    "short_run",
    "text",
]

STORE_ENV = "ORCAPOD_STORE"
#: where ``orcapod demo`` keeps its store (relative to the working directory)
DEMO_STORE = Path("orcapod-demo")
RUN_ID_CHARS = 8

#: the ``--store`` option of every command that reads a store
StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help=f"The store directory (default: ${STORE_ENV}).",
        show_default=False,
    ),
]
#: the optional positional ``STORE`` of ``status``, ``runs`` and ``graph``
StoreArgument = Annotated[
    Path | None,
    typer.Argument(help=f"The store directory (or --store, or ${STORE_ENV}).", show_default=False),
]


class LazyConsole:
    """A rich ``Console`` made (and rich imported) on first use; ``options`` are its
    ``Console(...)`` arguments."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: rich_console.Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            self._console = rich_console.Console(**self._options)
        return getattr(self._console, name)


def lazy_console(**options: Any) -> rich_console.Console:
    """A ``LazyConsole``, typed as the ``Console`` it stands for."""
    return cast("rich_console.Console", LazyConsole(**options))


console = lazy_console(highlight=False, soft_wrap=True)
_errors = lazy_console(stderr=True, highlight=False)


def fail(message: str, code: int = 1, detail: str = "") -> typer.Exit:
    """Print ``error: message`` on stderr (and ``detail``, e.g. the frames of a traceback,
    below it, indented); the ``Exit`` to raise (exit status ``code``)."""
    _errors.print(f"[red]error:[/] {rich_markup.escape(message)}")
    if detail:
        print("\n".join(f"  {line}" for line in detail.splitlines()), file=sys.stderr)
    return typer.Exit(code)


def open_store(positional: Path | None = None, option: Path | None = None) -> store_view.StoreView:
    """The store named by the positional argument, ``--store`` or ``ORCAPOD_STORE``."""
    path = positional or option
    if path is None:
        raise fail(
            f"no store given: pass the store directory (as STORE or --store PATH) or set "
            f"{STORE_ENV}"
        )
    not_a_store = _not_a_store(path)
    if not_a_store:
        raise fail(not_a_store)
    try:
        return store_view.StoreView(os.fspath(path))
    except OrcapodError as err:
        raise fail(str(err)) from err


#: top-level entries only a store has (catalog, run history, shared results)
_STORE_MARKERS = ("_catalog", "_runs", "_result")
_TABLE_MARKER = "_delta_log"
_SEARCH_DEPTH = 16


def _has_markers(path: Path) -> bool:
    return any((path / name).is_dir() for name in _STORE_MARKERS)


def _holds_tables(path: Path) -> bool:
    """Whether ``path`` is a store that holds tables: it has a store's top-level entries, or
    a Delta table lies in it outside any store nested in it (depth-first, stopping at the
    first found; hidden folders skipped)."""
    markers = set(_STORE_MARKERS)
    stack = [(path, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = [e for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
        except OSError:
            continue
        names = {e.name for e in entries}
        if names & markers:
            if depth == 0:
                return True
            continue  # a store inside this folder: its tables are not this folder's
        if _TABLE_MARKER in names:
            return True
        if depth < _SEARCH_DEPTH:
            stack.extend((Path(e.path), depth + 1) for e in entries)
    return False


def _not_a_store(path: Path) -> str | None:
    """Why the local directory ``path`` is not a store (None when it is one, or is empty: a
    store no pipeline has written to yet, or not a local directory)."""
    raw = os.fspath(path)
    if "://" in raw or not path.is_dir() or _has_markers(path):
        return None
    store = next((p for p in path.resolve().parents if _has_markers(p)), None)
    if store is not None:
        return f"{raw} is not an orcapod store but a folder inside the store {store}: pass {store}"
    if not any(path.iterdir()) or _holds_tables(path):
        return None
    inside = sorted(
        str(child)
        for child in path.iterdir()
        if child.is_dir() and not child.name.startswith(".") and _holds_tables(child)
    )
    hint = (
        f"; the store{'s' if len(inside) > 1 else ''} inside it: {', '.join(inside)}"
        if inside
        else "; pass the directory given to DeltaTableDatabase(...) by the pipeline"
    )
    return f"{raw} is not an orcapod store: it holds files but no store tables{hint}"


def check_pipeline(view: store_view.StoreView, name: str | None) -> None:
    """Fail when ``name`` (a ``--pipeline`` option) is given and names no pipeline of the
    store, listing the pipelines it has."""
    if name is None:
        return
    known = {p.name for p in view.pipelines()} | {r.pipeline for r in view.runs()}
    if name not in known:
        listed = ", ".join(sorted(known)) or "none: no pipeline has run in this store"
        raise fail(f"no pipeline {name!r} in this store; its pipelines: {listed}")


def text(value: Any) -> str:
    """A cell's text (see the module docstring)."""
    if value is None:
        return "-"
    if hasattr(value, "strftime") and hasattr(value, "hour"):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def short_run(run: str | None) -> str:
    """How a run id is shown."""
    return "-" if run is None else run[:RUN_ID_CHARS]


def run_id(view: store_view.StoreView, prefix: str) -> str:
    """The full id of the run whose id starts with ``prefix``."""
    matches = [r.run_id for r in view.runs() if r.run_id.startswith(prefix)]
    if len(set(matches)) == 1:
        return matches[0]
    if not matches:
        raise fail(f"no run {prefix!r} in this store: see orcapod runs")
    raise fail(f"several runs start with {prefix!r}: give more of the id (orcapod runs)")


def print_rows(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    title: str | None = None,
    numeric: Iterable[str] = (),
    wrap: bool = True,
) -> None:
    """A rich table of ``rows`` under ``columns`` (``numeric`` columns right-aligned; with
    ``wrap=False`` no cell is wrapped: one line per row)."""
    right = set(numeric)
    rows = [[text(v) for v in row] for row in rows]
    cells = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    table = rich_table.Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in columns:
        table.add_column(
            name,
            justify="right" if name in right else "left",
            overflow="fold" if wrap else "ellipsis",
            no_wrap=not wrap,
            min_width=None if wrap else max(len(name), len(max(cells.get(name, [""]), key=len))),
        )
    for row in rows:
        table.add_row(*row)
    console.print(table)
