"""A saved pipeline names its store and ``Pipeline.load`` opens it again: SQLite by its file
(relative to the pipeline file when inside its folder), PostgreSQL by its URI without the
password, object storage by its URI (its storage_options are never saved); a missing local
store is an error naming it, never created."""

import json
import shutil

import pytest

from orcapod.cli.demo import SUBJECTS, VISITS, classify, compute_bmi
from orcapod.databases import ArrowDatabase, DeltaTableDatabase, PostgreSQLDatabase, SQLiteDatabase
from orcapod.errors import PipelineError
from orcapod.pipeline import LoadStatus, Pipeline
from orcapod.pipeline.saved_databases import without_password
from orcapod.sources import DictSource


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


def test_an_s3_store_is_saved_without_its_options_and_load_says_what_to_pass(
    tmp_path, s3_server, monkeypatch
):
    s3 = s3_server.options
    for name in s3:  # no credentials from the environment either
        monkeypatch.delenv(name, raising=False)
    base = f"s3://{s3_server.fresh_bucket()}/store"
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
