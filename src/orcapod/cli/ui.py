"""``orcapod ui [STORE] [--port N]``: serve a read-only web view of a store.

It needs the ``ui`` extra (``pip install 'orcapod[ui]'``: starlette, uvicorn, jinja2). The
web server is imported when the command runs, not when the command line starts, so
``orcapod --help`` stays fast and works without the extra. The view binds to 127.0.0.1;
``--host ADDRESS`` with another address also needs ``--allow-remote`` and prints a warning
(``orcapod.ui.server``). ``--port 0`` picks a free port. ``--poll S`` sets how often pages
check the store for changes (0: never).
"""

from __future__ import annotations

from typing import Annotated

import typer

from orcapod.cli.options import StoreArgument, StoreOption, fail, open_store
from orcapod.errors import OrcapodError

__all__ = ["ui"]


def ui(
    store: StoreArgument = None,
    store_option: StoreOption = None,
    port: Annotated[
        int, typer.Option("--port", "-p", min=0, max=65535, help="Port (0: a free one).")
    ] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (default: loopback only).")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a non-loopback --host (anyone reaching it can read)."
        ),
    ] = False,
    poll: Annotated[
        float,
        typer.Option("--poll", help="Seconds between the pages' refresh checks (0: never)."),
    ] = 2.0,
) -> None:
    """Serve a read-only web view of the store: graph, nodes, rows, lineage, runs."""
    view = open_store(store, store_option)
    try:
        from orcapod.ui.server import serve  # the web stack: only when serving
    except ImportError as err:
        raise fail(
            f"orcapod ui needs the ui extra ({err.name} is missing): pip install 'orcapod[ui]'"
        ) from err
    try:
        serve(view.database, host, port, allow_remote=allow_remote, poll_seconds=poll)
    except OrcapodError as err:
        raise fail(str(err)) from err
    except OSError as err:
        raise fail(f"cannot listen on {host}:{port}: {err}; choose another --port") from err
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
