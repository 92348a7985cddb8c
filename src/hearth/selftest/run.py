"""Run the engine self-test in a child process and say what happened: the speeds, or how the
child died (a signal, an exit status, a time-out) with whatever build facts it reported first.

The model is the default one when it is installed (its speed means something to the user),
otherwise a tiny model written on the spot with Q8_0 weights in 256-wide matrices: the shapes
and type that send llama.cpp down its SIMD (and, where compiled in, AMX) matrix kernels, so a
build that crashes on real models crashes here too, with no download.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hearth.exits import signal_name

TIMEOUT_SECONDS = 120.0


@dataclass
class SelfTestResult:
    model: str
    build: dict = field(default_factory=dict)  # what the child reported before decoding
    result: dict | None = None  # speeds when it worked
    signal: str | None = None  # e.g. "SIGSEGV" when the child was killed
    error: str | None = None  # one line: what went wrong

    @property
    def ok(self) -> bool:
        return self.result is not None and not self.error

    def to_json(self) -> dict:
        return {"ok": self.ok, "model": self.model, "signal": self.signal, "error": self.error,
                **(self.result or {})}


def write_probe_model(folder: Path) -> Path:
    from hearth.selftest.tiny_model import write_tiny_model

    return write_tiny_model(folder / "self-test.gguf", n_layers=2, n_embd=256, file_type="Q8_0",
                            name="hearth-self-test", context_length=512)


def run_self_test(model: Path | None = None, *, tokens: int = 32, threads: int = 1,
                  timeout: float = TIMEOUT_SECONDS, label: str | None = None) -> SelfTestResult:
    with tempfile.TemporaryDirectory(prefix="hearth-self-test-") as scratch:
        path = model or write_probe_model(Path(scratch))
        name = label or (str(model) if model else "a tiny generated model (Q8_0)")
        return _run_child(path, name, tokens, threads, timeout)


def _run_child(path: Path, name: str, tokens: int, threads: int, timeout: float) -> SelfTestResult:
    from hearth.engine.runner_process import child_env

    outcome = SelfTestResult(model=name)
    command = [sys.executable, "-m", "hearth.selftest.child", str(path), str(tokens), str(threads)]
    try:
        child = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                               env=child_env(), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        stage = _read_reports(outcome, _text(exc.stdout))
        outcome.result = None
        outcome.error = f"the test decode did not finish within {timeout:.0f} s ({stage})"
        return outcome
    stage = _read_reports(outcome, child.stdout)
    if child.returncode < 0:
        outcome.signal = signal_name(-child.returncode)
        outcome.result = None
        outcome.error = f"the engine crashed {stage}: killed by {outcome.signal}"
    elif child.returncode != 0 and not outcome.error:
        last = (child.stderr.strip().splitlines() or ["no message"])[-1]
        outcome.error = f"the test decode failed (exit status {child.returncode}): {last}"
    return outcome


def _text(output: str | bytes | None) -> str:
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else output or ""


def _read_reports(outcome: SelfTestResult, stdout: str) -> str:
    """Take what the child reported (build facts, load, result, error); say how far it got."""
    loaded = False
    for line in stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        outcome.build = message.get("build", outcome.build)
        outcome.result = message.get("result", outcome.result)
        outcome.error = message.get("error", outcome.error)
        loaded = loaded or bool(message.get("loaded"))
    if loaded:
        return "while decoding"
    return "while loading the model" if outcome.build else "while loading llama.cpp"
