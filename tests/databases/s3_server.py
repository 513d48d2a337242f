"""An S3 API server on loopback for tests and benchmarks: moto's server app behind a wrapper
that counts requests.

Run as a script (``python s3_server.py``): it binds 127.0.0.1 on a free port, prints
``<port>`` on one line and serves until killed. A separate process, so a client that holds
the GIL while it waits for the network cannot stall the server.

The wrapper

* counts requests by kind (``GET``, ``LIST`` (a GET listing a bucket), ``PUT``, ``HEAD``,
  ``DELETE``, ``POST``); ``GET /_counts`` answers the counts so far as JSON (not counted), and
  ``GET /_paths`` the counts by kind and object key pattern (the key with runs of digits and
  hex digits replaced by ``#``, a listing by its prefix), to tell which files cost requests;
* serialises conditional PUTs (``If-None-Match``): moto checks for an existing object and then
  writes it in two steps, S3 does both atomically, and concurrent Delta commits rely on that.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

_NUMBERS = re.compile(r"[0-9a-f]{6,}|[0-9]+")

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"


def storage_options(endpoint: str) -> dict[str, str]:
    """What ``DeltaTableDatabase`` needs to reach the server at ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_REGION": REGION,
        "AWS_ALLOW_HTTP": "true",
    }


class CountingApp:
    """The WSGI wrapper (see the module docstring)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.counts: collections.Counter[str] = collections.Counter()
        self.paths: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._put_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "GET" and environ.get("PATH_INFO") == "/_counts":
            with self._lock:
                body = json.dumps(dict(self.counts)).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if method == "GET" and environ.get("PATH_INFO") == "/_paths":
            with self._lock:
                body = json.dumps(dict(self.paths.most_common())).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        query = environ.get("QUERY_STRING", "")
        listing = method == "GET" and "list-type" in query
        kind = "LIST" if listing else method
        where = environ.get("PATH_INFO", "")
        if listing:
            prefix = urllib.parse.parse_qs(query).get("prefix", [""])[0]
            where = f"{where}?prefix={prefix}"
        with self._lock:
            self.counts[kind] += 1
            self.paths[f"{kind} {_NUMBERS.sub('#', where)}"] += 1
        if method == "PUT" and "HTTP_IF_NONE_MATCH" in environ:
            with self._put_lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def main() -> None:
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no log line per request
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
