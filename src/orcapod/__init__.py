"""orcapod: reproducible, incremental scientific data pipelines over Arrow streams.

The top level re-exports the three entry points most code starts from — ``function_pod``,
``FunctionPod`` and ``Pipeline`` — and the public subpackages. Importing ``orcapod`` imports
every public subpackage, so the fluent stream shortcuts (``stream.join(…)``), which
``orcapod.operators`` registers, are always available.
"""

from importlib.metadata import PackageNotFoundError, version

from orcapod import (
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
from orcapod.functions import FunctionPod, function_pod
from orcapod.pipeline import Pipeline

try:
    __version__ = version("orcapod")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

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
