"""When llama.cpp dies under a command, the user gets one line, exit status 1 and an untouched
store: the CLI's engine work runs in a forked child (``cli/crash_guard.py``) and the Python API's
in a runner process. The engine processes here are killed for real, by SIGSEGV and SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hearth.cli.main import build_parser
from tests.conftest import hearth_env, run_hearth
from tests.tinymodel import write_tiny_model

LONG = ["-o", "num_ctx=8192", "-o", "num_predict=8000", "-o", "temperature=0"]


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Big enough that 8000 tokens take seconds, so the engine can be killed mid-answer."""
    return write_tiny_model(tmp_path_factory.mktemp("slow") / "slow.gguf", n_layers=4, n_embd=256,
                            context_length=8192)


@pytest.fixture
def home(tmp_path: Path, slow_model: Path) -> Path:
    home = tmp_path / "home"
    created = run_hearth(["create", "slow", "--from", str(slow_model)], hearth_env(home))
    assert created.returncode == 0, created.stderr
    return home


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def kill_engine_mid_answer(args: list[str], env: dict[str, str], sig: int) -> tuple[int, str, str]:
    """Start the command, wait for the first answer text, kill the engine process (the forked
    child doing the work) with ``sig``, and return the exit status, stdout and stderr."""
    process = subprocess.Popen([sys.executable, "-m", "hearth", *args], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    out: list[bytes] = []
    started = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        while chunk := process.stdout.read1(4096):
            out.append(chunk)
            started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert started.wait(120), "no answer text appeared"
        engines = children(process.pid)
        assert len(engines) == 1, engines
        os.kill(engines[0], sig)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    reader.join(timeout=10)
    return process.returncode, b"".join(out).decode(errors="replace"), err.decode(errors="replace")


@pytest.mark.parametrize("sig, name", [(signal.SIGSEGV, "SIGSEGV"), (signal.SIGKILL, "SIGKILL")])
def test_run_whose_engine_dies_prints_one_line(home: Path, sig: int, name: str) -> None:
    before = snapshot(home)
    code, out, err = kill_engine_mid_answer(["run", "slow", "Once upon a time", *LONG],
                                            hearth_env(home), sig)
    assert code == 1
    assert out.strip()  # the answer had started
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hearth: the engine crashed while running slow: killed by " + name)
    assert lines[0].endswith("run `hearth doctor`")
    assert "Traceback" not in err
    assert snapshot(home) == before


def test_generate_on_a_file_whose_engine_dies(tmp_path: Path, slow_model: Path) -> None:
    code, _, err = kill_engine_mid_answer(["generate", "-m", str(slow_model), "-p", "Once",
                                           "--ctx", "8192", "-n", "8000", "--temp", "0"],
                                          hearth_env(tmp_path / "home"), signal.SIGSEGV)
    assert code == 1
    assert err.strip() == (f"hearth: the engine crashed while generating with {slow_model}: "
                           "killed by SIGSEGV; run `hearth doctor`")


def start_long_run(home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "hearth", "run", "slow", "Once", *LONG],
                            env=hearth_env(home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_interrupting_a_guarded_run_is_not_a_crash(home: Path) -> None:
    process = start_long_run(home)
    try:
        assert process.stdout is not None and process.stdout.read1(1)
        process.send_signal(signal.SIGTERM)  # passed on to the child, which stops
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal.SIGTERM
    assert b"crashed" not in err
    time.sleep(0.2)
    assert children(process.pid) == []


def test_killing_hearth_takes_its_engine_child_along(home: Path) -> None:
    process = start_long_run(home)
    try:
        assert process.stdout is not None and process.stdout.read1(1)
        engine = children(process.pid)[0]
        process.kill()
        process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{engine}").exists(), "the engine child outlived hearth"
    finally:
        if process.poll() is None:
            process.kill()


def test_without_the_guard_the_work_runs_in_the_hearth_process(home: Path) -> None:
    result = run_hearth(["run", "slow", "Once", "-o", "num_predict=3", "-o", "temperature=0"],
                        hearth_env(home, HEARTH_CRASH_GUARD="0"))
    assert result.returncode == 0 and result.stdout.strip()


def test_every_command_that_runs_llama_cpp_is_guarded() -> None:
    parser = build_parser()
    commands = {
        "run": ["run", "m"], "generate": ["generate", "-m", "f.gguf", "-p", "x"],
        "quality": ["quality", "m"], "create": ["create", "m", "--from", "f.gguf", "-q", "Q4_0"],
        "compare": ["compare", "a", "b", "x"],
    }
    for argv in commands.values():
        args = parser.parse_args(argv)
        assert args.engine_work(args).split()[0] in {"running", "generating", "measuring",
                                                     "creating", "comparing"}
    for argv in (["list"], ["pull", "m"], ["serve"], ["doctor"]):
        assert getattr(parser.parse_args(argv), "engine_work", None) is None


PYTHON_API_SCRIPT = textwrap.dedent("""
    import os, signal
    import hearth
    from hearth import python_api
    from hearth.errors import EngineError

    options = dict(num_ctx=8192, num_predict=8000, temperature=0)
    stream = hearth.generate("slow", "Once upon a time", stream=True, **options)
    next(stream)
    runner = python_api._get_runtime().ps().models[0].runner_pid
    assert runner and runner != os.getpid()
    os.kill(runner, signal.SIGSEGV)
    try:
        for _ in stream:
            pass
        print("NO ERROR")
    except EngineError as exc:
        print("ERROR:", exc.message)
    again = hearth.generate("slow", "Once", num_predict=3, temperature=0)
    print("AGAIN:", again.done, bool(again.response))
""")


def test_python_api_survives_its_engine_dying(home: Path) -> None:
    result = subprocess.run([sys.executable, "-c", PYTHON_API_SCRIPT], env=hearth_env(home),
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert "stopped unexpectedly while running slow:latest (killed by SIGSEGV)" in lines["ERROR"]
    assert "hearth doctor" in lines["ERROR"]
    assert lines["AGAIN"] == "True True"  # the next call loads the model again
