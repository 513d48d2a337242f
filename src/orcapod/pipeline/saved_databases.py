"""How a saved pipeline names its databases, and how ``Pipeline.load`` opens them again.

``Pipeline.save`` writes one entry per database (``"pipeline"``, ``"result"``); ``load`` opens
the store the entry names, unless the caller passes the database (``pipeline_database=``,
``result_database=``), which always wins.

* A local ``DeltaTableDatabase``: ``{"type": "delta", "base_path", "batch_size"}``, the path
  relative to the JSON file's folder when the store lies inside it (``"relative": true``), so
  a project folder can be moved or shared without leaking its absolute location.
* A ``SQLiteDatabase``: ``{"type": "sqlite", "path", "batch_size"}``, relative the same way.
  (``":memory:"`` is an in-memory store, below.)
* A ``DeltaTableDatabase`` on object storage (``s3://...``): its URI and ``batch_size``, plus
  ``"storage_options": "not saved"`` when it had some: their values may hold credentials and
  are never written. Load opens the URI without them (credentials the environment gives,
  such as ``AWS_ACCESS_KEY_ID``, apply); when it cannot be read so, the error names the URI
  and the database to pass.
* A ``PostgreSQLDatabase``: its URI WITHOUT the password (``user:secret@`` becomes ``user@``;
  a ``password=`` query parameter is dropped). Load connects with that URI: the PostgreSQL
  client takes the password from ``PGPASSWORD`` or ``~/.pgpass``, PostgreSQL's own
  conventions (orcapod adds none of its own).
* Any other database (in-memory) does not outlive its process: ``{"type": <class name>}``,
  and ``load`` needs the database passed.

Decisions:

* A local store (Delta directory, SQLite file) that does not exist is an error naming it
  (``PipelineError``), never created: the file names a store that holds the pipeline's
  source snapshots and results, so a missing one means the file was moved without it or the
  store was deleted, and an empty new store would only hide that.
* A store that cannot be read while loading (``DatabaseError``, e.g. object storage without
  its credentials, or a PostgreSQL server refusing the login) is a ``PipelineError`` naming
  the store and the database to pass instead (``describe_failure``).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orcapod.databases import ArrowDatabase, DeltaTableDatabase, PostgreSQLDatabase, SQLiteDatabase
from orcapod.errors import PipelineError

__all__ = ["database_config", "describe_failure", "open_database", "without_password"]


def without_password(uri: str) -> str:
    """``uri`` with its password left out (of the user part and of the query)."""
    parts = urllib.parse.urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}@{host}"
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() != "password"
    ]
    return urllib.parse.urlunsplit(
        parts._replace(netloc=netloc, query=urllib.parse.urlencode(query))
    )


def _local_path(path: str, folder: Path) -> dict[str, Any]:
    """``{"<path>": ...}`` relative to ``folder`` when inside it (``"relative": true``)."""
    resolved = Path(path).resolve()
    home = folder.resolve()
    if resolved.is_relative_to(home):
        return {"path": resolved.relative_to(home).as_posix(), "relative": True}
    return {"path": path}


def database_config(database: ArrowDatabase | None, folder: Path) -> dict[str, Any] | None:
    """The entry naming ``database`` in a pipeline saved in ``folder`` (module docstring)."""
    if database is None:
        return None
    if isinstance(database, DeltaTableDatabase):
        config: dict[str, Any] = {"type": "delta", "base_path": database.base_path}
        if "://" in database.base_path:
            if database.storage_option_names:
                config["storage_options"] = "not saved"
        else:
            local = _local_path(database.base_path, folder)
            config.update(base_path=local.pop("path"), **local)
        config["batch_size"] = database.batch_size
        return config
    if isinstance(database, SQLiteDatabase) and database.path != ":memory:":
        return {
            "type": "sqlite",
            **_local_path(database.path, folder),
            "batch_size": database.batch_size,
        }
    if isinstance(database, PostgreSQLDatabase):
        return {
            "type": "postgresql",
            "uri": without_password(database.uri),
            "batch_size": database.batch_size,
        }
    return {"type": type(database).__name__}


def _where(config: Mapping[str, Any], folder: Path) -> str:
    """The store an entry names: a path (absolute, as it is now) or a URI."""
    location = str(config.get("base_path") or config.get("path") or config.get("uri") or "?")
    if config.get("relative"):
        return str((folder / location).resolve())
    return location


def _instead(config: Mapping[str, Any], what: str, folder: Path) -> str:
    """What to pass to ``Pipeline.load`` instead of the entry ``config``."""
    where = _where(config, folder)
    kind = config.get("type")
    if kind == "delta" and "://" in where:
        return (
            f"pass {what}_database=DeltaTableDatabase({where!r}, storage_options={{...}}) to "
            "Pipeline.load"
        )
    if kind == "postgresql":
        return (
            f"set PGPASSWORD (or ~/.pgpass) for it, or pass {what}_database="
            f"PostgreSQLDatabase('postgresql://USER:PASSWORD@...') to Pipeline.load"
        )
    name = "DeltaTableDatabase" if kind == "delta" else "SQLiteDatabase"
    return f"pass {what}_database={name}(...) to Pipeline.load"


def open_database(config: Mapping[str, Any] | None, what: str, path: Path) -> ArrowDatabase | None:
    """Open the database an entry of the pipeline file ``path`` names (module docstring);
    ``what``: ``"pipeline"`` or ``"result"``."""
    if config is None:
        return None
    folder = path.parent
    kind = config.get("type")
    batch_size = int(config.get("batch_size", 10_000))
    where = _where(config, folder)
    if kind in ("delta", "sqlite") and "://" not in where:
        exists = Path(where).is_dir() if kind == "delta" else Path(where).is_file()
        if not exists:
            raise PipelineError(
                f"the {what} database named by {str(path)!r} is the store {where}, which does "
                f"not exist (was it moved or deleted?): put it back there, or "
                + _instead(config, what, folder)
            )
    if kind == "delta":
        if "://" in where:
            return DeltaTableDatabase(where, batch_size=batch_size)
        return DeltaTableDatabase(where, batch_size=batch_size, create_base_path=False)
    if kind == "sqlite":
        return SQLiteDatabase(where, batch_size=batch_size)
    if kind == "postgresql":
        return PostgreSQLDatabase(where, batch_size=batch_size)
    raise PipelineError(
        f"the {what} database was a {kind}, which does not outlive its process; "
        f"pass {what}_database= to Pipeline.load"
    )


def describe_failure(
    config: Mapping[str, Any] | None, what: str, path: Path, error: BaseException
) -> str:
    """Why a store named by the pipeline file ``path`` could not be read, and what to pass
    instead (``error``: what reading it raised)."""
    if config is None:
        return f"the {what} database could not be read: {error}"
    folder = path.parent
    said = f"the {what} database named by {str(path)!r}, {_where(config, folder)}, "
    said += f"could not be read ({error})"
    if config.get("type") == "delta" and config.get("storage_options"):
        said += "; its storage_options are never saved (they may hold credentials)"
    elif config.get("type") == "postgresql":
        said += "; its password is never saved"
    return f"{said}: {_instead(config, what, folder)}"
