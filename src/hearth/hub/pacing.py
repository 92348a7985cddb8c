"""How a download reports itself and how fast it may go: progress events at most every
``PROGRESS_INTERVAL`` (with bytes per second), and the ``--max-speed`` cap."""

from __future__ import annotations

import time

from hearth.api.types import ProgressFn, ProgressResponse

CHUNK = 1 << 20
PROGRESS_INTERVAL = 0.2


class ProgressMeter:
    """Progress events at most every PROGRESS_INTERVAL, plus the last one."""

    def __init__(self, progress: ProgressFn, status: str, digest: str | None, total: int | None):
        self.progress, self.status, self.digest, self.total = progress, status, digest, total
        self._shown = -1
        self._last = 0.0
        self._created = time.monotonic()
        self._start: tuple[float, int] | None = None  # counted from the first event: a resume is honest

    def show(self, completed: int, force: bool = False) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = (now, completed)
        if (force and completed != self._shown) or now - self._last >= PROGRESS_INTERVAL:
            self._last, self._shown = now, completed
            elapsed = now - self._start[0]
            if elapsed >= PROGRESS_INTERVAL:
                speed = (completed - self._start[1]) / elapsed
            else:  # a file that came in one piece: its bytes over the whole transfer
                speed = completed / (now - self._created) if now > self._created else None
            self.progress(ProgressResponse(status=self.status, digest=self.digest,
                                           total=self.total, completed=completed,
                                           speed=round(speed) if speed else None))


class RateLimiter:
    def __init__(self, bytes_per_second: float) -> None:
        self.rate = bytes_per_second
        self.start = time.monotonic()
        self.sent = 0

    def chunk_size(self) -> int:
        # Small enough that the cap is smooth, large enough to keep the overhead low.
        return int(min(CHUNK, max(16 << 10, self.rate / 8)))

    def account(self, count: int) -> None:
        self.sent += count
        delay = self.start + self.sent / self.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
