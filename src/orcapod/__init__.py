"""orcapod: reproducible, incremental scientific data pipelines over Arrow streams."""

from importlib.metadata import PackageNotFoundError, version

from orcapod import errors, types

try:
    __version__ = version("orcapod")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "errors", "types"]
