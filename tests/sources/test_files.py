import polars as pl
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from orcapod.errors import InputValidationError, SchemaError
from orcapod.sources import CSVSource, DeltaTableSource


def test_csv_source_reads_the_file_and_hashes_its_content(tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,age\nann,30\nbob,40\n")
    src = CSVSource(path, ["name"])
    assert src.source_id == "people"
    assert [p.as_dict() for _, p in src] == [{"age": 30}, {"age": 40}]
    before = src.content_hash()
    path.write_text("name,age\nann,31\nbob,40\n")
    assert CSVSource(path, ["name"]).content_hash() != before
    assert CSVSource(path, ["name"]).pipeline_hash() == src.pipeline_hash()


def test_csv_source_errors(tmp_path):
    with pytest.raises(InputValidationError, match="no such file"):
        CSVSource(tmp_path / "missing.csv", ["a"])
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputValidationError, match="'zz'"):
        CSVSource(path, ["zz"])


def test_delta_table_source(tmp_path):
    location = tmp_path / "tbl"
    write_deltalake(location, pl.DataFrame({"k": ["a", "b"], "v": [1, 2]}).to_arrow())
    src = DeltaTableSource(location, ["k"])
    assert src.source_id == "tbl"
    assert [(t["k"], p["v"]) for t, p in src] == [("a", 1), ("b", 2)]
    before = src.content_hash()
    write_deltalake(location, pl.DataFrame({"k": ["c"], "v": [3]}).to_arrow(), mode="append")
    assert DeltaTableSource(location, ["k"]).content_hash() != before
    with pytest.raises(InputValidationError, match="Delta table"):
        DeltaTableSource(tmp_path / "nothing", ["k"])


def _record_ids(source):
    table = source.as_table(columns={"system_tags": True})
    column = next(c for c in table.column_names if c.startswith("_tag_record_id"))
    return dict(zip(table.column("k").to_pylist(), table.column(column).to_pylist(), strict=True))


def test_appending_to_a_delta_table_keeps_the_record_ids_of_its_old_rows(tmp_path):
    location = tmp_path / "tbl"
    write_deltalake(location, pa.table({"k": ["a", "b"], "v": [1, 2]}))
    for key, value in (("c", 3), ("d", 4)):
        write_deltalake(location, pa.table({"k": [key], "v": [value]}), mode="append")
    DeltaTable(location).create_checkpoint()
    write_deltalake(location, pa.table({"k": ["e"], "v": [5]}), mode="append")
    source = DeltaTableSource(location, ["k"])
    assert _record_ids(source) == {
        "a": "row_0",
        "b": "row_1",
        "c": "row_2",
        "d": "row_3",
        "e": "row_4",
    }
    assert source.resolve_field("row_0", "v") == 1


def test_a_partitioned_delta_table_reads_appended_rows_after_the_old_ones(tmp_path):
    location = tmp_path / "tbl"
    keys = [f"r{i}" for i in range(6)]
    write_deltalake(
        location, pa.table({"k": keys, "p": [i % 3 for i in range(6)]}), partition_by=["p"]
    )
    before = _record_ids(DeltaTableSource(location, ["k"]))
    write_deltalake(location, pa.table({"k": ["new"], "p": [0]}), partition_by=["p"], mode="append")
    after = _record_ids(DeltaTableSource(location, ["k"]))
    assert after == {**before, "new": "row_6"}


