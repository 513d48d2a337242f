"""``Pending``: a started call whose result is collected later, in the collecting thread.

Concurrent dispatch (a bounded window of packets in flight) needs "start now, finish later".
A ``concurrent.futures.Future`` alone is not enough: finishing a packet call also means
validating the raw value, building the output ``Packet`` and, for cached functions, writing
the result to a database. Doing that in a future's done-callback would run it on whatever
thread completed the future (a Ray waiter, a pool worker), and databases are not required to
be thread-safe. A ``Pending`` keeps the finishing steps (``then``) and runs them in the thread
that calls ``result()`` — the one consuming results in input order.

A ``Pending`` settles once: ``result()`` runs the chain the first time and afterwards returns
the same value (or raises the same exception) every time.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

__all__ = ["Pending"]

T = TypeVar("T")
U = TypeVar("U")

_UNSET: Any = object()


class Pending(Generic[T]):
    """A value, an exception, or a future, plus finishing steps run by ``result()``."""

    __slots__ = ("_error", "_future", "_source", "_then", "_value")

    def __init__(self) -> None:
        self._value: Any = _UNSET
        self._error: BaseException | None = None
        self._future: Future[Any] | None = None
        self._source: Pending[Any] | None = None
        self._then: Callable[[Any], T] | None = None

    @classmethod
    def done(cls, value: T) -> Pending[T]:
        p: Pending[T] = cls()
        p._value = value
        return p

    @classmethod
    def failed(cls, error: BaseException) -> Pending[T]:
        p: Pending[T] = cls()
        p._error = error
        return p

    @classmethod
    def of_future(cls, future: Future[T]) -> Pending[T]:
        p: Pending[T] = cls()
        p._future = future
        return p

    @classmethod
    def run(cls, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Pending[T]:
        """Call ``fn`` now; its value or exception becomes the settled outcome."""
        try:
            return cls.done(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - delivered, in order, by result()
            return cls.failed(err)

    def then(self, fn: Callable[[T], U]) -> Pending[U]:
        """A new Pending whose result is ``fn(self.result())`` (run lazily, by ``result()``)."""
        p: Pending[U] = Pending()
        p._source = self
        p._then = fn
        return p

    def result(self) -> T:
        if self._value is _UNSET and self._error is None:
            self._settle()
        if self._error is not None:
            raise self._error
        value: T = self._value
        return value

    def _settle(self) -> None:
        try:
            if self._source is not None:
                assert self._then is not None
                self._value = self._then(self._source.result())
            else:
                assert self._future is not None
                self._value = self._future.result()
        except Exception as err:  # noqa: BLE001 - kept and re-raised by every result()
            self._error = err
        finally:
            self._source = None
            self._then = None
            self._future = None

    def cancel(self) -> None:
        """Best-effort cancellation of a call that is not collected (its outcome is dropped)."""
        p: Pending[Any] | None = self
        while p is not None:
            if p._future is not None:
                p._future.cancel()
            p = p._source
