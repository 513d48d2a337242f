"""Importing orcapod (and loading the command line) leaves the heavy optional libraries
unimported: they are imported by the functions that use them."""

import json
import subprocess
import sys

import pytest

HEAVY = ["polars", "pandas", "ray", "networkx", "deltalake", "rich", "typer"]
#: used only inside some functions (``orcapod._lazy.lazy_module``)
HEAVY += ["asyncio", "pyarrow.fs", "pyarrow.parquet", "pyarrow.csv"]


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
