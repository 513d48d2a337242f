"""Fixtures: every backend, so one contract suite runs over all of them.

``db`` covers the storing backends: in-memory, and Delta, SQLite and PostgreSQL each with rows
left pending (large batch) and committing every write at once (``batch_size=1``), so reads are
checked against pending rows, committed rows and their mix, and Delta on object storage
(``s3://``, the test run's S3 API server on loopback). ``any_db`` adds ``NoOpArrowDatabase`` for
the parts of the contract that it also honours (validation, views, accepting writes).
PostgreSQL stores get a fresh schema of the test run's server each, S3 stores a fresh bucket.

``s3_server`` is that server: ``s3_server.py`` beside this file (moto's server app behind a
request counter), started once per test run in a subprocess on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from orcapod.databases import (
    ArrowDatabase,
    DeltaTableDatabase,
    InMemoryArrowDatabase,
    NoOpArrowDatabase,
    PostgreSQLDatabase,
    SQLiteDatabase,
)

SERVER_SCRIPT = Path(__file__).with_name("s3_server.py")


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


#: name -> make(tmp_path, fixture getter); the getter gives the test run's servers
BACKENDS: dict[str, Callable[[Path, Callable[[str], Any]], ArrowDatabase]] = {
    "in_memory": lambda tmp, fixture: InMemoryArrowDatabase(),
    "delta_pending": lambda tmp, fixture: DeltaTableDatabase(tmp / "delta", batch_size=100_000),
    "delta_autocommit": lambda tmp, fixture: DeltaTableDatabase(tmp / "delta", batch_size=1),
    "delta_s3_pending": lambda tmp, fixture: fixture("s3_server").fresh_store(batch_size=100_000),
    "delta_s3_autocommit": lambda tmp, fixture: fixture("s3_server").fresh_store(batch_size=1),
    "sqlite_pending": lambda tmp, fixture: SQLiteDatabase(tmp / "db.sqlite", batch_size=100_000),
    "sqlite_autocommit": lambda tmp, fixture: SQLiteDatabase(tmp / "db.sqlite", batch_size=1),
    "postgresql_pending": lambda tmp, fixture: PostgreSQLDatabase(
        fixture("postgresql_server").fresh_uri(), batch_size=100_000
    ),
    "postgresql_autocommit": lambda tmp, fixture: PostgreSQLDatabase(
        fixture("postgresql_server").fresh_uri(), batch_size=1
    ),
}


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    return BACKENDS[name](tmp_path, request.getfixturevalue)


@pytest.fixture(params=sorted(BACKENDS))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    return make_backend(request.param, request, tmp_path)


@pytest.fixture(params=[*sorted(BACKENDS), "noop"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> ArrowDatabase:
    if request.param == "noop":
        return NoOpArrowDatabase()
    return make_backend(request.param, request, tmp_path)


@pytest.fixture
def delta_db(tmp_path: Path) -> DeltaTableDatabase:
    return DeltaTableDatabase(tmp_path / "delta", batch_size=100_000)
