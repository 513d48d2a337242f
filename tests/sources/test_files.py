import polars as pl
import pytest
from deltalake import write_deltalake

from orcapod.errors import InputValidationError
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
