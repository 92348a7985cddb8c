"""Download an HTTP(S) URL into the blob store: resumable, verified, throttled, cancellable.

Bytes go to a partial file in ``HEARTH_HOME/tmp`` (see partial.py), so a dropped connection
resumes with a Range request and an interrupted pull resumes in a later process. Small files
stream in order and are hashed while they arrive; large ones (``PARALLEL_MIN_BYTES``, when the
server takes ranges and no speed cap is set) come in HEARTH_DOWNLOAD_PARTS ranged parts written
in place and are hashed after. Only a file whose sha256 is right is renamed into ``blobs/``, so
nothing half-done or wrong ever sits under a real name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse
from hearth.errors import DigestMismatch, DownloadFailed, HearthError, StoreError
from hearth.hub import locks
from hearth.hub.hashing import BackgroundHasher, PrefixHasher
from hearth.hub.http_fetch import HTTPDownloadFailed, Opened, display_url, is_retryable, open_range
from hearth.hub.pacing import CHUNK, PROGRESS_INTERVAL, ProgressMeter, RateLimiter
from hearth.hub.partial import PartialDownload, claim_partial
from hearth.store.blobs import fsync_dir, store_error, validate_digest
from hearth.store.models import ModelStore

PARALLEL_MIN_BYTES = 64 << 20
RETRIES = 5  # attempts in a row that bring no new byte
RETRY_DELAY = 0.5  # doubled after each such attempt
DISK_MARGIN_BYTES = 1 << 20

Cancelled = Callable[[], bool] | None


class DownloadCancelled(DownloadFailed):
    """The caller stopped the download (client gone, Ctrl+C); what arrived is kept."""


class _RestartNeeded(DownloadFailed):
    """The parts on disk can no longer be completed from this server."""


def download_to_blob(
    store: ModelStore,
    url: str,
    *,
    expected_digest: str | None,
    size: int | None = None,
    headers: dict[str, str] | None = None,
    progress: ProgressFn,
    status: str,
    max_speed: float | None = None,
    cancelled: Cancelled = None,
) -> tuple[str, int]:
    """Fetch ``url`` into the store and return ``(digest, size)`` of the stored blob."""
    expected = validate_digest(expected_digest) if expected_digest else None
    if expected and store.blobs.has(expected):
        return _already_there(store, expected, progress, status)
    if config.offline():
        raise DownloadFailed(f"cannot download {display_url(url)}: downloads are disabled (HEARTH_OFFLINE=1)")
    if max_speed is not None and max_speed <= 0:
        raise DownloadFailed(f"max speed must be positive, got {max_speed}")
    key = expected[7:] if expected else "url-" + hashlib.sha256(url.encode()).hexdigest()[:40]
    tmp_dir = store.home / "tmp"

    def waiting() -> None:
        progress(ProgressResponse(status=f"{status}: waiting for another pull of the same file",
                                  digest=expected))

    with locks.exclusive(tmp_dir / f"dl-{key}.lock", cancelled=cancelled, on_wait=waiting) as lock:
        finished = lock.note if lock.note.startswith("sha256:") else expected
        if finished and store.blobs.has(finished):
            return _already_there(store, finished, progress, status)
        partial = claim_partial(tmp_dir, key)
        job = _Download(store, url, headers or {}, partial, expected, size, progress, status,
                        max_speed, cancelled)
        digest, length = job.run()
        lock.leave_note(digest)
    return digest, length


def _already_there(store: ModelStore, digest: str, progress: ProgressFn, status: str) -> tuple[str, int]:
    length = store.blobs.size(digest)
    progress(ProgressResponse(status=status, digest=digest, total=length, completed=length))
    return digest, length


class _Retries:
    """Bounded retries: RETRIES attempts in a row without a new byte end the download."""

    def __init__(self, url: str, cancelled: Cancelled) -> None:
        self.url, self.cancelled = url, cancelled
        self.failures = 0
        self.progress_mark = -1

    def failed(self, exc: BaseException, done: int, total: int | None) -> None:
        if not is_retryable(exc):
            raise exc
        if done > self.progress_mark:
            self.progress_mark, self.failures = done, 0
        self.failures += 1
        if self.failures > RETRIES:
            of = f" of {total}" if total else ""
            raise DownloadFailed(
                f"download of {display_url(self.url)} stopped at {done}{of} bytes after "
                f"{RETRIES + 1} attempts ({_reason(exc)}); pull again to resume") from None
        deadline = time.monotonic() + RETRY_DELAY * 2 ** (self.failures - 1)
        while time.monotonic() < deadline:
            check_cancelled(self.cancelled)
            time.sleep(0.05)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, DownloadFailed):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_cancelled(cancelled: Cancelled) -> None:
    if cancelled and cancelled():
        raise DownloadCancelled("download cancelled; what arrived is kept, pull again to resume")


class _Download:
    def __init__(self, store: ModelStore, url: str, headers: dict[str, str], partial: PartialDownload,
                 expected: str | None, size: int | None, progress: ProgressFn, status: str,
                 max_speed: float | None, cancelled: Cancelled) -> None:
        self.store, self.url, self.headers, self.partial = store, url, headers, partial
        self.expected, self.size, self.max_speed, self.cancelled = expected, size, max_speed, cancelled
        self.meter = ProgressMeter(progress, status, expected, size)
        self.retries = _Retries(url, cancelled)

    # -- opening -----------------------------------------------------------------------------

    def _validator(self) -> str | None:
        validator = self.partial.meta.get("validator")
        # If-Range needs a strong validator; a weak ETag could resume onto different bytes.
        return validator if isinstance(validator, str) and not validator.startswith("W/") else None

    def _open(self, start: int, end: int | None = None, done: int = 0) -> Opened:
        while True:
            check_cancelled(self.cancelled)
            try:
                return open_range(self.url, self.headers, start=start, end=end, if_range=self._validator())
            except Exception as exc:  # noqa: BLE001 - _Retries re-raises what is not retryable
                self.retries.failed(exc, done, self.meter.total)

    # -- the whole download ------------------------------------------------------------------

    def run(self) -> tuple[str, int]:
        parts = self.partial.meta.get("parts")
        total = self.partial.meta.get("total")
        if isinstance(parts, list) and isinstance(total, int) and self.max_speed is None:
            try:
                return self._resume_parallel(total, parts)
            except _RestartNeeded:
                self.partial.reset({})
        elif isinstance(total, int) and self.partial.size() == total:
            # Everything arrived before the last pull stopped; it only needs checking.
            self.meter.total = total
            return self._finish(self._hash_file(), total)
        return self._fresh_or_sequential()

    def _resume_parallel(self, total: int, parts: list[list[int]]) -> tuple[str, int]:
        self.meter.total = total
        self._check_disk(total - self.partial.size())
        return self._finish(self._parallel(total, parts, None), total)

    def _fresh_or_sequential(self) -> tuple[str, int]:
        have = self.partial.size()
        try:
            opened = self._open(have, done=have)
        except HTTPDownloadFailed as exc:
            if exc.http_status != 416 or not have:
                raise
            self.partial.reset({})  # what we hold is not a prefix of the file any more
            have = 0
            opened = self._open(0)
        total = opened.total
        if have and (not opened.ranged or self.partial.meta.get("total") != total):
            have = 0  # the server ignored the range or the file changed: start over
        if self.size is not None and total is not None and total != self.size:
            opened.close()
            raise DownloadFailed(f"{display_url(self.url)} is {total} bytes, expected {self.size}")
        self.meter.total = total or self.size
        try:
            self._check_disk((total or 0) - have)
            if have == 0:
                self.partial.reset({"total": total, "validator": opened.etag or opened.last_modified})
        except BaseException:
            opened.close()
            raise
        parts = config.download_parts()
        if (opened.ranged and opened.start == 0 and total and total >= PARALLEL_MIN_BYTES
                and self.max_speed is None and parts > 1):
            self.partial.meta["parts"] = [[start, end, 0] for start, end in _split(total, parts)]
            self.partial.save_meta()
            return self._finish(self._parallel(total, self.partial.meta["parts"], opened), total)
        if opened.ranged and opened.start != have:  # asked for a resume we no longer want
            opened.close()
            opened = self._open(have, done=have)
        digest, length = self._sequential(opened, have, total)
        return self._finish(digest, length)

    def _check_disk(self, needed: int) -> None:
        if needed <= 0:
            return
        folder = self.partial.path.parent
        free = shutil.disk_usage(folder).free
        margin = DISK_MARGIN_BYTES + needed // 100
        if free < needed + margin:
            raise StoreError(f"not enough disk space in {folder}: the download needs {_mb(needed)}, "
                             f"{_mb(free)} is free")

    # -- one stream, in order ----------------------------------------------------------------

    def _sequential(self, opened: Opened, have: int, total: int | None) -> tuple[str, int]:
        hasher = BackgroundHasher()
        limiter = RateLimiter(self.max_speed) if self.max_speed else None
        chunk = limiter.chunk_size() if limiter else CHUNK
        try:
            handle = open(self.partial.path, "r+b" if have else "wb")  # noqa: SIM115
        except OSError as exc:
            opened.close()
            raise store_error("write", self.partial.path, exc) from exc
        done = have
        try:
            with handle:
                _hash_prefix(handle, have, hasher)
                handle.seek(have)
                handle.truncate()
                while True:
                    try:
                        while total is None or done < total:
                            check_cancelled(self.cancelled)
                            data = opened.response.read(chunk if total is None else min(chunk, total - done))
                            if not data:
                                if total is None:
                                    break
                                raise ConnectionError("the connection closed early")
                            _write(handle, data, self.partial.path)
                            hasher.update(data)
                            done += len(data)
                            self.meter.show(done)
                            if limiter:
                                limiter.account(len(data))
                        break
                    except HearthError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - _Retries decides
                        opened.close()
                        handle.flush()
                        self.retries.failed(exc, done, total)
                        opened = self._open(done, done=done)
                        if not opened.ranged:
                            # No resume from this server: the whole file again, from byte 0.
                            hasher.digest()
                            hasher, done = BackgroundHasher(), 0
                            handle.seek(0)
                            handle.truncate()
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise store_error("write", self.partial.path, exc) from exc
        finally:
            opened.close()
            if not handle.closed:
                handle.close()
            digest = hasher.digest()
        self.meter.show(done, force=True)
        return digest, done

    # -- ranged parts, in parallel -----------------------------------------------------------

    def _parallel(self, total: int, parts: list[list[int]], first: Opened | None) -> str:
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
        retries = _Retries(self.url, stopped)
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
                    if isinstance(exc, OSError) and _is_disk_error(exc):
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

    def _open_part(self, start: int, end: int, retries: _Retries) -> Opened:
        while True:
            try:
                opened = open_range(self.url, self.headers, start=start, end=end, if_range=self._validator())
            except Exception as exc:  # noqa: BLE001 - _Retries decides
                retries.failed(exc, start, end + 1)
                continue
            if not opened.ranged or opened.start != start:
                opened.close()
                raise _RestartNeeded(f"{display_url(self.url)} stopped answering range requests "
                                     "(or the file changed)")
            return opened

    def _hash_file(self) -> str:
        from hearth.store.blobs import file_sha256

        try:
            return "sha256:" + file_sha256(self.partial.path)
        except OSError as exc:
            raise store_error("read", self.partial.path, exc) from exc

    # -- into the store ----------------------------------------------------------------------

    def _finish(self, digest: str, length: int) -> tuple[str, int]:
        if self.expected and digest != self.expected:
            self.partial.discard()  # wrong bytes are worth nothing for a resume either
            raise DigestMismatch(f"sha256 mismatch for {display_url(self.url)}: expected "
                                 f"{self.expected}, got {digest} ({length} bytes); nothing was stored")
        target = self.store.blobs.path(digest)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.partial.path, target)
        except OSError as exc:
            if exc.errno != 18:  # EXDEV: tmp/ on another file system; copy through the writer
                raise store_error("write", target, exc) from exc
            self.store.blobs.put_file(self.partial.path)
            self.partial.path.unlink()
        self.partial.forget_meta()
        fsync_dir(target.parent)
        return digest, length


def _split(total: int, count: int) -> list[tuple[int, int]]:
    step = -(-total // count)
    return [(start, min(start + step, total) - 1) for start in range(0, total, step)]


def _hash_prefix(handle, length: int, hasher: BackgroundHasher) -> None:  # type: ignore[no-untyped-def]
    handle.seek(0)
    remaining = length
    while remaining > 0:
        data = handle.read(min(4 * CHUNK, remaining))
        if not data:
            raise StoreError(f"the partial download {handle.name} is shorter than expected")
        hasher.update(data)
        remaining -= len(data)


def _write(handle, data: bytes, path: Path) -> None:  # type: ignore[no-untyped-def]
    try:
        handle.write(data)
    except OSError as exc:
        raise store_error("write", path, exc) from exc


def _is_disk_error(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EBADF)


def _mb(count: int) -> str:
    return f"{count / 1e6:.1f} MB"
