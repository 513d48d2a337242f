"""orcapod: reproducible, incremental scientific data pipelines over Arrow streams.

Importing ``orcapod`` imports every public subpackage, so the fluent stream shortcuts
(``stream.join(…)``), which ``orcapod.operators`` registers, are always available.
"""

from importlib.metadata import PackageNotFoundError, version

from orcapod import data, databases, errors, hashing, operators, sources, streams, types

try:
    __version__ = version("orcapod")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "data",
    "databases",
    "errors",
    "hashing",
    "operators",
    "sources",
    "streams",
    "types",
]
