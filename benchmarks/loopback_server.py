"""A server subprocess on a free loopback port, as the benchmarks run their peers and hearth:
its output goes to a temp log, it is ready when ``ready_path`` answers 200, and it is stopped
by its PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LoopbackServer:
    name = "server"
    ready_path = "/"
    log_prefix = "server-"
    start_timeout_s = 60.0

    def __init__(self, command: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        log_fd, self.log_path = tempfile.mkstemp(prefix=self.log_prefix, suffix=".log")
        started = time.perf_counter()
        try:
            self.process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                            stdout=log_fd, stderr=subprocess.STDOUT)
        finally:
            os.close(log_fd)
        try:
            self.startup_s = self._wait_ready(started)
        except BaseException:
            self.terminate()
            self.remove_log()
            raise

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_ready(self, started: float) -> float:
        import httpx

        while time.perf_counter() < started + self.start_timeout_s:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base + self.ready_path, timeout=1.0).status_code == 200:
                    return time.perf_counter() - started
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer within {self.start_timeout_s:.0f}s: "
                           f"{self.log_tail()}")

    def log_tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return Path(self.log_path).read_text(errors="replace")[-chars:].strip()
        return ""

    def terminate(self, timeout: float = 20) -> int | None:
        """SIGTERM, up to ``timeout`` seconds to finish, then SIGKILL. Returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def remove_log(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
