"""Running a pipeline does not import pandas (~0.3 s of CPU a process), and pyarrow still
treats pandas objects as pandas objects once pandas is imported."""

import datetime
import json
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from orcapod._arrow_without_pandas import column_numpy


def _run(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


RUN_WITHOUT_PANDAS = """
import json
import sys
import orcapod as op
from orcapod.databases import DeltaTableDatabase
from orcapod.nodes import FunctionNode
from orcapod.sources import DictSource
from orcapod.types import WorkClaims

base, options = sys.argv[1], json.loads(sys.argv[2]) or None

def store(name):
    return DeltaTableDatabase(f"{base}/{name}", storage_options=options)

@op.function_pod(output_keys=["scaled", "label"])
def scale(x: int, weight: float) -> tuple[float, str]:
    return x * weight, f"row {x}"

rows = [{"id": i, "x": i, "weight": 0.5} for i in range(40)]
source = DictSource(rows, tag_columns=["id"], source_id="numbers", record_id_column="id")
# one process sharing its work through claims (every call counted as long work)
node = FunctionNode(scale.pod, source, store("shared"))
node.work_claims = WorkClaims(lease_seconds=5, min_work_seconds=0.0, poll_seconds=0.05)
node.run()
assert node.as_table().num_rows == 40
@op.function_pod("total")
def total(scaled: list[float]) -> float:
    return sum(scaled)

groups = DictSource(
    [{"id": i, "group": i % 3} for i in range(0, 40, 2)], tag_columns=["id"], source_id="groups"
)
# a pipeline with operators, run twice (the second run reuses every result)
for _ in range(2):
    pipeline = op.Pipeline("numbers", store("pipeline"))
    with pipeline:
        scaled = scale.pod(source)
        joined = scaled.join(groups).select_packet_columns("scaled", "group")
        total.pod(joined.packet_to_tags("group").group_by("group"))
        scaled.semi_join(groups).polars_filter(id=2).batch(4)
        scaled.map_packets({"label": "text"})
    pipeline.run()
sums = sorted(pipeline.total.as_table().column("total").to_pylist())
assert sums == sorted(sum(i * 0.5 for i in range(0, 40, 2) if i % 3 == g) for g in range(3))
print("pandas" in sys.modules)
"""


def test_running_a_function_node_and_a_pipeline_on_delta_does_not_import_pandas(tmp_path):
    assert _run(RUN_WITHOUT_PANDAS, str(tmp_path), "null") == "False"


def test_the_same_on_object_storage_does_not_import_pandas(s3_server):
    base = f"s3://{s3_server.fresh_bucket()}/store"
    assert _run(RUN_WITHOUT_PANDAS, base, json.dumps(s3_server.options)) == "False"


PANDAS_AFTERWARDS = """
import sys
import pyarrow as pa
if sys.argv[1] == "orcapod-first":
    import orcapod
    from orcapod.sources import DictSource
    DictSource([{"id": 1, "x": 2.5}], tag_columns=["id"])  # converts values to Arrow
    import importlib.util
    assert importlib.util.find_spec("pandas")  # looked for, not imported (as polars does)
    assert "pandas" not in sys.modules
import pandas as pd
series = pd.Series([1.0, None, float("nan")])
print(pa.array(series).null_count)  # pandas' missing values: None and NaN
print(pa.array(pd.Series(["a", "b", "a"], dtype="category")).type)
print(pa.array(pd.Index([3, 4])).to_pylist())
stamps = [pd.NaT, pd.Timestamp("2020-01-01")]
print(pa.array(stamps, pa.timestamp("us"), from_pandas=True).null_count)
print(pa.table({"s": series}).column("s").null_count)
"""


def test_pandas_imported_after_orcapod_is_treated_by_pyarrow_as_usual():
    assert _run(PANDAS_AFTERWARDS, "orcapod-first") == _run(PANDAS_AFTERWARDS, "pandas-only")
    assert _run(PANDAS_AFTERWARDS, "orcapod-first").splitlines()[0] == "2"


COLUMNS = [
    pa.array([3, 1, 2], pa.int64()),
    pa.array([3, 1, 2], pa.int32())[1:],
    pa.array([1.5, -2.0], pa.float64()),
    pa.array([1.5, 2.0], pa.float16()),
    pa.array([True, False, True, True, False, False, False, True, True, False])[3:],
    pa.chunked_array([pa.array([True]), pa.array([False, True])]),
    pa.chunked_array([pa.array([1, 2], pa.uint8()), pa.array([3], pa.uint8())]),
    pa.array([datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)], pa.timestamp("us", tz="UTC")),
    pa.array([datetime.timedelta(seconds=3)], pa.duration("ms")),
    pa.array([0, 10**12, 2 * 10**12], pa.timestamp("ns"))[1:],
    pa.array([], pa.bool_()),
    pa.array([], pa.int64()),
    pa.array([1, None], pa.int64()),
    pa.array(["a", None], pa.string()),
    pa.array([True, None], pa.bool_()),
]


@pytest.mark.parametrize("column", COLUMNS, ids=lambda c: str(c.type))
def test_column_numpy_gives_what_to_numpy_gives(column):
    ours, theirs = column_numpy(column), column.to_numpy(zero_copy_only=False)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_column_numpy_reads_numbers_in_place():
    column = pa.array(np.arange(5, dtype=np.int64))
    values = column_numpy(column[1:])
    assert values.tolist() == [1, 2, 3, 4]
    assert np.shares_memory(values, np.frombuffer(column.buffers()[1], dtype=np.int64))


OLD_PANDAS = """
import sys
import warnings
sys.path.insert(0, sys.argv[1])  # a pandas too old for pyarrow
import orcapod
import pyarrow as pa
from orcapod.sources import DictSource
DictSource([{"id": 1, "x": 2.5}], tag_columns=["id"])
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import pandas
print(pandas.__version__, [str(w.message)[:29] for w in caught])
print(pa.array([1.5], pa.float64()).to_pylist())
"""


def test_importing_a_pandas_pyarrow_cannot_use_warns_instead_of_failing(tmp_path):
    (tmp_path / "pandas").mkdir()
    (tmp_path / "pandas" / "__init__.py").write_text('__version__ = "1.0.0"\n')
    out = _run(OLD_PANDAS, str(tmp_path)).splitlines()
    assert out == ["1.0.0 ['pyarrow does not use pandas: ']", "[1.5]"]
