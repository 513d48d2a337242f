"""What the ``orcapod`` commands share: finding the store, and printing tables.

The store is where the pipelines keep their results, named as their database was built
(``store_database``):

* a directory: a ``DeltaTableDatabase`` on the local file system;
* a URI of object storage (``s3://bucket/prefix``, ``gs://``, ``az://``, ``abfss://``, ...):
  a ``DeltaTableDatabase`` there, reached with the credentials the Delta Lake library reads
  from the environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``,
  ``AWS_ENDPOINT_URL``, ``AWS_ALLOW_HTTP``, ... for S3; the same variables as
  ``DeltaTableDatabase`` without ``storage_options``);
* a file: a ``SQLiteDatabase`` (recognised by the SQLite file header, whatever its name);
* a ``postgresql://`` (or ``postgres://``) URI: a ``PostgreSQLDatabase``.

The store is taken as text, never as a file-system path (which would turn ``s3://b/p`` into
``s3:/b/p``). A command takes it from, in this order: its positional ``STORE`` argument
(where the command has one), ``--store STORE``, or the ``ORCAPOD_STORE`` environment
variable. Nothing of the user's code is imported: every command reads the store through
``orcapod.pipeline.StoreView``.

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

from orcapod import databases
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
    "is_uri",
    "lazy_console",
    "open_store",
    "print_rows",
    "run_id",
    "short_run",
    "store_database",
    "text",
]

STORE_ENV = "ORCAPOD_STORE"
#: where ``orcapod demo`` keeps its store (relative to the working directory)
DEMO_STORE = Path("orcapod-demo")
RUN_ID_CHARS = 8

_STORE_KINDS = (
    "a directory, s3://bucket/prefix (or another object-store URI), a SQLite file or a "
    "postgresql:// URI"
)
#: the ``--store`` option of every command that reads a store
StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        metavar="<store>",
        help=f"The store: {_STORE_KINDS} (default: ${STORE_ENV}).",
        show_default=False,
    ),
]
#: the optional positional ``STORE`` of ``status``, ``runs`` and ``graph``
StoreArgument = Annotated[
    str | None,
    typer.Argument(
        help=f"The store: {_STORE_KINDS} (or --store, or ${STORE_ENV}).", show_default=False
    ),
]
#: what every "no store" error says the commands accept
_ACCEPTED = (
    "pass the store the pipeline writes to: the directory of its DeltaTableDatabase, the "
    "URI of a DeltaTableDatabase on object storage (s3://bucket/prefix, credentials from the "
    "AWS_* environment variables), the file of its SQLiteDatabase or the postgresql:// URI "
    "of its PostgreSQLDatabase"
)
#: the first bytes of every SQLite database file
_SQLITE_HEADER = b"SQLite format 3\x00"


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


def open_store(positional: str | None = None, option: str | None = None) -> store_view.StoreView:
    """The store named by the positional argument, ``--store`` or ``ORCAPOD_STORE``."""
    location = positional or option
    if not location:
        raise fail(
            f"no store given: pass the store (as STORE or --store STORE: {_STORE_KINDS}) or "
            f"set {STORE_ENV}"
        )
    return store_view.StoreView(store_database(location))


def is_uri(location: str) -> bool:
    """Whether the store ``location`` is a URI (object storage, PostgreSQL), not a path."""
    return "://" in location


def store_database(location: str) -> databases.ArrowDatabase:
    """The database of the store ``location`` (module docstring), opened to read what is
    there (nothing is created); fails, saying what the commands accept, when a local
    ``location`` names no store."""
    try:
        if is_uri(location):
            scheme = location.partition("://")[0].lower()
            if scheme in ("postgresql", "postgres"):
                return databases.PostgreSQLDatabase(location)
            return databases.DeltaTableDatabase(location, create_base_path=False)
        path = Path(location)
        if path.is_file():
            if not _is_sqlite(path):
                raise fail(f"{location} is a file but not a SQLite store: {_ACCEPTED}")
            return databases.SQLiteDatabase(path)
        if not path.is_dir():
            raise fail(f"no store at {location!r}: {_ACCEPTED}")
        not_a_store = _not_a_store(path)
        if not_a_store:
            raise fail(not_a_store)
        return databases.DeltaTableDatabase(path, create_base_path=False)
    except OrcapodError as err:
        raise fail(str(err)) from err


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    except OSError:
        return False


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
    store no pipeline has written to yet)."""
    raw = os.fspath(path)
    if _has_markers(path):
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
