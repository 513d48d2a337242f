"""Importing orcapod (and loading the command line) leaves the heavy optional libraries
unimported: they are imported by the functions that use them."""

import json
import subprocess
import sys

import pytest

HEAVY = ["polars", "pandas", "ray", "networkx", "deltalake", "rich", "typer"]
#: used only inside some functions (``orcapod._lazy.lazy_module``)
HEAVY += ["asyncio", "pyarrow.fs", "pyarrow.parquet", "pyarrow.csv", "pyarrow.compute"]
#: loaded when first named (``orcapod.databases``) or run (``orcapod demo``)
HEAVY += ["orcapod.databases.delta", "orcapod.cli.demo"]


def _imported_after(code: str) -> dict[str, bool]:
    report = f"print(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    probe = f"{code}\nimport json, sys\n{report}"
    done = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_orcapod_imports_no_heavy_library():
    imported = _imported_after("import orcapod")
    assert not any(imported.values()), [m for m, v in imported.items() if v]


@pytest.mark.parametrize(
    "code", ["from orcapod import Pipeline, function_pod", "from orcapod.sources import DictSource"]
)
def test_the_everyday_imports_skip_polars_pandas_and_ray(code):
    imported = _imported_after(code)
    assert not (imported["polars"] or imported["pandas"] or imported["ray"]), imported


def test_a_data_frame_view_still_imports_polars_when_asked():
    code = (
        "from orcapod.sources import DictSource\n"
        "frame = DictSource([{'a': 1, 'b': 2}], tag_columns=['a']).as_polars_df()\n"
        "assert frame.shape == (1, 2), frame.shape"
    )
    assert _imported_after(code)["polars"]


def test_loading_the_command_line_imports_no_store_library():
    imported = _imported_after("import orcapod.cli.main")
    assert not (imported["deltalake"] or imported["asyncio"] or imported["pyarrow.fs"]), imported
    assert not (imported["orcapod.databases.delta"] or imported["pyarrow.compute"]), imported
    assert not imported["orcapod.cli.demo"], imported


def test_the_delta_backend_and_pyarrow_compute_load_when_first_used():
    code = (
        "import orcapod, sys\n"
        "assert 'pyarrow.compute' not in sys.modules\n"
        "from orcapod.databases import DeltaTableDatabase\n"
        "assert DeltaTableDatabase.__module__ == 'orcapod.databases.delta'\n"
        "from orcapod._lazy import pc\n"
        "assert pc.add(1, 2).as_py() == 3 and 'sum' in dir(pc)"
    )
    assert _imported_after(code)["pyarrow.compute"]