def test_a_csv_column_of_empty_cells_fails_at_construction_saying_to_pass_a_schema(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,v,w\na,,1\nb,,2\n")
    with pytest.raises(SchemaError, match=r"column 'v'.*schema=\{'v': str\}"):
        CSVSource(path, ["id"])
    assert CSVSource(path, ["id"], schema={"v": int}).output_schema()[1]["v"] == int | None


# --- file manifests (Path columns) ---------------------------------------------------------


def _manifest(tmp_path, rows):
    (tmp_path / "images").mkdir(exist_ok=True)
    for name in ("a.bin", "b.bin"):
        (tmp_path / "images" / name).write_bytes(name.encode())
    path = tmp_path / "manifest.csv"
    path.write_text("sid,image\n" + "".join(f"{sid},{image}\n" for sid, image in rows))
    return path


def test_csv_path_columns_are_a_file_manifest(tmp_path, monkeypatch):
    from pathlib import Path

    from orcapod.types import Schema

    manifest = _manifest(tmp_path, [(1, "images/a.bin"), (2, tmp_path / "images" / "b.bin")])
    monkeypatch.chdir(tmp_path / "images")  # relative paths are the CSV's, not the cwd's
    src = CSVSource(manifest, ["sid"], schema={"image": Path})
    assert src.output_schema() == (Schema({"sid": int}), Schema({"image": Path}))
    values = [p["image"] for _, p in src]
    assert values == [tmp_path / "images" / "a.bin", tmp_path / "images" / "b.bin"]
    assert all(isinstance(v, Path) for v in values)
    assert list(src.as_pandas_df()["image"]) == values
    assert list(src.as_polars_df()["image"]) == values
    before = src.content_hash()
    (tmp_path / "images" / "a.bin").write_bytes(b"edited")
    assert CSVSource(manifest, ["sid"], schema={"image": Path}).content_hash() != before


def test_an_empty_manifest_cell_is_none_not_the_current_directory(tmp_path):
    from pathlib import Path

    manifest = _manifest(tmp_path, [(1, "images/a.bin"), (2, "")])
    src = CSVSource(manifest, ["sid"], schema={"image": Path | None})
    assert [p["image"] for _, p in src][1] is None


def test_csv_types_a_cell_cannot_hold_are_refused(tmp_path):
    import numpy as np
    from numpy.typing import NDArray

    from orcapod.errors import SchemaError

    manifest = _manifest(tmp_path, [(1, "images/a.bin")])
    with pytest.raises(SchemaError, match="cannot hold"):
        CSVSource(manifest, ["sid"], schema={"image": list[str]})
    with pytest.raises(SchemaError, match="cannot hold"):
        CSVSource(manifest, ["sid"], schema={"image": NDArray[np.float32]})


def test_a_missing_file_in_a_manifest_fails_only_its_own_row_until_it_exists(tmp_path):
    import warnings
    from pathlib import Path

    from orcapod import Pipeline, function_pod
    from orcapod.databases import DeltaTableDatabase
    from orcapod.errors import FailedRowsWarning

    @function_pod("size")
    def file_size(image: Path) -> int:
        return len(image.read_bytes())

    manifest = _manifest(tmp_path, [(1, "images/a.bin"), (2, "images/gone.bin")])

    def run() -> tuple[object, Pipeline]:
        pipeline = Pipeline("sizes", DeltaTableDatabase(tmp_path / "store"))
        with pipeline:
            file_size.pod(CSVSource(manifest, ["sid"], schema={"image": Path}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = pipeline.run()
        assert any(issubclass(w.category, FailedRowsWarning) for w in caught) == bool(
            summary.failed
        )
        return summary, pipeline

    summary, pipeline = run()
    assert (summary.computed, summary.failed) == (1, 1)
    (failure,) = pipeline.file_size.failures().to_pylist()
    assert failure["sid"] == 2 and failure["__error_type"] == "builtins.FileNotFoundError"
    assert "gone.bin" in failure["__error_message"]
    (tmp_path / "images" / "gone.bin").write_bytes(b"here now")
    summary, pipeline = run()
    assert (summary.computed, summary.reused, summary.failed) == (1, 1, 0)
    assert pipeline.file_size.as_table().to_pylist() == [
        {"sid": 1, "size": len((tmp_path / "images" / "a.bin").read_bytes())},
        {"sid": 2, "size": 8},
    ]


def test_a_delta_table_in_orcapods_array_layout_gives_its_arrays_back(tmp_path):
    import numpy as np

    from orcapod.data.conversion import columns_to_table
    from orcapod.databases.records import canonical_table
    from orcapod.types import ArrayType

    schema = {"k": str, "img": ArrayType("uint8", (2, 2)), "trace": ArrayType("float16")}
    records = columns_to_table(
        {
            "k": ["a", "b"],
            "img": [np.eye(2, dtype=np.uint8), np.full((2, 2), 255, np.uint8)],
            "trace": [np.arange(3, dtype=np.float16), np.zeros((1, 2), np.float16)],
        },
        schema,
    )
    location = tmp_path / "arrays"
    write_deltalake(location, canonical_table(records))  # what an orcapod database writes
    src = DeltaTableSource(location, ["k"])
    assert src.output_schema()[1] == {"img": schema["img"], "trace": schema["trace"]}
    packets = [p for _, p in src]
    assert packets[1]["img"].tolist() == [[255, 255], [255, 255]]
    assert packets[1]["trace"].shape == (1, 2) and packets[1]["trace"].dtype == np.float16


def test_csv_source_takes_an_arrow_schema_and_system_tag_columns(tmp_path):
    import pyarrow as pa

    path = tmp_path / "people.csv"
    path.write_text("name,lab,age\nann,l1,30\n")
    schema = pa.schema(
        [("name", pa.large_string()), ("lab", pa.large_string()), ("age", pa.float64())]
    )
    src = CSVSource(path, "name", ["lab"], schema=schema)
    assert src.output_schema()[1] == {"age": float}
    tag, _ = next(iter(src))
    assert tag.system_tags()["_tag_lab"] == "l1"


def test_csv_paths_that_are_not_a_csv_file_with_rows_fail_clearly(tmp_path):
    with pytest.raises(InputValidationError, match="is a directory; pass the path of a CSV"):
        CSVSource(tmp_path, tag_columns="a")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b\n")
    with pytest.raises(InputValidationError, match=r"has a header \(a, b\) but no rows"):
        CSVSource(header_only, tag_columns="a")


def test_delta_paths_that_are_not_a_table_directory_fail_clearly(tmp_path):
    not_a_table = tmp_path / "plain.csv"
    not_a_table.write_text("a\n1\n")
    with pytest.raises(InputValidationError, match="is a file; pass the directory of a Delta"):
        DeltaTableSource(not_a_table, tag_columns="a")
    with pytest.raises(InputValidationError, match=r"not a Delta table \(it has no _delta_log"):
        DeltaTableSource(tmp_path, tag_columns="a")
