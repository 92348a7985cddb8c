"""Content-addressed blobs: ``blobs/sha256-<hex>``.

A blob is only ever created by ``BlobWriter``: bytes go to a temp file in the same folder,
hashed as they are written, fsynced, checked against the digest we were promised, then
``os.replace``d into place. A crash, a kill or a full disk leaves at most a ``.tmp-*`` file
(removed by ``hearth prune``), never a wrong or half blob under a real name.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from hearth.errors import DigestMismatch, InvalidRequest, StoreError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
TEMP_PREFIX = ".tmp-"
CHUNK = 1 << 20


def file_sha256(path: Path, *, copy_to: BinaryIO | None = None,
                on_bytes: Callable[[int], None] | None = None) -> str:
    """The sha256 (hex) of a file, read in chunks; each chunk is also written to ``copy_to`` and
    its length reported to ``on_bytes`` when given. The one place hearth hashes a whole file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            if copy_to is not None:
                copy_to.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return digest.hexdigest()


def validate_digest(digest: str) -> str:
    """Accept ``sha256:<64 hex>`` (or Ollama's file form ``sha256-<hex>``); anything else is refused
    before it can become part of a path."""
    if isinstance(digest, str) and digest.startswith("sha256-"):
        digest = "sha256:" + digest[len("sha256-") :]
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise InvalidRequest(f"invalid digest '{digest}': expected sha256: and 64 hex digits")
    return digest


def store_error(action: str, path: Path, exc: OSError) -> StoreError:
    if exc.errno == errno.ENOSPC:
        return StoreError(f"cannot {action} {path}: the disk is full")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return StoreError(
            f"cannot {action} {path}: {exc.strerror} (check that HEARTH_HOME is writable)"
        )
    return StoreError(f"cannot {action} {path}: {exc.strerror or exc}")


def fsync_dir(path: Path) -> None:
    # Makes the rename itself durable; not every file system allows opening a folder.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a small file (manifest) atomically: temp file, fsync, rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fsync_dir(path.parent)
    except OSError as exc:
        raise store_error("write", path, exc) from exc


class BlobWriter:
    """Streams bytes into a temp file while hashing; ``commit`` verifies and moves it into place."""

    def __init__(self, store: BlobStore, expected_digest: str | None = None) -> None:
        self.store = store
        self.expected = validate_digest(expected_digest) if expected_digest else None
        self.size = 0
        self._hash = hashlib.sha256()
        self._tmp = store.root / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self._handle: BinaryIO | None = None

    def __enter__(self) -> BlobWriter:
        try:
            self.store.root.mkdir(parents=True, exist_ok=True)
            self._handle = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
        except OSError as exc:
            raise store_error("write to", self.store.root, exc) from exc
        return self

    def write(self, data: bytes) -> None:
        assert self._handle is not None, "BlobWriter used outside 'with'"
        try:
            self._handle.write(data)
        except OSError as exc:
            raise store_error("write", self._tmp, exc) from exc
        self._hash.update(data)
        self.size += len(data)

    def commit(self) -> str:
        assert self._handle is not None
        digest = "sha256:" + self._hash.hexdigest()
        try:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
        except OSError as exc:
            raise store_error("write", self._tmp, exc) from exc
        if self.expected and digest != self.expected:
            raise DigestMismatch(
                f"sha256 mismatch: expected {self.expected}, got {digest} ({self.size} bytes); "
                "nothing was stored"
            )
        target = self.store.path(digest)
        try:
            os.replace(self._tmp, target)
        except OSError as exc:
            raise store_error("write", target, exc) from exc
        fsync_dir(self.store.root)
        return digest

    def __exit__(self, *exc_info: object) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        digest = validate_digest(digest)
        return self.root / digest.replace(":", "-")

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def writer(self, expected_digest: str | None = None) -> BlobWriter:
        return BlobWriter(self, expected_digest)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        with self.writer() as writer:
            writer.write(data)
            digest = writer.commit()
        return digest, len(data)

    def put_stream(
        self,
        source: BinaryIO,
        *,
        expected_digest: str | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> tuple[str, int]:
        with self.writer(expected_digest) as writer:
            while chunk := source.read(CHUNK):
                writer.write(chunk)
                if on_bytes:
                    on_bytes(len(chunk))
            digest = writer.commit()
        return digest, writer.size

    def put_file(
        self, path: Path, *, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[str, int]:
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise InvalidRequest(f"cannot read {path}: {exc.strerror}") from exc
        with handle:
            return self.put_stream(handle, on_bytes=on_bytes)

    def read_bytes(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except OSError as exc:
            raise StoreError(f"blob {digest} is missing or unreadable: {exc.strerror}") from exc

    def delete(self, digest: str) -> None:
        path = self.path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise store_error("delete", path, exc) from exc

    def digests(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for entry in self.root.iterdir():
            name = entry.name
            if name.startswith("sha256-") and DIGEST_RE.fullmatch("sha256:" + name[7:]):
                yield "sha256:" + name[7:]

    def stale_temp_files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [entry for entry in self.root.iterdir() if is_stale_temp(entry)]


def is_stale_temp(path: Path) -> bool:
    """A temp file or folder whose writer is gone (its name carries the writer's pid)."""
    if not path.name.startswith(TEMP_PREFIX):
        return False
    pid_text = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
    return not (pid_text.isdigit() and _process_alive(int(pid_text)))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
