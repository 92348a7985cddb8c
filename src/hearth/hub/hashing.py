"""sha256 of a download while it arrives: in order on a thread of its own, or the finished
front of a file whose ranged parts arrive out of order."""

from __future__ import annotations

import hashlib
import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from hearth.errors import StoreError

READ_BYTES = 4 << 20


class BackgroundHasher:
    """sha256 on its own thread (hashlib lets go of the GIL), so hashing overlaps receiving."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=32)
        self._thread = threading.Thread(target=self._run, name="hearth-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            self._hash.update(data)

    def update(self, data: bytes) -> None:
        self._queue.put(data)

    def digest(self) -> str:
        self._queue.put(None)
        self._thread.join()
        return "sha256:" + self._hash.hexdigest()


class PrefixHasher:
    """Hashes the finished front of a file whose parts arrive out of order, while they arrive,
    so that little is left to hash once the last part is in."""

    def __init__(self, path: Path, frontier: Callable[[], int]) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self._frontier = frontier
        self._hash = hashlib.sha256()
        self._done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hearth-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._advance(self._frontier(), interruptible=True):
                self._stop.wait(0.05)

    def _advance(self, limit: int, interruptible: bool = False) -> bool:
        moved = False
        while self._done < limit and not (interruptible and self._stop.is_set()):
            data = os.pread(self._fd, min(READ_BYTES, limit - self._done), self._done)
            if not data:
                break
            self._hash.update(data)
            self._done += len(data)
            moved = True
        return moved

    def finish(self, total: int) -> str:
        self._stop.set()
        self._thread.join()
        try:
            self._advance(total)
            if self._done != total:
                raise StoreError(f"the partial download is shorter than {total} bytes")
        finally:
            os.close(self._fd)
        return "sha256:" + self._hash.hexdigest()

    def abandon(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        os.close(self._fd)
