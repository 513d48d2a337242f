"""Fixtures shared across the whole suite: ONE real local Ray per test run, ONE real local
PostgreSQL server per test run, an executor that logs its submissions and the end-of-calls hint
(``no_more_calls``), ``markdown_runner``, which runs the python examples of a Markdown page
(README.md, docs/), and ONE S3 API server per test run (``s3_server``: moto's server app behind
a request counter, ``tests/databases/s3_server.py``, on 127.0.0.1)."""

from __future__ import annotations

import ast
import glob
import itertools
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import settings

from orcapod.databases import DeltaTableDatabase
from orcapod.executors import LocalExecutor
from orcapod.executors.capture import PacketLoggerProtocol

# Ray reads this when it is imported: with it, a Ray started on 127.0.0.1 (the session's local
# Ray, the loopback cluster of tests/executors/test_ray_cluster.py) binds to loopback only,
# instead of being mapped to the machine's own address.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
# no usage reporting: it probes the cloud metadata address, and the tests stay on loopback
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

# Property tests draw new examples on every run, which finds rare failures on a developer's
# machine; on CI (CI=true) they draw the same examples every time, so that a submission's
# result depends only on its code.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@dataclass(frozen=True)
class HintedExecutor(LocalExecutor):
    """A thread-pool executor that logs submissions (``submit <x>``) and the ``no_more_calls``
    hint (``no more calls``) in ``log``."""

    log: list[str] = field(default_factory=list, compare=False)

    def submit_callable(
        self,
        fn: Callable[..., Any],
        kwargs: Mapping[str, Any],
        executor_options: Mapping[str, Any] | None = None,
        *,
        logger: PacketLoggerProtocol | None = None,
    ) -> Future[Any]:
        self.log.append(f"submit {kwargs['x']}")
        return super().submit_callable(fn, kwargs, executor_options, logger=logger)

    def no_more_calls(self) -> None:
        self.log.append("no more calls")


@pytest.fixture
def hinted_executor() -> Callable[[int], HintedExecutor]:
    """Makes a ``HintedExecutor`` with ``max_workers`` threads."""
    return lambda max_workers: HintedExecutor(max_workers=max_workers)


@pytest.fixture(scope="session")
def ray_session() -> Iterator[ModuleType]:
    """A real local Ray (2 CPUs, no dashboard, on 127.0.0.1 only), started once per test run
    and shut down after.

    ``RAY_AUTH_MODE=disabled`` keeps Ray from writing ``~/.ray/auth_token``; session files go to
    Ray's temp dir (/tmp/ray).
    """
    ray = pytest.importorskip("ray")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            logging_level="ERROR",
            _node_ip_address="127.0.0.1",
        )
        try:
            yield ray
        finally:
            ray.shutdown()


def _shown_after(lines: list[str], end_lineno: int) -> list[str]:
    """The ``# `` comment lines right after a statement: what it shows (its value or output)."""
    shown = []
    for line in lines[end_lineno:]:
        if not line.startswith("# "):
            break
        shown.append(line[2:])
    return shown


