"""An in-process cache of the registry reads every send makes (resolution, tiers).

The registry changes rarely and is read on every send, so each process keeps what it read
for `REGISTRY_CACHE_SECONDS`. A write through the ORM in this process (the admin, commands)
clears it at once through signals; another process sees the change when its entries expire.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from django.conf import settings
from django.db import transaction

_entries: dict[Hashable, tuple[float, Any]] = {}
_lock = threading.Lock()


def registry_cached[T](key: Hashable, compute: Callable[[], T]) -> T:
    """Return the cached value for `key`, computing (and keeping) it when missing or stale."""
    ttl = float(settings.REGISTRY_CACHE_SECONDS)
    if ttl <= 0:
        return compute()
    now = time.monotonic()
    entry = _entries.get(key)
    if entry is not None and entry[0] > now:
        return entry[1]
    value = compute()
    with _lock:
        _entries[key] = (now + ttl, value)
    return value


def registry_cache_clear(**_: Any) -> None:
    """Forget everything (a signal receiver: any registry write in this process)."""
    with _lock:
        _entries.clear()


def registry_write[**P, R](function: Callable[P, R]) -> Callable[P, R]:
    """Mark a service that writes the registry: the cache is cleared after it and on commit."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        finally:
            registry_cache_clear()
            transaction.on_commit(registry_cache_clear)

    return wrapper
