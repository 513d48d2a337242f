"""Arrow work without importing pandas, which costs ~0.3 s of CPU per process.

pyarrow imports pandas, when it is installed, the first time it converts Python values to
Arrow (``pa.array``, ``pa.scalar``): it checks whether the values are pandas objects. It also
imports pandas the first time it turns an Arrow array into numpy (``to_numpy``) or infers an
Arrow type from Python values (both to learn pandas' missing-value markers and types), and
when ``pyarrow.dataset`` or ``pyarrow.acero`` is imported. None of this needs pandas unless
the values are pandas objects, and orcapod's own runs never use pandas: a process that runs a
pipeline would pay ~0.3 s of CPU, more than the rest of its start-up, for nothing (four
processes sharing a node on two cores pay it four times over). So orcapod passes Arrow types
instead of letting pyarrow infer them (``pa.array(values, type)``, typed scalars for compute
functions), reads parquet without ``pyarrow.dataset``, joins without Acero, and has two
helpers here:

* ``defer_pandas_import()`` (called when orcapod is imported) answers pyarrow's check
  "is pandas there?" with "no" while pandas is not imported yet, and arranges for the
  answer to change the moment anything imports pandas: a finder on ``sys.meta_path`` sees
  that import, lets it run, then asks pyarrow again (``_pandas_api.compat``, which imports
  pyarrow's pandas support). As no pandas object can exist before pandas is imported, the
  answer "no" is true while it stands, so pyarrow treats pandas objects exactly as before.
  If pandas is already imported, or pyarrow no longer has the check this relies on, nothing
  is changed (pandas is then imported as usual, which is slower but not different). The
  other checks (numpy, type inference) are made in pyarrow's C++ code, once per process with
  no way to ask again, so they are never answered: a "no" there would change how pandas'
  ``NaT`` converts for the rest of the process.
* ``column_numpy(column)`` is ``to_numpy()`` for the columns orcapod reads as numpy
  (booleans, integers, floats, timestamps and durations without nulls): it takes the values'
  buffers directly (DLPack, no copy) and falls back to ``to_numpy()`` for anything else.

The check is answered while pandas cannot be imported by the answering thread only (other
threads import as usual), so no import anywhere fails because of it; ``sys.meta_path`` is
replaced, not changed in place, so an import another thread is making meanwhile sees every
finder.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

__all__ = ["column_numpy", "defer_pandas_import"]

_PANDAS = "pandas"


class _RefusePandas:  # a finder on sys.meta_path
    """Refuses ``import pandas`` in one thread, for the moment pyarrow is asked."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == _PANDAS and threading.get_ident() == self.thread:
            raise ImportError("pandas is not imported yet (pyarrow's check is answered 'no')")
        return None


class _TellPyarrowAfterPandas:  # a finder on sys.meta_path
    """When pandas is imported, lets the import run, then tells pyarrow that pandas is there.

    Every spec it finds for pandas (the other finders find it) runs the import and then tells
    pyarrow; asking for a spec alone (``importlib.util.find_spec("pandas")``, as polars does
    to learn whether pandas is installed) imports nothing, and the finder stays."""

    def __init__(self, pandas_api: Any) -> None:
        self.pandas_api = pandas_api

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != _PANDAS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            _remove_finder(self)  # pandas is imported once per process
            try:
                self.pandas_api.compat  # noqa: B018 - asking imports pyarrow's pandas support
            except ImportError as err:  # a pandas pyarrow does not support: as pyarrow does
                warnings.warn(f"pyarrow does not use pandas: {err}", stacklevel=2)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def defer_pandas_import() -> None:
    """Keep pyarrow from importing pandas until something else does (module docstring)."""
    pandas_api = getattr(pa.lib, "_pandas_api", None)
    if _PANDAS in sys.modules or pandas_api is None or not hasattr(type(pandas_api), "compat"):
        return
    if any(isinstance(finder, _TellPyarrowAfterPandas) for finder in sys.meta_path):
        return  # done already (orcapod imported again, e.g. after a module reload)
    refuse = _RefusePandas()
    sys.meta_path = [refuse, *sys.meta_path]
    try:
        asked = pandas_api.have_pandas
    finally:
        _remove_finder(refuse)
    if not asked:
        sys.meta_path = [_TellPyarrowAfterPandas(pandas_api), *sys.meta_path]


def _remove_finder(finder: object) -> None:
    sys.meta_path = [f for f in sys.meta_path if f is not finder]


def column_numpy(column: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    """``column.to_numpy(zero_copy_only=False)`` that does not import pandas for booleans,
    integers, floats, timestamps and durations without nulls (numbers are read in place
    where the column is one chunk, so the result may be read-only); any other column is
    converted by ``to_numpy``."""
    kind = column.type
    if column.null_count or not (
        pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_timestamp(kind)
        or pa.types.is_duration(kind)
    ):
        return column.to_numpy(zero_copy_only=False)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    if not chunks:
        return column.to_numpy(zero_copy_only=False)
    parts = [_chunk_numpy(chunk) for chunk in chunks]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk_numpy(chunk: pa.Array) -> np.ndarray[Any, Any]:
    kind = chunk.type
    if pa.types.is_boolean(kind):  # one bit a value, least significant first
        if not len(chunk):
            return np.zeros(0, dtype=np.bool_)
        bits = np.unpackbits(np.frombuffer(chunk.buffers()[1], np.uint8), bitorder="little")
        return bits[chunk.offset : chunk.offset + len(chunk)].view(np.bool_)
    if pa.types.is_timestamp(kind) or pa.types.is_duration(kind):
        unit = "datetime64" if pa.types.is_timestamp(kind) else "timedelta64"
        return np.from_dlpack(chunk.view(pa.int64())).view(f"{unit}[{kind.unit}]")
    return np.from_dlpack(chunk)
