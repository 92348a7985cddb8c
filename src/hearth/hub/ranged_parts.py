"""A large download in ranged parts: HEARTH_DOWNLOAD_PARTS connections, each writing its range in
place in the partial file and retrying on its own; progress and the parts' state are saved as
they go, so an interrupted pull resumes each part where it stopped. The sha256 is computed
behind the parts' common frontier (``PrefixHasher``)."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable

from hearth.errors import DownloadFailed, HearthError
from hearth.hub.hashing import PrefixHasher
from hearth.hub.http_fetch import Opened, display_url, open_range
from hearth.hub.pacing import CHUNK, PROGRESS_INTERVAL, ProgressMeter
from hearth.hub.partial import PartialDownload
from hearth.hub.retries import Cancelled, DownloadCancelled, Retries, check_cancelled
from hearth.store.blobs import store_error


class RestartNeeded(DownloadFailed):
    """The server stopped honouring ranges (or the file changed): start over sequentially."""


class RangedParts:
    def __init__(self, url: str, headers: dict[str, str], validator: str | None,
                 partial: PartialDownload, meter: ProgressMeter, cancelled: Cancelled) -> None:
        self.url, self.headers, self.validator = url, headers, validator
        self.partial, self.meter, self.cancelled = partial, meter, cancelled

    def fetch(self, total: int, parts: list[list[int]], first: Opened | None) -> str:
        """Fetch the parts; return the sha256 of the whole file."""
        try:
            fd = os.open(self.partial.path, os.O_RDWR | os.O_CREAT, 0o644)
            if os.fstat(fd).st_size != total:
                os.ftruncate(fd, total)
        except OSError as exc:
            if first is not None:
                first.close()
            raise store_error("write", self.partial.path, exc) from exc

        def frontier() -> int:
            for start, end, done in parts:
                if done < end - start + 1:
                    return start + done
            return total

        hasher = PrefixHasher(self.partial.path, frontier)
        stop = threading.Event()
        errors: list[BaseException] = []

        def stopped() -> bool:
            return stop.is_set() or bool(self.cancelled and self.cancelled())

        threads = []
        for index, part in enumerate(parts):
            given = first if index == 0 and first is not None else None
            thread = threading.Thread(target=self._part, args=(fd, part, given, stopped, stop, errors),
                                      name=f"hearth-part-{index}", daemon=True)
            threads.append(thread)
            thread.start()
        last_save = time.monotonic()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(PROGRESS_INTERVAL / len(threads))
                self.meter.show(sum(p[2] for p in parts))
                if self.cancelled and self.cancelled():
                    stop.set()
                if time.monotonic() - last_save > 1.0:
                    self.partial.save_meta()
                    last_save = time.monotonic()
        except BaseException:
            stop.set()
            hasher.abandon()
            raise
        finally:
            for thread in threads:
                thread.join(5)
            self.partial.save_meta()
            with contextlib.suppress(OSError):
                if not errors:
                    os.fsync(fd)
            # A part stuck in a read past the join may still write: leave its fd open then.
            if not any(t.is_alive() for t in threads):
                os.close(fd)
        if errors or any(p[2] < p[1] - p[0] + 1 for p in parts):
            hasher.abandon()
            if errors:
                raise errors[0]
            check_cancelled(self.cancelled)
            raise DownloadFailed(f"download of {display_url(self.url)} stopped before its end")
        self.meter.show(total, force=True)
        return hasher.finish(total)

    def _part(self, fd: int, part: list[int], opened: Opened | None, stopped: Callable[[], bool],
              stop: threading.Event, errors: list[BaseException]) -> None:
        start, end = part[0], part[1]
        retries = Retries(self.url, stopped)
        try:
            while part[2] < end - start + 1:
                if opened is None:
                    opened = self._open_part(start + part[2], end, retries)
                try:
                    while part[2] < end - start + 1:
                        if stopped():
                            return
                        data = opened.response.read(min(CHUNK, end - start + 1 - part[2]))
                        if not data:
                            raise ConnectionError("the connection closed early")
                        os.pwrite(fd, data, start + part[2])
                        part[2] += len(data)
                except Exception as exc:  # noqa: BLE001 - _Retries decides
                    if isinstance(exc, OSError) and is_disk_error(exc):
                        raise store_error("write", self.partial.path, exc) from exc
                    if isinstance(exc, HearthError):
                        raise
                    opened.close()
                    opened = None
                    retries.failed(exc, part[2], end - start + 1)
        except BaseException as exc:  # handed to the main thread
            if not isinstance(exc, DownloadCancelled):
                errors.append(exc)
            stop.set()
        finally:
            if opened is not None:
                opened.close()

    def _open_part(self, start: int, end: int, retries: Retries) -> Opened:
        while True:
            try:
                opened = open_range(self.url, self.headers, start=start, end=end, if_range=self.validator)
            except Exception as exc:  # noqa: BLE001 - _Retries decides
                retries.failed(exc, start, end + 1)
                continue
            if not opened.ranged or opened.start != start:
                opened.close()
                raise RestartNeeded(f"{display_url(self.url)} stopped answering range requests "
                                     "(or the file changed)")
            return opened


def split_parts(total: int, count: int) -> list[tuple[int, int]]:
    step = -(-total // count)
    return [(start, min(start + step, total) - 1) for start in range(0, total, step)]


def is_disk_error(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EBADF)
