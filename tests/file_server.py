"""A small HTTP file server on a loopback port, with the failures a real download meets.

It serves byte strings or files by path, honours single ``Range: bytes=a-b`` requests and
``If-Range`` (strong ETag), counts requests, and can misbehave on purpose: cut a response off
after some bytes, answer 500 once it has sent a given amount, or ignore ranges altogether.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Served:
    data: bytes | None = None
    path: Path | None = None

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.path.stat().st_size  # type: ignore[union-attr]

    @property
    def etag(self) -> str:
        if self.data is not None:
            return '"' + hashlib.sha256(self.data).hexdigest()[:16] + '"'
        stat = self.path.stat()  # type: ignore[union-attr]
        return f'"{stat.st_size:x}-{int(stat.st_mtime):x}"'


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    ranges: bool = True
    #: Close the connection after this many body bytes, for the next ``drops`` responses.
    drop_after: int | None = None
    drops: int = 0
    #: Once this many body bytes went out in total, answer every further request with 500.
    fail_after_total: int | None = None
    #: Extra headers for every response (``{"/path": {...}}``).
    extra_headers: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Slow every response down to this many bytes per second (0: as fast as it goes).
    bytes_per_second: int = 0
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bytes_sent: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                owner._handle(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                owner._handle(self, body=False)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, path: str, data: bytes | Path) -> str:
        self.files[path] = Served(data=data) if isinstance(data, bytes) else Served(path=data)
        return self.url + path

    def gets(self, path: str) -> int:
        return sum(1 for method, p, _ in self.requests if method == "GET" and p == path)

    def _handle(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        path = request.path.split("?")[0]
        with self._lock:
            self.requests.append((request.command, path, dict(request.headers.items())))
            failing = self.fail_after_total is not None and self.bytes_sent >= self.fail_after_total
        served = self.files.get(path)
        if served is None or failing:
            request.send_response(404 if served is None else 500)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        size = served.size
        start, end = 0, size - 1
        status = 200
        wanted = request.headers.get("Range")
        if_range = request.headers.get("If-Range")
        if wanted and self.ranges and (if_range is None or if_range == served.etag):
            match = _RANGE.fullmatch(wanted.strip())
            if match:
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                if start >= size:
                    request.send_response(416)
                    request.send_header("Content-Range", f"bytes */{size}")
                    request.send_header("Content-Length", "0")
                    request.end_headers()
                    return
                status = 206
        request.send_response(status)
        request.send_header("Content-Length", str(end - start + 1))
        request.send_header("ETag", served.etag)
        if self.ranges:
            request.send_header("Accept-Ranges", "bytes")
        if status == 206:
            request.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        for name, value in self.extra_headers.get(path, {}).items():
            request.send_header(name, value)
        request.end_headers()
        if body:
            self._send_body(request, served, start, end)

    def _send_body(self, request: BaseHTTPRequestHandler, served: Served, start: int, end: int) -> None:
        with self._lock:
            limit = None
            if self.drop_after is not None and self.drops > 0:
                self.drops -= 1
                limit = self.drop_after
        remaining = end - start + 1
        if limit is not None:
            remaining = min(remaining, limit)
        position = start
        piece = min(1 << 20, max(4096, self.bytes_per_second // 20)) if self.bytes_per_second else 1 << 20
        handle = open(served.path, "rb") if served.path else None  # noqa: SIM115
        try:
            while remaining > 0:
                if handle is not None:
                    handle.seek(position)
                    chunk = handle.read(min(piece, remaining))
                else:
                    chunk = served.data[position:position + min(piece, remaining)]  # type: ignore[index]
                request.wfile.write(chunk)
                if self.bytes_per_second:
                    time.sleep(len(chunk) / self.bytes_per_second)
                with self._lock:
                    self.bytes_sent += len(chunk)
                position += len(chunk)
                remaining -= len(chunk)
            if limit is not None:
                request.wfile.flush()
                request.close_connection = True
                import socket

                request.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            request.close_connection = True
        finally:
            if handle is not None:
                handle.close()


@contextmanager
def serve_files(**options: object) -> Iterator[FileServer]:
    server = FileServer(**options)  # type: ignore[arg-type]
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
