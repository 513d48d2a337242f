"""How a ``DeltaTableDatabase`` lays out and writes its files.

* ``prepare_local_base``: a local store directory is checked (and created when asked) when the
  database is built, so a store path that is a file or cannot be created fails at once.
* ``check_writable_dir``: whether a local store directory can be written (checked before a
  run computes anything; a read-only store can still be read).
* ``write_batch``: one compare-and-swap commit of a batch (creating the table, or appending
  to it at the version it was read at), with no retries and an application transaction
  naming the writer and the batch (``orcapod.databases.delta``: commits and exactly-once).
* ``writer_properties``: the parquet settings of a batch - snappy compression, no dictionary
  for columns whose every value is distinct (ids, hashes, source info: a dictionary would only
  cost time, about a third of a commit's encoding; measured on a 10k-row results batch,
  15.6 -> 11.4 ms per commit and 2.5 -> 1.1 MB); those of them that are strings are written
  with the DELTA_BYTE_ARRAY encoding (each value stored as its shared prefix with the one
  before and the rest: input hashes share their ``arrow_row_v1:`` head),
  which halves their encoding time and speeds their reading up (measured: 50k input hashes
  9.3 -> 4.6 ms to write; 1M ids and result ids read through a query 0.129 -> 0.069 s; the
  files are a little smaller), and a bloom filter on ``__record_id`` sized for one row
  group, so id lookups can skip files and row groups. Row groups hold at most
  ``ROW_GROUP_ROWS`` rows, so reading the row of one located id (``id_locator``) decodes a
  few thousand rows, not a whole batch. Settings are cached per column list and types.

Log clean-up. Delta removes expired log files (older than ``delta.logRetentionDuration``
and covered by a checkpoint) after a commit; deltalake lists the log to look for them after
every commit, one request per commit on object storage. Decision: only the commits that
write a checkpoint clean up (``log_cleanup``, passed to deltalake as
``post_commithook_properties``), as Delta's own writers do; a log file that expires between
two checkpoints is removed at the next one.

deltalake is imported inside ``write_batch`` and ``writer_properties`` (it costs more to
import than most of orcapod, and importing orcapod does not import it).
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from orcapod.errors import InputValidationError
from orcapod.types.columns import (
    CONTENT_HASH,
    INPUT_PACKET_HASH,
    PACKET_ID,
    RECORD_HASH,
    RECORD_ID,
    SOURCE_PREFIX,
    SYSTEM_TAG_RECORD_ID,
)

if TYPE_CHECKING:
    from deltalake import DeltaTable
    from deltalake.writer.properties import WriterProperties

__all__ = [
    "ROW_GROUP_ROWS",
    "check_writable_dir",
    "log_cleanup",
    "prepare_local_base",
    "writer_properties",
]

#: rows per parquet row group: a look-up of one id decodes one row group (``id_locator``)
ROW_GROUP_ROWS = 4096

#: columns whose every value is distinct (ids, hashes, source info)
_DISTINCT_VALUED = frozenset({RECORD_ID, INPUT_PACKET_HASH, PACKET_ID, RECORD_HASH, CONTENT_HASH})
_DISTINCT_VALUED_PREFIXES = (SOURCE_PREFIX, SYSTEM_TAG_RECORD_ID)


def writer_properties(schema: pa.Schema, bloom_ndv: int) -> WriterProperties:
    """Parquet settings for a batch of ``schema`` (see the module docstring);
    ``bloom_ndv``: the distinct ids a file's bloom filter is sized for."""
    byte_arrays = tuple(f.name for f in schema if _is_byte_array(f.type))
    return _writer_properties(tuple(schema.names), byte_arrays, bloom_ndv)


