"""A saved pipeline names its store and ``Pipeline.load`` opens it again: SQLite by its file
(relative to the pipeline file when inside its folder), PostgreSQL by its URI without the
password, object storage by its URI (its storage_options are never saved); a missing local
store is an error naming it, never created."""

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orcapod.cli.demo import SUBJECTS, VISITS, classify, compute_bmi
from orcapod.databases import ArrowDatabase, DeltaTableDatabase, PostgreSQLDatabase, SQLiteDatabase
from orcapod.errors import PipelineError
from orcapod.pipeline import LoadStatus, Pipeline
from orcapod.pipeline.saved_databases import without_password
from orcapod.sources import DictSource

S3_SERVER = Path(__file__).parents[1] / "databases" / "s3_server.py"
_BUCKETS = itertools.count()


def _demo(database: ArrowDatabase) -> Pipeline:
    """The demo pipeline (``orcapod demo``) over ``database``."""
    subjects = DictSource(SUBJECTS, tag_columns=["subject"], source_id="subjects")
    visits = DictSource(VISITS, tag_columns=["subject", "visit"], source_id="visits")
    pipeline = Pipeline("demo", database)
    with pipeline:
        classify.pod(compute_bmi.pod(visits.join(subjects)))
    return pipeline


def _rows(pipeline: Pipeline) -> list[dict]:
    return (
        pipeline.classify.as_table()
        .sort_by([("subject", "ascending"), ("visit", "ascending")])
        .to_pylist()
    )


def test_a_sqlite_store_in_the_project_is_saved_relative_and_reopened_after_a_move(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    pipeline = _demo(SQLiteDatabase(project / "store.sqlite"))
    assert pipeline.run().computed == 10
    path = pipeline.save(project / "pipeline.json")
    config = json.loads(path.read_text())["databases"]["pipeline"]
    assert config == {
        "type": "sqlite",
        "path": "store.sqlite",
        "relative": True,
        "batch_size": 10_000,
    }
    shutil.move(project, tmp_path / "moved")
    loaded = Pipeline.load(tmp_path / "moved" / "pipeline.json")
    assert set(loaded.load_statuses.values()) == {LoadStatus.FULL}
    assert loaded.run().computed == 0
    assert _rows(loaded) == _rows(pipeline)


def test_a_missing_local_store_is_named_and_not_created(tmp_path):
    for database, store in (
        (DeltaTableDatabase(tmp_path / "delta"), tmp_path / "delta"),
        (SQLiteDatabase(tmp_path / "s.sqlite"), tmp_path / "s.sqlite"),
    ):
        pipeline = _demo(database)
        pipeline.run()
        path = pipeline.save(tmp_path / "pipeline.json")
        del pipeline, database
        if store.is_dir():
            shutil.rmtree(store)
        else:
            store.unlink()
        with pytest.raises(PipelineError, match=f"the store {store}, which does not exist"):
            Pipeline.load(path)
        assert not store.exists()


def test_a_postgresql_store_is_saved_without_its_password_and_reopened(tmp_path, postgresql_server):
    uri = postgresql_server.fresh_uri()  # the test server trusts local logins
    with_password = uri.replace("postgres@", "postgres:s3cret-pw@")
    pipeline = _demo(PostgreSQLDatabase(with_password))
    assert pipeline.run().computed == 10
    path = pipeline.save(tmp_path / "pipeline.json")
    assert "s3cret-pw" not in path.read_text()
    config = json.loads(path.read_text())["databases"]["pipeline"]
    assert config["type"] == "postgresql" and config["uri"] == uri
    loaded = Pipeline.load(path)
    assert set(loaded.load_statuses.values()) == {LoadStatus.FULL}
    assert loaded.run().computed == 0
    assert _rows(loaded) == _rows(pipeline)


def test_without_password_keeps_everything_else():
    assert without_password("postgresql://ada:pw@db.lab:5433/study?options=-cx%3Dy") == (
        "postgresql://ada@db.lab:5433/study?options=-cx%3Dy"
    )
    assert without_password("postgresql://ada@db.lab/study?password=pw&sslmode=require") == (
        "postgresql://ada@db.lab/study?sslmode=require"
    )
    assert without_password("postgresql://db.lab/study") == "postgresql://db.lab/study"


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    """The storage options of an S3 API server on loopback, for this module's tests."""
    proc = subprocess.Popen(
        [sys.executable, str(S3_SERVER)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"the S3 server did not start: {proc.communicate()[1]}"
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{int(line)}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    finally:
        proc.kill()
        proc.communicate()


def _bucket(options: dict[str, str]) -> str:
    import boto3

    name = f"orcapod-saved-{next(_BUCKETS)}"
    boto3.client(
        "s3",
        endpoint_url=options["AWS_ENDPOINT_URL"],
        aws_access_key_id=options["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=options["AWS_SECRET_ACCESS_KEY"],
        region_name=options["AWS_REGION"],
    ).create_bucket(Bucket=name)
    return f"s3://{name}/store"


def test_an_s3_store_is_saved_without_its_options_and_load_says_what_to_pass(
    tmp_path, s3, monkeypatch
):
    for name in s3:  # no credentials from the environment either
        monkeypatch.delenv(name, raising=False)
    base = _bucket(s3)
    pipeline = _demo(DeltaTableDatabase(base, storage_options=s3))
    pipeline.run()
    path = pipeline.save(tmp_path / "pipeline.json")
    assert "testing" not in path.read_text()
    config = json.loads(path.read_text())["databases"]["pipeline"]
    assert config["base_path"] == base and config["storage_options"] == "not saved"
    with pytest.raises(PipelineError) as raised:
        Pipeline.load(path)
    said = str(raised.value)
    assert f"pass pipeline_database=DeltaTableDatabase({base!r}, storage_options=" in said
    assert "storage_options are never saved" in said
    given = Pipeline.load(path, pipeline_database=DeltaTableDatabase(base, storage_options=s3))
    assert set(given.load_statuses.values()) == {LoadStatus.FULL}
    assert given.run().computed == 0
    assert _rows(given) == _rows(pipeline)
