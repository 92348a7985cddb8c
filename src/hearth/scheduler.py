"""Which models are loaded, who may use them, and when they go.

- Admission: at most HEARTH_MAX_QUEUE requests wait; one more is refused at once with
  ``ServerBusy`` (HTTP 503 + Retry-After) instead of piling up.
- Each loaded model serves up to its ``n_parallel`` requests at once (decoded together in one
  batch by its engine); more wait, served in arrival order.
- Keep-alive: after its last request a model stays loaded for the request's ``keep_alive``
  (default HEARTH_KEEP_ALIVE); ``0`` unloads it at once, a negative value keeps it forever.
- Memory: before a load, idle models are unloaded (least recently used first) until the new
  one's estimate (weights + KV cache + overhead, from ``hearth.fit``: the numbers `hearth fit`
  shows) fits in available memory, or the number of loaded models fits HEARTH_MAX_LOADED_MODELS.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hearth import config
from hearth.errors import NotEnoughMemory, RequestCancelled, ServerBusy

CANCEL_POLL_SECONDS = 0.1


class FairSemaphore:
    """``permits`` holders at once, granted strictly in the order they asked (FIFO):
    threading.Semaphore makes no such promise, and a request must not be overtaken forever.
    A waiter whose request is cancelled leaves the line without ever holding a permit."""

    def __init__(self, permits: int = 1) -> None:
        self._cond = threading.Condition()
        self._permits = permits
        self._line: collections.deque[object] = collections.deque()
        self._holding = 0

    def acquire(self, cancelled: Callable[[], bool] | None = None) -> None:
        ticket = object()
        with self._cond:
            self._line.append(ticket)
            try:
                while self._line[0] is not ticket or self._holding >= self._permits:
                    if cancelled is not None and cancelled():
                        raise RequestCancelled("the request was cancelled while it waited for the model")
                    # A cancel raised elsewhere has no way to notify us: look again now and then.
                    self._cond.wait(timeout=None if cancelled is None else CANCEL_POLL_SECONDS)
            except BaseException:
                self._line.remove(ticket)
                self._cond.notify_all()
                raise
            self._line.popleft()
            self._holding += 1
            self._cond.notify_all()

    def release(self) -> None:
        with self._cond:
            self._holding -= 1
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """Holders plus those waiting their turn."""
        with self._cond:
            return len(self._line) + self._holding


@dataclass
class ResidentModel:
    """A model loaded in memory (not to be confused with a sequence slot of the decoder)."""

    key: Any
    name: str
    loaded: Any
    size: int
    lock: FairSemaphore = field(default_factory=FairSemaphore)
    in_use: int = 0
    keep_alive: float = 300.0
    expires_at: float = float("inf")  # time.time(); inf while in use or kept forever
    last_used: float = field(default_factory=time.monotonic)
    unload_when_idle: bool = False


def memory_available() -> int:
    """Free RAM in bytes, as ``hearth fit`` reads it (0 where unknown: then memory never evicts)."""
    from hearth.fit.machine import ram_available

    return ram_available()


def choose_evictions(estimate: int, available: int, idle: list[ResidentModel], loaded_count: int,
                     max_loaded: int) -> list[ResidentModel]:
    """Idle slots to unload, least recently used first, so the new model fits."""
    chosen: list[ResidentModel] = []
    for slot in sorted(idle, key=lambda s: s.last_used):
        too_many = max_loaded > 0 and loaded_count - len(chosen) >= max_loaded
        too_big = available > 0 and estimate > available + sum(s.size for s in chosen)
        if not (too_many or too_big):
            break
        chosen.append(slot)
    return chosen


class Scheduler:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._slots: dict[Any, ResidentModel] = {}
        self._load_lock = threading.Lock()
        self._waiting = 0
        self._reaper: threading.Thread | None = None
        self._closed = False

    # -- admission and use ---------------------------------------------------------------

    @contextlib.contextmanager
    def use(self, key: Any, name: str, estimate: int, load: Callable[[], Any],
            keep_alive: float | None = None,
            cancelled: Callable[[], bool] | None = None) -> Iterator[tuple[Any, int]]:
        """Hold the model for one request: yields ``(loaded, load_ns)``. A request whose
        ``cancelled`` turns true while it waits leaves the queue with ``RequestCancelled``."""
        with self._cond:
            if self._waiting >= config.max_queue():
                raise ServerBusy(f"server busy: {self._waiting} requests already waiting "
                                 "(HEARTH_MAX_QUEUE); retry shortly", retry_after=1)
            self._waiting += 1
        try:
            while True:
                slot, load_ns = self._slot_for(key, name, estimate, load)
                slot.lock.acquire(cancelled)
                with self._cond:
                    # An unload (hearth stop, keep_alive 0, a dead runner) may have taken the
                    # model while this request waited its turn: then it loads it again.
                    if self._slots.get(key) is slot and self._usable(slot):
                        slot.in_use += 1
                        slot.expires_at = float("inf")
                        if keep_alive is not None:
                            slot.keep_alive = keep_alive
                        break
                slot.lock.release()
        finally:
            with self._cond:
                self._waiting -= 1
        try:
            yield slot.loaded, load_ns
        finally:
            with self._cond:
                slot.in_use -= 1
                slot.last_used = time.monotonic()
                if slot.in_use == 0:
                    slot.expires_at = time.time() + slot.keep_alive
                unload_now = slot.in_use == 0 and (slot.keep_alive <= 0 or slot.unload_when_idle)
            slot.lock.release()
            if unload_now:
                self._unload_if_idle(slot)

    def _slot_for(self, key: Any, name: str, estimate: int, load: Callable[[], Any]) -> tuple[ResidentModel, int]:
        with self._cond:
            slot = self._slots.get(key)
            if slot is not None and self._usable(slot):
                slot.name = name
                return slot, 0
        with self._load_lock:
            with self._cond:
                slot = self._slots.get(key)
                if slot is not None and self._usable(slot):
                    return slot, 0
                idle = [s for s in self._slots.values() if s.in_use == 0 and s.lock.waiting == 0]
                available = self._memory_left()
                evict = choose_evictions(estimate, available, idle, len(self._slots),
                                         config.max_loaded_models())
                freed = sum(victim.size for victim in evict)
                if available > 0 and estimate > available + freed:
                    from hearth.units import human_size

                    raise NotEnoughMemory(
                        f"{name} needs about {human_size(estimate)} but only "
                        f"{human_size(max(0, available + freed))} of memory is left"
                        + (" with the other loaded models in use" if len(self._slots) > len(evict) else ""),
                        needed=estimate, available=max(0, available + freed))
                for victim in evict:
                    del self._slots[victim.key]
            for victim in evict:
                victim.loaded.close()
            started = time.perf_counter_ns()
            loaded = load()
            # The loaded object's own figure leaves out one-time imports, as Ollama's does.
            load_ns = getattr(loaded, "load_ns", None) or time.perf_counter_ns() - started
            slot = ResidentModel(key=key, name=name, loaded=loaded, size=estimate,
                        lock=FairSemaphore(getattr(loaded, "n_parallel", 1)),
                        keep_alive=config.keep_alive_seconds())
            with self._cond:
                self._slots[key] = slot
            return slot, load_ns

    def _memory_left(self) -> int:
        """Free memory for a new model (0 where unknown): MemAvailable, less the mmap'd weights
        of the models loaded here, which it counts as reclaimable page cache. Called with
        ``_cond`` held."""
        available = memory_available()
        if available <= 0:
            return 0
        mapped = sum(getattr(slot.loaded, "mapped_bytes", 0) for slot in self._slots.values())
        return max(1, available - mapped)

    def _usable(self, slot: ResidentModel) -> bool:
        """A slot whose engine died (its runner crashed) is dropped here; the caller then
        loads the model again. Called with ``_cond`` held."""
        if getattr(slot.loaded, "alive", True):
            return True
        if self._slots.get(slot.key) is slot:
            del self._slots[slot.key]
        threading.Thread(target=slot.loaded.close, daemon=True).start()
        return False

    # -- unloading -----------------------------------------------------------------------

    def _unload_if_idle(self, slot: ResidentModel) -> None:
        with self._cond:
            if slot.in_use or slot.lock.waiting or self._slots.get(slot.key) is not slot:
                return
            del self._slots[slot.key]
        slot.loaded.close()

    def stop(self, match: Callable[[ResidentModel], bool]) -> int:
        """Unload matching models now, or after their current requests. Returns how many."""
        with self._cond:
            targets = [s for s in self._slots.values() if match(s)]
            for slot in targets:
                slot.unload_when_idle = True
        for slot in targets:
            self._unload_if_idle(slot)
        return len(targets)

    def reap_expired(self) -> None:
        now = time.time()
        with self._cond:
            expired = [s for s in self._slots.values() if s.in_use == 0 and s.expires_at <= now]
        for slot in expired:
            self._unload_if_idle(slot)

    def start_reaper(self, interval: float = 0.25) -> None:
        def loop() -> None:
            while not self._closed:
                time.sleep(interval)
                self.reap_expired()

        if self._reaper is None:
            self._reaper = threading.Thread(target=loop, name="hearth-keepalive", daemon=True)
            self._reaper.start()

    def close(self) -> None:
        self._closed = True
        with self._cond:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            slot.loaded.close()

    # -- reporting -----------------------------------------------------------------------

    def slots(self) -> list[ResidentModel]:
        with self._cond:
            return list(self._slots.values())

    @property
    def waiting(self) -> int:
        with self._cond:
            return self._waiting