def _is_byte_array(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


@functools.lru_cache(maxsize=256)
def _writer_properties(
    names: tuple[str, ...], byte_arrays: tuple[str, ...], bloom_ndv: int
) -> WriterProperties:
    from deltalake.writer.properties import (
        BloomFilterProperties,
        ColumnProperties,
        WriterProperties,
    )

    bloom = BloomFilterProperties(True, fpp=0.01, ndv=min(bloom_ndv, ROW_GROUP_ROWS))
    columns = {
        name: ColumnProperties(
            dictionary_enabled=False,
            # (the encoding exists for byte arrays only: the writer panics on others)
            encoding="DELTA_BYTE_ARRAY" if name in byte_arrays else None,
            bloom_filter_properties=bloom if name == RECORD_ID else None,
        )
        for name in names
        if name in _DISTINCT_VALUED or name.startswith(_DISTINCT_VALUED_PREFIXES)
    }
    return WriterProperties(
        compression="SNAPPY", column_properties=columns, max_row_group_size=ROW_GROUP_ROWS
    )


def prepare_local_base(base: Path, create: bool) -> None:
    """Check a local ``base_path`` at construction (and create it when ``create``)."""
    if base.exists() and not base.is_dir():
        raise InputValidationError(
            f"The store path {str(base)!r} is a file, not a directory; pass a directory path "
            "(it is created if missing)."
        )
    if not base.exists():
        if not create:
            raise InputValidationError(
                f"The store directory {str(base)!r} does not exist; create it, or pass "
                "create_base_path=True."
            )
        try:
            base.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputValidationError(
                f"Cannot create the store directory {str(base)!r}: {err}; pass a writable location."
            ) from err


def check_writable_dir(base: str) -> None:
    """Raise ``InputValidationError`` when the local store directory ``base`` cannot be
    written."""
    try:
        with tempfile.TemporaryFile(dir=base, prefix=".orcapod-write-check-"):
            pass
    except OSError as err:
        raise InputValidationError(
            f"The store directory {base!r} is not writable ({err}); pass a directory "
            "you can write to, or fix its permissions."
        ) from err


def log_cleanup(table: DeltaTable | None, version: int) -> bool | None:
    """Whether the commit of ``version`` cleans up expired log files: only one that writes a
    checkpoint (None: as the table's settings say), as Delta's own writers do; every other
    commit would list the log for nothing (module docstring)."""
    if table is None:
        return False
    interval = table.metadata().configuration.get("delta.checkpointInterval", "100")
    try:
        # (deltalake checkpoints version v when v + 1 is a multiple of the interval)
        return None if (version + 1) % max(int(interval), 1) == 0 else False
    except ValueError:
        return None


def write_batch(
    target: str | DeltaTable,
    batch: pa.Table,
    base: int,
    transaction: tuple[str, int],
    configuration: dict[str, str],
    storage_options: dict[str, str] | None,
    bloom_ndv: int,
) -> None:
    """Commit ``batch`` in one compare-and-swap write (module docstring): create the table at
    the URI ``target`` with ``configuration``, or append to the table ``target`` on top of its
    version ``base`` (schema merged). Raises deltalake's ``CommitFailedError`` when another
    writer committed first; the commit records the application transaction
    ``transaction`` = (writer id, sequence number)."""
    from deltalake import write_deltalake
    from deltalake.transaction import CommitProperties, PostCommitHookProperties, Transaction

    props = CommitProperties(max_commit_retries=0, app_transactions=[Transaction(*transaction)])
    table = None if isinstance(target, str) else target
    hooks = PostCommitHookProperties(cleanup_expired_logs=log_cleanup(table, base + 1))
    properties = writer_properties(batch.schema, bloom_ndv)
    if table is None:
        write_deltalake(
            target,
            batch,
            mode="error",
            configuration=configuration,
            storage_options=storage_options,
            writer_properties=properties,
            commit_properties=props,
            post_commithook_properties=hooks,
        )
    else:
        write_deltalake(
            table,
            batch,
            mode="append",
            schema_mode="merge",
            writer_properties=properties,
            commit_properties=props,
            post_commithook_properties=hooks,
        )
