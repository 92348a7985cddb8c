"""How many calls may be in flight to one provider at once (per process: the server, or one
CLI command). A call beyond the limit waits for a free turn, up to the provider's timeout."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from hearth.errors import ServerBusy

_lock = threading.Lock()
_gates: dict[str, tuple[int, threading.BoundedSemaphore]] = {}


def _gate(name: str, limit: int) -> threading.BoundedSemaphore:
    with _lock:
        known = _gates.get(name)
        # A changed limit (providers.toml edited) gets a new gate; calls holding the old one
        # release it as they finish.
        if known is None or known[0] != limit:
            known = (limit, threading.BoundedSemaphore(limit))
            _gates[name] = known
        return known[1]


@contextlib.contextmanager
def provider_turn(name: str, limit: int, wait: float,
                  cancelled: Callable[[], bool] | None = None) -> Iterator[None]:
    gate = _gate(name, limit)
    deadline = time.monotonic() + wait
    while not gate.acquire(timeout=0.05):
        if cancelled is not None and cancelled():
            raise ServerBusy(f"{name}: cancelled while waiting for a free turn")
        if time.monotonic() >= deadline:
            raise ServerBusy(f"{name}: {limit} call(s) already in flight (the provider's limit); "
                             "try again shortly", retry_after=1)
    try:
        yield
    finally:
        gate.release()
