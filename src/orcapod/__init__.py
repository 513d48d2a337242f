"""orcapod: reproducible, incremental scientific data pipelines over Arrow streams.

The top level re-exports the three entry points most code starts from — ``function_pod``,
``FunctionPod`` and ``Pipeline`` — and the public subpackages. Importing ``orcapod`` imports
every public subpackage, so the fluent stream shortcuts (``stream.join(…)``), which
``orcapod.operators`` registers, are always available.

``__version__`` is read from the installed package metadata when first asked for (module
``__getattr__``): ``importlib.metadata`` costs more to import than most of orcapod.
"""

from typing import Any

from orcapod._arrow_without_pandas import defer_pandas_import

defer_pandas_import()  # before any module converts values: see the module's docstring

from orcapod import (  # noqa: E402
    data,
    databases,
    errors,
    executors,
    functions,
    hashing,
    nodes,
    operators,
    pipeline,
    sources,
    streams,
    types,
)
from orcapod.functions import FunctionPod, function_pod  # noqa: E402
from orcapod.pipeline import Pipeline  # noqa: E402


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("orcapod")
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0.0.0+unknown"
        globals()["__version__"] = found
        return found
    raise AttributeError(f"module 'orcapod' has no attribute {name!r}")


__all__ = [
    "FunctionPod",
    "Pipeline",
    "__version__",
    "data",
    "databases",
    "errors",
    "executors",
    "function_pod",
    "functions",
    "hashing",
    "nodes",
    "operators",
    "pipeline",
    "sources",
    "streams",
    "types",
]