def run_markdown_python(
    markdown: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """Run the fenced ```python blocks of ``markdown`` in order in one fresh namespace.

    The statements run one by one from a real file in ``workdir`` holding the page's code (so
    ``inspect.getsource`` and function identity see them as a user's script would). An
    expression statement, a ``print(...)`` call or a ``for`` loop followed directly by
    ``# `` comment lines must show exactly that: the expression's ``repr``, or the printed
    lines. Returns the namespace.
    """
    blocks = re.findall(r"```python\n(.*?)```", markdown.read_text(), flags=re.S)
    assert blocks, f"{markdown.name} has no python blocks"
    script = workdir / f"{markdown.stem.replace('-', '_')}_example.py"
    script.write_text("".join(blocks))
    filename = str(script)
    namespace: dict[str, Any] = {"__name__": f"{script.stem}"}
    offset = 0
    for block in blocks:
        lines = block.splitlines()
        for node in ast.parse(block).body:
            code = ast.get_source_segment(block, node)
            shown = _shown_after(lines, node.end_lineno or node.lineno)
            ast.increment_lineno(node, offset)
            prints = (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "print"
            )
            where = f"{markdown.name}: {code}"
            if (isinstance(node, ast.For) or prints) and shown:
                capsys.readouterr()
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
                assert capsys.readouterr().out.splitlines() == shown, where
            elif isinstance(node, ast.Expr) and shown:
                value = eval(compile(ast.Expression(node.value), filename, "eval"), namespace)
                assert repr(value) == "\n".join(shown), where
            else:
                exec(compile(ast.Module([node], []), filename, "exec"), namespace)
        offset += block.count("\n")
    return namespace


@pytest.fixture
def markdown_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[[Path], dict[str, Any]]:
    """Runs a Markdown page's python examples in ``tmp_path`` (see ``run_markdown_python``)."""
    monkeypatch.chdir(tmp_path)
    return lambda markdown: run_markdown_python(markdown, tmp_path, capsys)


@dataclass
class PostgresServer:
    """A PostgreSQL server started for the test run (``postgresql_server``)."""

    port: int
    database: str = "orcapod_test"
    schemas: Iterator[int] = field(default_factory=itertools.count)
    connections: dict[str, Any] = field(default_factory=dict)

    def uri(self, schema: str | None = None) -> str:
        uri = f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"
        return uri if schema is None else f"{uri}?options=-csearch_path%3D{schema}"

    def execute(self, sql: str, database: str | None = None) -> None:
        """Run ``sql`` on ``database`` (one kept connection per database)."""
        import adbc_driver_postgresql.dbapi as pg

        name = database or self.database
        conn = self.connections.get(name)
        if conn is None:
            uri = f"postgresql://postgres@127.0.0.1:{self.port}/{name}"
            conn = self.connections[name] = pg.connect(uri, autocommit=True)
        with conn.cursor() as cursor:
            cursor.execute(sql)

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()
        self.connections.clear()

    def fresh_uri(self) -> str:
        """The URI of a new, empty schema: each test gets a store of its own."""
        schema = f"test_{next(self.schemas)}"
        self.execute(f"CREATE SCHEMA {schema}")
        return self.uri(schema)


def _postgres_bin() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if not candidates:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) are missing; `make test` installs "
            "them (apt-get install postgresql), or install them by hand."
        )
    return Path(candidates[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server in a temporary directory, on a free loopback port (unix socket
    in the same directory), stopped and deleted at the end of the run. initdb refuses to run
    as root, so as root the server runs as the ``postgres`` user (or ``nobody``)."""
    bindir = _postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="orcapod-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", user.pw_name, "--"]
    data, log, port = root / "data", root / "server.log", _free_port()

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            pytest.fail(f"{args[0]} failed: {done.stdout}{done.stderr}{server_log}")

    options = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
        "-c fsync=off -c full_page_writes=off -c max_connections=200"
    )
    run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-A",
        "trust",
        "-U",
        "postgres",
        "--no-sync",
        "-E",
        "UTF8",
        "--locale=C",
    )
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log),
        "-w",
        "-t",
        "60",
        "-o",
        options,
        "start",
    )
    try:
        server = PostgresServer(port)
        server.execute(f"CREATE DATABASE {server.database}", database="postgres")
        try:
            yield server
        finally:
            server.close()
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


# -- the S3 API server ------------------------------------------------------------------------

SERVER_SCRIPT = Path(__file__).parent / "databases" / "s3_server.py"


@dataclass
class S3Server:
    """The test run's S3 API server (``s3_server``)."""

    endpoint: str
    options: dict[str, str]
    buckets: Iterator[int] = field(default_factory=itertools.count)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.options["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.options["AWS_SECRET_ACCESS_KEY"],
            region_name=self.options["AWS_REGION"],
        )

    def fresh_bucket(self) -> str:
        """A new, empty bucket: each test gets a store of its own."""
        name = f"orcapod-test-{next(self.buckets)}"
        self.client().create_bucket(Bucket=name)
        return name

    def fresh_store(self, **kwargs: Any) -> DeltaTableDatabase:
        """A ``DeltaTableDatabase`` at ``s3://<fresh bucket>/store``."""
        base = f"s3://{self.fresh_bucket()}/store"
        return DeltaTableDatabase(base, storage_options=self.options, **kwargs)

    def keys(self, bucket: str, prefix: str) -> set[str]:
        """The object keys under ``prefix`` in ``bucket``."""
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        )
        return {item["Key"] for page in pages for item in page.get("Contents", [])}

    def counts(self) -> dict[str, int]:
        """Requests the server answered so far, by kind (GET, LIST, PUT, HEAD, ...)."""
        with urllib.request.urlopen(f"{self.endpoint}/_counts", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    def since(self, before: dict[str, int]) -> dict[str, int]:
        """Requests answered since ``counts()`` returned ``before``, by kind (kinds with none
        left out)."""
        after = self.counts()
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    def paths(self) -> dict[str, int]:
        """Requests so far by kind and object key pattern (``s3_server.py``)."""
        with urllib.request.urlopen(f"{self.endpoint}/_paths", timeout=10) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server in a subprocess on a free loopback port, stopped at the end of the run."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            proc.kill()
            pytest.fail(f"the S3 server did not start: {line}{proc.communicate()[1]}")
        endpoint = f"http://127.0.0.1:{int(line)}"
        yield S3Server(endpoint, _server_options(endpoint))
    finally:
        proc.kill()
        proc.communicate()


def _server_options(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_ALLOW_HTTP": "true",
    }
