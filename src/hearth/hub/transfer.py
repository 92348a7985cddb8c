"""Download an HTTP(S) URL into the blob store: resumable, verified, throttled, cancellable.

Bytes go to a partial file in ``HEARTH_HOME/tmp`` (see partial.py), so a dropped connection
resumes with a Range request and an interrupted pull resumes in a later process. Small files
stream in order and are hashed while they arrive; large ones (``PARALLEL_MIN_BYTES``, when the
server takes ranges and no speed cap is set) come in HEARTH_DOWNLOAD_PARTS ranged parts written
in place and are hashed after (``ranged_parts.py``; retries and cancelling are ``retries.py``).
Only a file whose sha256 is right is renamed into ``blobs/``, so nothing half-done or wrong ever
sits under a real name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse
from hearth.errors import DigestMismatch, DownloadFailed, HearthError, StoreError
from hearth.hub import locks
from hearth.hub.hashing import BackgroundHasher
from hearth.hub.http_fetch import HTTPDownloadFailed, Opened, display_url, open_range
from hearth.hub.pacing import CHUNK, ProgressMeter, RateLimiter
from hearth.hub.partial import PartialDownload, claim_partial
from hearth.hub.ranged_parts import RangedParts, RestartNeeded, split_parts
from hearth.hub.retries import Cancelled, Retries, check_cancelled
from hearth.store.blobs import fsync_dir, store_error, validate_digest
from hearth.store.models import ModelStore
from hearth.units import human_size

PARALLEL_MIN_BYTES = 64 << 20
DISK_MARGIN_BYTES = 1 << 20


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


class _Download:
    def __init__(self, store: ModelStore, url: str, headers: dict[str, str], partial: PartialDownload,
                 expected: str | None, size: int | None, progress: ProgressFn, status: str,
                 max_speed: float | None, cancelled: Cancelled) -> None:
        self.store, self.url, self.headers, self.partial = store, url, headers, partial
        self.expected, self.size, self.max_speed, self.cancelled = expected, size, max_speed, cancelled
        self.meter = ProgressMeter(progress, status, expected, size)
        self.retries = Retries(url, cancelled)

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
            except RestartNeeded:
                self.partial.reset({})
        elif isinstance(total, int) and self.partial.size() == total:
            # Everything arrived before the last pull stopped; it only needs checking.
            self.meter.total = total
            return self._finish(self._hash_file(), total)
        return self._fresh_or_sequential()

    def _resume_parallel(self, total: int, parts: list[list[int]]) -> tuple[str, int]:
        self.meter.total = total
        self._check_disk(total - self.partial.size())
        return self._finish(self._fetch_parts(total, parts, None), total)

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
            self.partial.meta["parts"] = [[start, end, 0] for start, end in split_parts(total, parts)]
            self.partial.save_meta()
            return self._finish(self._fetch_parts(total, self.partial.meta["parts"], opened), total)
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
            raise StoreError(f"not enough disk space in {folder}: the download needs {human_size(needed)}, "
                             f"{human_size(free)} is free")

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

    def _fetch_parts(self, total: int, parts: list[list[int]], first: Opened | None) -> str:
        return RangedParts(self.url, self.headers, self._validator(), self.partial, self.meter,
                           self.cancelled).fetch(total, parts, first)

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


