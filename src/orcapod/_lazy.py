"""Names a package exports but imports only when first used (a module ``__getattr__``).

Some exports pull in heavy or optional libraries (Ray, the SQL drivers, rich) that most
programs never touch; importing them with the package would make ``import orcapod`` slow.
A package lists them in ``__all__`` as usual and hands ``lazy_exports`` the module each one
lives in: the name is imported the first time it is read, then kept in the package's
namespace, so there stays one import path per name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    names: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    exported: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``names`` maps each lazily
    exported name to the module that defines it; ``namespace`` is the package's
    ``globals()``, ``exported`` its ``__all__``."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exported})

    return __getattr__, __dir__
