"""A function that reads a module-level lock: it cannot be pickled wherever its module is
shipped by value (a script run as ``__main__``, or a module registered with
``cloudpickle.register_pickle_by_value``, as ``test_ray.py`` does), because the lock goes
with it."""

from __future__ import annotations

import threading

LOCK = threading.Lock()


def uses_a_global_lock(x: int) -> int:
    with LOCK:
        return x + 1
