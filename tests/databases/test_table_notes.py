"""Notes beside a Delta table: damaged or foreign files read as no note; a table created
again gets another token, so its old notes are not believed."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pyarrow.fs as pafs

from orcapod.databases import DeltaTableDatabase
from orcapod.databases.table_files import TableFiles
from orcapod.databases.table_notes import load_note, save_note

P = ("results", "fn")


def _files(db: DeltaTableDatabase) -> TableFiles:
    files = TableFiles.for_table(db.table_uri(P), pafs.LocalFileSystem())
    assert files is not None
    return files


def _stored(db: DeltaTableDatabase, ids: list[str]) -> None:
    db.add_records(P, pa.table({"id": ids, "v": list(range(len(ids)))}), "id", flush=True)


def test_a_damaged_or_edited_note_reads_as_none(tmp_path) -> None:
    db = DeltaTableDatabase(tmp_path)
    _stored(db, ["a"])
    db.write_note(P, "checked", "all good")
    assert db.read_note(P, "checked") == "all good"
    note = next(tmp_path.rglob("checked.json"))
    body = json.loads(note.read_text())
    body["text"] = "forged"  # the checksum no longer matches
    note.write_text(json.dumps(body))
    assert db.read_note(P, "checked") is None
    note.write_text("{not json")
    assert db.read_note(P, "checked") is None
    assert load_note(_files(db), "missing") is None


def test_a_table_created_again_does_not_inherit_the_notes_of_the_old_one(tmp_path) -> None:
    db = DeltaTableDatabase(tmp_path)
    _stored(db, ["a"])
    db.write_note(P, "checked", "all good")
    token = db.table_token(P)
    table_dir = tmp_path / "results" / "fn"
    saved = next(table_dir.rglob("checked.json")).read_bytes()
    shutil.rmtree(table_dir)
    again = DeltaTableDatabase(tmp_path)
    _stored(again, ["b"])  # the same version as before, another table
    assert again.table_token(P) not in (None, token)
    note = table_dir / "_orcapod_index" / "notes" / "checked.json"
    note.parent.mkdir(parents=True, exist_ok=True)
    note.write_bytes(saved)  # even the old note file put back
    assert again.read_note(P, "checked") is None


def test_a_note_that_cannot_be_written_is_not_an_error(tmp_path) -> None:
    db = DeltaTableDatabase(tmp_path)
    _stored(db, ["a"])
    blocker = tmp_path / "results" / "fn" / "_orcapod_index" / "notes"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the notes directory should be")
    assert save_note(_files(db), "checked", "token", "text") is False
    db.write_note(P, "checked", "all good")  # the caller just does the work next time
    assert db.read_note(P, "checked") is None


def test_appended_token_is_none_once_another_writer_or_a_delete_changed_the_table(
    tmp_path,
) -> None:
    import deltalake

    mine, other = DeltaTableDatabase(tmp_path), DeltaTableDatabase(tmp_path)
    _stored(mine, ["a"])
    start = mine.table_token(P)
    _stored(mine, ["b"])
    assert mine.appended_token(P, start) == mine.table_token(P)
    assert other.appended_token(P, start) is None  # not appended through that object
    _stored(other, ["c"])  # another process's commit
    assert mine.appended_token(P, start) is None
    again = mine.table_token(P)
    _stored(mine, ["d"])
    assert mine.appended_token(P, again) == mine.table_token(P)
    deltalake.DeltaTable(mine.table_uri(P)).delete("v = 0")  # not an append
    assert mine.appended_token(P, again) is None
