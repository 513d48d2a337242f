"""Names a package exports, and modules a module uses, imported only when first used.

Some exports pull in heavy or optional libraries (Ray, the SQL drivers, rich) that most
programs never touch; importing them with the package would make ``import orcapod`` slow.
A package lists them in ``__all__`` as usual and hands ``lazy_exports`` the module each one
lives in: the name is imported the first time it is read, then kept in the package's
namespace, so there stays one import path per name.

``lazy_module(name)`` is the same for a library a module needs only inside some functions
(``asyncio``: ~20 ms to import, used only when something runs asynchronously): the module
binds a stand-in at import time, and the real module is imported on the first attribute read
(``importlib.import_module``, so concurrent first reads are safe and ``sys.modules`` holds
only the real module). The stand-in then takes a copy of the real module's names, so later
reads cost what a module attribute read costs. For type checking the module imports the
real one::

    if TYPE_CHECKING:
        import asyncio
    else:
        asyncio = lazy_module("asyncio")

``pc`` is that stand-in for ``pyarrow.compute``, shared by the modules ``import orcapod``
loads (``from orcapod._lazy import pc``): importing ``pyarrow.compute`` builds a Python
wrapper with a parsed docstring for each of its ~280 kernels and pulls in ``pydoc`` and
``inspect`` (~20-30 ms, a tenth of ``import orcapod``), while a program that only imports
orcapod, or runs ``orcapod --help``, calls none of them. Modules imported only later (the
store readers, the SQL layer) import ``pyarrow.compute`` directly.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["lazy_exports", "lazy_module", "pc"]


class _LazyModule(ModuleType):
    """Stands in for a module until an attribute is read (see the module docstring)."""

    def __getattr__(self, attr: str) -> Any:
        # reached only for names the stand-in does not hold itself: every public one until
        # the first read, which copies them in (a missing name still raises AttributeError)
        module = importlib.import_module(self.__name__)
        names = vars(module)
        self.__dict__.update({k: v for k, v in names.items() if not k.startswith("__")})
        return getattr(module, attr)

    def __dir__(self) -> list[str]:
        return dir(importlib.import_module(self.__name__))


def lazy_module(name: str) -> ModuleType:
    """A stand-in for module ``name`` that imports it on the first attribute read."""
    return _LazyModule(name)


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


if TYPE_CHECKING:
    import pyarrow.compute as pc
else:
    pc = lazy_module("pyarrow.compute")
