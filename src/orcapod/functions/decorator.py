"""``@function_pod``: turn a Python function into a function pod, keeping it callable.

``@function_pod("out")`` builds a ``PythonPacketFunction`` (optionally cached with
``result_database`` as a ``CachedPacketFunction``), a ``FunctionPod`` over it (optionally
cached with ``pod_cache_database`` as a ``CachedFunctionPod``) and returns a wrapper that calls
the original function unchanged, with the pod as ``wrapper.pod``::

    @function_pod("bmi")
    def compute_bmi(weight: float, height: float) -> float:
        return weight / height**2

    compute_bmi(70.0, 1.8)              # plain call
    out = compute_bmi.pod(stream)       # applied to a stream

Decisions: ``label`` names both the packet function and the pod (and so the pipeline node);
``cache_match`` applies to every cache the decorator creates; an async function gets an async
wrapper, so ``inspect.iscoroutinefunction`` still holds.

Arguments are checked when ``function_pod(...)`` is called, before any function is seen:
``output_keys`` must be a string or a sequence of strings, and ``cache_match`` must name a
``CacheMatch`` tier (``version``, ``code`` or ``strict``). ``cache_match`` given without
``result_database`` or ``pod_cache_database`` is an ``InputValidationError``, not a warning:
it configures only those caches, so it would otherwise be silently ignored (pipeline nodes
keep their own result cache, which matches ``CacheMatch.CODE``), and a warning would turn
into an error anyway under ``-W error``. ``input_schema`` / ``output_schema``
(keyword-only) set or override parameter and output types, as in ``PythonPacketFunction``,
for functions whose annotations are missing or cannot be resolved.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from orcapod.databases.protocol import ArrowDatabase
from orcapod.errors import InputValidationError
from orcapod.executors import PythonFunctionExecutorProtocol
from orcapod.executors.calling import is_async_callable
from orcapod.functions.cached import CachedFunctionPod, CachedPacketFunction
from orcapod.functions.function_pod import FunctionPod
from orcapod.functions.packet_function import PacketFunctionBase
from orcapod.functions.python_function import PythonPacketFunction
from orcapod.functions.signature_schema import check_output_keys
from orcapod.types import CacheMatch

__all__ = ["PodFunction", "function_pod"]

F = TypeVar("F", bound=Callable[..., Any])


class PodFunction(Protocol):
    """What ``@function_pod`` returns: the function itself, plus its pod."""

    pod: FunctionPod

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


def function_pod(
    output_keys: str | Sequence[str],
    function_name: str | None = None,
    version: str = "v0.0",
    label: str | None = None,
    executor: PythonFunctionExecutorProtocol | None = None,
    result_database: ArrowDatabase | None = None,
    pod_cache_database: ArrowDatabase | None = None,
    cache_match: CacheMatch | str | None = None,
    *,
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | Sequence[Any] | None = None,
) -> Callable[[F], F]:
    """Decorator: ``fn`` stays a plain function and gains ``fn.pod`` (see the module docstring).

    ``cache_match`` (default ``CacheMatch.CODE``) is the match tier of the caches made for
    ``result_database`` / ``pod_cache_database``; give it only with one of them."""
    check_output_keys(output_keys)
    tier = _cache_tier(cache_match, result_database, pod_cache_database)

    def decorate(fn: F) -> F:
        pf: PacketFunctionBase[Any] = PythonPacketFunction(
            fn,
            output_keys,
            function_name=function_name,
            version=version,
            input_schema=input_schema,
            output_schema=output_schema,
            label=label,
            executor=executor,
        )
        if result_database is not None:
            pf = CachedPacketFunction(pf, result_database, cache_match=tier)
        pod = FunctionPod(pf, label=label)
        if pod_cache_database is not None:
            pod = CachedFunctionPod(pod, pod_cache_database, cache_match=tier)

        if is_async_callable(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await fn(*args, **kwargs)

            wrapper: Any = async_wrapper
        else:

            @functools.wraps(fn)
            def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
                return fn(*args, **kwargs)

            wrapper = sync_wrapper
        wrapper.pod = pod
        return cast(F, wrapper)

    return decorate


def _cache_tier(
    cache_match: CacheMatch | str | None,
    result_database: ArrowDatabase | None,
    pod_cache_database: ArrowDatabase | None,
) -> CacheMatch:
    """The tier of the decorator's caches; see the module docstring for the rules."""
    if cache_match is None:
        return CacheMatch.CODE
    try:
        tier = CacheMatch(cache_match)
    except ValueError as err:
        valid = ", ".join(repr(t.value) for t in CacheMatch)
        raise InputValidationError(
            f"cache_match={cache_match!r} is not a cache match tier; use one of {valid} "
            "(or CacheMatch.VERSION / CODE / STRICT)"
        ) from err
    if result_database is None and pod_cache_database is None:
        raise InputValidationError(
            f"cache_match={tier.value!r} has no effect without a cache: it sets the tier of "
            "the caches made for result_database= or pod_cache_database=; pass one of them, "
            "or drop cache_match (a pipeline node keeps its own result cache, which always "
            "matches by code, CacheMatch.CODE)"
        )
    return tier
