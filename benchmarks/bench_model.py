"""Getting the model a benchmark runs on, the way a user would: ``hearth pull`` or ``hearth create``.

Shared by the scripts in this folder (run as ``python benchmarks/NAME.py``, so this folder is on
``sys.path``).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MODEL = "smollm2"
FILE_MODEL = "bench-model"


def hearth_command() -> str:
    """The installed console script next to this interpreter (``.venv/bin/hearth``)."""
    script = Path(sys.executable).parent / "hearth"
    if not script.is_file():
        sys.exit(f"no hearth console script at {script}; run `make setup` first")
    return str(script)


def hearth_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["HEARTH_HOME"] = str(home)
    return env


class BenchHome:
    """A HEARTH_HOME holding the model: ``--home DIR`` as given, or a temp folder removed at exit."""

    def __init__(self, home: str | None) -> None:
        self.temporary = home is None
        self.path = Path(home or tempfile.mkdtemp(prefix="hearth-bench-")).resolve()

    def __enter__(self) -> BenchHome:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.temporary:
            shutil.rmtree(self.path, ignore_errors=True)

    def ensure_model(self, model_file: str | None) -> tuple[str, Path]:
        """The model's name in this home and its GGUF blob; pulled or created when missing."""
        from hearth.errors import HearthError
        from hearth.store import ModelStore

        store = ModelStore(self.path)
        name = FILE_MODEL if model_file else DEFAULT_MODEL
        if not store.exists(name):
            if model_file:
                command = [hearth_command(), "create", name, "--from", str(Path(model_file).resolve())]
            else:
                command = [hearth_command(), "pull", name]
            print(f"$ HEARTH_HOME={self.path} hearth {' '.join(command[1:])}", file=sys.stderr)
            done = subprocess.run(command, env=hearth_env(self.path), stdin=subprocess.DEVNULL,
                                  stdout=sys.stderr, check=False)
            if done.returncode != 0:
                sys.exit(f"could not get the model ({' '.join(command[1:])} exited {done.returncode})")
        try:
            return name, store.get(name).model_path
        except HearthError as exc:
            sys.exit(f"the model is not usable: {exc}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return idle, sum(fields)


def wait_for_idle(max_wait_s: float, threshold: float = 0.85, window_s: float = 0.5) -> float:
    """Wait (at most ``max_wait_s``) until the CPUs are at least ``threshold`` idle over a window.

    On a 2-core machine another busy process halves a 2-thread llama.cpp decode or worse (its
    threads wait on each other), so a measurement taken then says nothing about hearth. Returns
    the idle fraction last seen (1.0 where /proc/stat is missing).
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        try:
            idle0, total0 = _cpu_times()
            time.sleep(window_s)
            idle1, total1 = _cpu_times()
        except OSError:
            return 1.0
        idle = (idle1 - idle0) / max(1, total1 - total0)
        if idle >= threshold or time.monotonic() >= deadline:
            return idle


class OtherLoad:
    """How busy the CPUs were with other processes while a child process of ours ran.

    ``share`` is the fraction of all CPU time (every core) used by anyone but our children, from
    /proc/stat and getrusage; 0.0 means the child had the machine to itself.
    """

    def __init__(self) -> None:
        self.share = 0.0

    def __enter__(self) -> OtherLoad:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        if self._start is None or end is None:
            return
        tick = os.sysconf("SC_CLK_TCK")
        idle = (end[0] - self._start[0]) / tick
        total = (end[1] - self._start[1]) / tick
        ours = end[2] - self._start[2]
        if total > 0:
            self.share = max(0.0, min(1.0, (total - idle - ours) / total))

    @staticmethod
    def _sample() -> tuple[int, int, float] | None:
        try:
            idle, total = _cpu_times()
        except OSError:
            return None
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return idle, total, usage.ru_utime + usage.ru_stime
