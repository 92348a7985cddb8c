"""Hand the decoder's events over in bursts instead of one by one.

Every hand-over wakes another thread or process (the runner's pipe, the server's reader, the
stream, the event loop). On a small machine those wake-ups run on the cores that llama.cpp's
threads are using, and each one stalls a decode step. So events wait in the outbox until the
decode step that made them is over, and text is sent at most every ``FLUSH_SECONDS``:
everything of one step leaves in one piece, and a single stream gets a few tokens per wake-up
instead of one. A request's first text and its final event always leave at once, so time to
first token and end of stream are not delayed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from hearth.engine.jobs import Event

# Text waits at most this long (~3 tokens of a 100 tokens/s stream); a person reading the
# stream sees no difference, the decode threads see a third of the interruptions.
FLUSH_SECONDS = 0.03


class EventOutbox:
    def __init__(self, deliver: Callable[[list[Event]], None], flush_seconds: float = FLUSH_SECONDS) -> None:
        self._deliver = deliver
        self._flush_seconds = flush_seconds
        self._lock = threading.Lock()
        self._pending: list[Event] = []
        self._started: set[int] = set()  # requests whose first text has been delivered
        self._urgent = False
        self._last_delivery = 0.0

    def add(self, event: Event) -> None:
        """Called by the decoder (and by cancels from other threads) for every event."""
        with self._lock:
            self._pending.append(event)
            if event.done:
                self._started.discard(event.request_id)
                self._urgent = True
            elif event.request_id not in self._started:
                self._started.add(event.request_id)
                self._urgent = True

    def step_finished(self, idle: bool = False) -> None:
        """Called after each decode step; delivers what is due (everything when idle)."""
        with self._lock:
            if not self._pending:
                return
            now = time.monotonic()
            if not (idle or self._urgent or now - self._last_delivery >= self._flush_seconds):
                return
            events, self._pending = self._pending, []
            self._urgent = False
            self._last_delivery = now
            # Delivered under the lock so that bursts from two threads keep their order.
            self._deliver(events)
