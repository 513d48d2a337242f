"""The store every command reads, named as the pipeline's database was built: a local Delta
directory, a Delta store on object storage (``s3://``, credentials from ``AWS_*`` environment
variables), a SQLite file or a ``postgresql://`` URI - through the installed script."""

import csv
import io

_DELTA = 'DeltaTableDatabase("store")'


def _on(study_code: str, database: str, module: str = "DeltaTableDatabase") -> str:
    """``study.py`` writing to ``database`` instead of its local Delta store."""
    code = study_code.replace(_DELTA, database)
    if module != "DeltaTableDatabase":
        code = code.replace(
            "from orcapod.databases import DeltaTableDatabase",
            f"from orcapod.databases import {module}",
        )
    return code


def _reads_the_study(cli, store: str, env=None):  # type: ignore[no-untyped-def]
    """Every store-reading command answers about the study run in ``store``."""
    status = cli("status", store, env=env).stdout
    assert "pipeline study: last run" in status
    assert f"orcapod logs study.compute_bmi --failed --store {store}" in status
    assert cli("status", env={**(env or {}), "ORCAPOD_STORE": store}).stdout == status
    shown = cli("show", "classify", "--store", store, "-f", "csv", env=env).stdout
    assert list(csv.DictReader(io.StringIO(shown))) == [
        {"patient": "ada", "category": "normal"},
        {"patient": "bob", "category": "overweight"},
    ]
    failed = cli("logs", "compute_bmi", "--failed", "--store", store, env=env).stdout
    assert "weight must be positive, got -1.0" in failed
    assert "study" in cli("runs", store, env=env).stdout
    assert "compute_bmi" in cli("graph", store, env=env).stdout


def test_a_delta_store_on_s3_is_read_with_credentials_from_the_environment(
    fresh_project, study_code, s3_env
):
    bucket = s3_env.fresh_bucket("cli-study")
    store = f"s3://{bucket}/store"
    # the script passes the credentials on (the commands read them from the environment)
    options = "{k: v for k, v in __import__('os').environ.items() if k.startswith('AWS_')}"
    database = f'DeltaTableDatabase("{store}", storage_options={options})'
    cli = fresh_project(_on(study_code, database))
    ran = cli("run", "study.py", env=s3_env.env).stdout
    assert f"orcapod logs study.compute_bmi --failed --store {store}" in ran
    _reads_the_study(cli, store, env=s3_env.env)


def test_a_missing_bucket_is_named_as_given(tmp_path, orcapod_in, s3_env):
    done = orcapod_in(tmp_path, "status", "s3://no-such-bucket/store", env=s3_env.env)
    assert done.returncode == 1
    error = " ".join(done.stderr.split())
    assert "'s3://no-such-bucket/store'" in error and "s3:/no" not in error


def test_a_sqlite_store_is_read_from_its_file(fresh_project, study_code):
    cli = fresh_project(_on(study_code, 'SQLiteDatabase("study.sqlite")', "SQLiteDatabase"))
    cli("run", "study.py")
    _reads_the_study(cli, "study.sqlite")


def test_a_postgresql_store_is_read_from_its_uri(fresh_project, study_code, postgresql_server):
    uri = postgresql_server.fresh_uri()
    cli = fresh_project(_on(study_code, f'PostgreSQLDatabase("{uri}")', "PostgreSQLDatabase"))
    cli("run", "study.py")
    status = cli("status", uri).stdout
    assert "pipeline study: last run" in status
    shown = cli("show", "classify", "--store", uri, "-f", "csv").stdout
    assert "ada,normal" in shown and "bob,overweight" in shown


def test_a_file_that_is_no_store_is_refused_saying_what_a_store_is(cli):
    error = " ".join(cli("status", "study.py", check=1).stderr.split())
    assert "study.py is a file but not a SQLite store" in error
    for kind in ("DeltaTableDatabase", "s3://", "SQLiteDatabase", "postgresql://"):
        assert kind in error


def test_lineage_from_a_store_alone_needs_a_local_delta_store(fresh_project, study_code):
    cli = fresh_project(_on(study_code, 'SQLiteDatabase("study.sqlite")', "SQLiteDatabase"))
    cli("run", "study.py")
    args = ("lineage", "compute_bmi", "--where", "patient=ada", "--store", "study.sqlite")
    error = " ".join(cli(*args, check=1).stderr.split())
    assert "local Delta store directory" in error and "--pipeline-file" in error


def test_store_maintenance_says_it_takes_a_local_delta_directory(tmp_path, orcapod_in):
    done = orcapod_in(tmp_path, "store", "compact", "s3://bucket/store")
    assert done.returncode == 1
    error = " ".join(done.stderr.split())
    assert "no store directory at s3://bucket/store" in error and "local file system" in error
