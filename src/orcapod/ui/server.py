"""``serve(store, ...)``: run the web view of a store with uvicorn.

Decisions:

* It binds to ``127.0.0.1`` by default: the view has no authentication, and a store may hold
  data that must not leave the machine. Another address needs ``allow_remote=True``
  (``orcapod ui --host ADDRESS --allow-remote``) and prints a warning on stderr; without it,
  a non-loopback address is refused with ``InputValidationError`` before anything listens.
* ``port=0`` picks a free port; the address actually served is printed on start.
* Only uvicorn's warnings are logged (no access log): the page URLs name the store's nodes.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from typing import TextIO

import uvicorn

from orcapod.databases import ArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.ui.app import create_app

__all__ = ["is_loopback", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    store: str | os.PathLike[str] | ArrowDatabase,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allow_remote: bool = False,
    poll_seconds: float = 2.0,
    out: TextIO | None = None,
) -> None:
    """Serve the web view of ``store`` until interrupted (module docstring)."""
    out = out if out is not None else sys.stderr
    if not is_loopback(host):
        if not allow_remote:
            raise InputValidationError(
                f"refusing to serve the store on {host!r}: the web view has no "
                "authentication, so it binds to 127.0.0.1 unless told otherwise; pass "
                "--allow-remote (allow_remote=True) to serve it on another address"
            )
        print(
            f"warning: serving on {host}: anyone who can reach this machine on port "
            f"{port or '(free)'} can read the store (there is no authentication)",
            file=out,
            flush=True,
        )
    app = create_app(store, poll_seconds=poll_seconds)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait from now on, so the address printed below works
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    print(f"orcapod ui: http://{shown}:{bound}/  (Ctrl+C to stop)", file=out, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
