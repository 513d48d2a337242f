"""``orcapod ui``: a read-only web view of a store, served on this machine.

    orcapod ui ./store            # then open http://127.0.0.1:8765/
    pip install 'orcapod[ui]'     # starlette, uvicorn and jinja2

Pages: the pipelines' graph (each node drawn by type, coloured by its last run's status,
with its counts), a node (rows paged and sortable, schema, code identity, failures with
tracebacks and captured output, runs), a row (its lineage back to the source rows) and the
run history. Pages follow a running pipeline by polling. Everything is read from the store
(``orcapod.ui.reader``); the user's code is never imported, so a store can be looked at
where its code is not installed.

Modules: ``reader`` (what the pages show), ``rows`` (a page of rows, read in the store),
``graph_svg`` (the layout and picture of a graph, no Graphviz needed), ``app`` (routes and
templates), ``server`` (uvicorn, the loopback default).

Decisions: server-rendered pages (Jinja2) with one stylesheet and a few lines of script,
all shipped in the package, so the view works offline and needs no front-end build; every
route is a GET and nothing is written to the store, except the lookup-index sidecars the
store's own queries keep beside its tables (``orcapod.databases.column_index``).
"""

from orcapod.ui.app import create_app
from orcapod.ui.server import serve

__all__ = ["create_app", "serve"]
