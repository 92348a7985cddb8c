"""Locks that make two pulls of the same thing, in threads or processes, do the work once.

A lock is an ``flock`` on a small file in ``HEARTH_HOME/tmp``. The holder may leave a note (a
digest) in it before letting go; the file is then unlinked. Whoever was waiting on that file
reads the note and can reuse the result instead of downloading again. Someone who arrives
after the file was unlinked locks a fresh file and does the work itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from hearth.errors import DownloadFailed
from hearth.store.blobs import store_error

POLL_SECONDS = 0.1


class HeldLock:
    def __init__(self, path: Path, fd: int, note: str) -> None:
        self.path = path
        self.fd = fd
        self.waited = False
        #: What the previous holder of this very file left (empty when we were first).
        self.note = note

    def leave_note(self, text: str) -> None:
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, text.encode(), 0)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        return False


def _read_note(fd: int) -> str:
    with contextlib.suppress(OSError):
        return os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
    return ""


@contextlib.contextmanager
def exclusive(
    path: Path,
    *,
    cancelled: Callable[[], bool] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[HeldLock]:
    """Hold ``path`` exclusively. A waiter whose file was unlinked by the holder still gets the
    lock on it (with the holder's note), so it can see what the holder finished."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise store_error("create", path.parent, exc) from exc
    waited = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise store_error("create", path, exc) from exc
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited and on_wait:
                        on_wait()
                    waited = True
                    if cancelled and cancelled():
                        raise DownloadFailed("cancelled while waiting for another download") from None
                    time.sleep(POLL_SECONDS)
        except BaseException:
            os.close(fd)
            raise
        note = _read_note(fd)
        if not _same_file(fd, path) and not note:
            # The holder gave up without a result and removed the file: lock the new one.
            os.close(fd)
            continue
        held = HeldLock(path, fd, note if waited else "")
        held.waited = waited
        try:
            yield held
        finally:
            if _same_file(fd, path):
                with contextlib.suppress(OSError):
                    os.unlink(path)
            os.close(fd)  # closing releases the flock
        return
