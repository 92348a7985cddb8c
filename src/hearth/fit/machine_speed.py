"""The machine's measured speed figures, kept in ``HEARTH_HOME/machine-speed.json``.

``hearth doctor --measure-speed`` measures them (``hearth.selftest.speed_probe``) and writes the
file; ``hearth fit`` and the web app read it to predict tokens per second (``speed.py``). The
figures hold for the engine, thread count, CPU and attention settings they were measured with:
when hearth or llama-cpp-python is upgraded, HEARTH_NUM_THREAD, HEARTH_FLASH_ATTENTION or
HEARTH_KV_CACHE_TYPE changes or the home moves to another CPU they are stale, and no speed is
predicted until they are measured again.

Reading is cheap (a small JSON file, /proc/cpuinfo, a package version from its metadata; no
llama.cpp) and memoised for two seconds, so a page of catalog tags asks once.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from hearth.fit.speed import MachineSpeed, stale_reason

SPEED_FILE = "machine-speed.json"
MEASURE_HINT = "run `hearth doctor --measure-speed` to measure this machine"
_MEMO_SECONDS = 2.0
_memo: dict[tuple[Any, ...], tuple[float, tuple[MachineSpeed | None, str]]] = {}
_slow_facts: dict[str, Any] = {}  # when read, the llama-cpp-python version, the CPU model


def speed_file(home: Path | None = None) -> Path:
    from hearth import config

    return (home or config.home()) / SPEED_FILE


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def llama_cpp_version() -> str:
    """llama-cpp-python's version from its package metadata (without importing llama.cpp)."""
    from importlib import metadata

    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        return ""


def current_identity(threads: int | None = None) -> dict[str, Any]:
    """What figures must have been measured with to hold now: hearth's and llama-cpp-python's
    versions, the decode threads hearth uses (HEARTH_NUM_THREAD), the CPU model and the attention
    settings (HEARTH_FLASH_ATTENTION, HEARTH_KV_CACHE_TYPE)."""
    from hearth import config
    from hearth.errors import HearthError
    from hearth.version import __version__

    if threads is None:
        try:
            threads = config.num_thread()
        except HearthError:
            threads = None
    try:
        attention: dict[str, Any] = {"flash_attention": config.flash_attention(),
                                     "kv_cache_type": config.kv_cache_type()}
    except HearthError:
        attention = {"flash_attention": None, "kv_cache_type": None}
    now = time.monotonic()
    if now - _slow_facts.get("at", -_MEMO_SECONDS) >= _MEMO_SECONDS:
        # A package's metadata and /proc/cpuinfo take milliseconds; a page of tags asks often.
        _slow_facts.update(at=now, llama_cpp_version=llama_cpp_version(), cpu_model=cpu_model())
    return {"hearth_version": __version__, "llama_cpp_version": _slow_facts["llama_cpp_version"],
            "threads": threads, "cpu_model": _slow_facts["cpu_model"], **attention}


def read_machine_speed(home: Path | None = None) -> tuple[MachineSpeed | None, str]:
    """The cached figures when they hold for this machine now, else None and why not (one
    phrase: "not measured", "measured with llama-cpp-python 0.3.35, now 0.3.36", ...)."""
    path = speed_file(home)
    try:
        stat = path.stat()
        stamp: Any = (stat.st_mtime_ns, stat.st_size)
    except OSError:
        stamp = None
    identity = current_identity()
    key = (str(path), stamp, tuple(sorted(identity.items())))
    now = time.monotonic()
    cached = _memo.get(key)
    if cached is not None and now - cached[0] < _MEMO_SECONDS:
        return cached[1]
    result = _read(path, identity) if stamp is not None else (None, "not measured")
    _memo.clear()
    _memo[key] = (now, result)
    return result


def _read(path: Path, identity: dict[str, Any]) -> tuple[MachineSpeed | None, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, f"{path.name} cannot be read"
    figures = MachineSpeed.from_dict(data)
    if figures is None:
        return None, f"{path.name} is not in this hearth's format"
    reason = stale_reason(figures, identity)
    return (None, reason) if reason else (figures, "")


def write_machine_speed(figures: MachineSpeed, home: Path | None = None) -> Path:
    """Write the figures atomically (temp file in the same folder, then rename)."""
    path = speed_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".machine-speed-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(figures.as_dict(), out, indent=2)
            out.write("\n")
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _memo.clear()
    return path
