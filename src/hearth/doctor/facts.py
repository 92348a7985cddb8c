"""The facts ``hearth doctor`` reports, each read on its own so one that cannot be read (no
/proc, an unwritable folder, a setting that does not parse) leaves the others standing.

Everything that runs llama.cpp's native code happens in the self-test child; this process only
reads files, asks the operating system and, for the server, makes one HTTP request.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

# CPU flags that decide which llama.cpp kernels run (Linux /proc/cpuinfo spelling).
FLAGS_OF_NOTE = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16",
                 "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "asimd", "sve", "i8mm")


def hearth_facts() -> dict[str, Any]:
    from hearth.version import __version__

    return {"version": __version__, "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
            "executable": sys.executable}


def _cpuinfo() -> tuple[str, list[str]]:
    model, flags = "", []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model", "Hardware") and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:
        pass
    if not model and sys.platform == "darwin":
        model = _sysctl("machdep.cpu.brand_string")
    return model or platform.processor() or "unknown", flags


def _sysctl(name: str) -> str:
    import subprocess

    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True,
                              timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_facts() -> dict[str, Any]:
    from hearth import config
    from hearth.errors import HearthError

    model, flags = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    facts: dict[str, Any] = {"model": model, "architecture": platform.machine(),
                             "cores": os.cpu_count() or 1, "cores_usable": usable,
                             "flags": [flag for flag in FLAGS_OF_NOTE if flag in flags]}
    try:
        facts["threads"] = config.num_thread()
    except HearthError as exc:
        facts["threads"] = None
        facts["threads_error"] = exc.message
    try:
        facts["flash_attention"] = config.flash_attention()
        facts["kv_cache_type"] = config.kv_cache_type()
    except HearthError as exc:
        facts["attention_error"] = exc.message
    return facts


def memory_facts() -> dict[str, Any]:
    from hearth.fit.machine import read_machine_memory

    memory = read_machine_memory()
    return {"ram_total": memory.ram_total, "ram_available": memory.ram_available,
            "gpu_free": memory.gpu_free, "gpu_total": memory.gpu_total}


def _existing_ancestor(folder: Path) -> Path:
    """``folder``, or the nearest folder above it that exists (HEARTH_HOME may not exist yet)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _writable(folder: Path) -> bool:
    """Whether a file can really be made there (``os.access`` says yes to root on a read-only
    mount and to every ACL it does not understand)."""
    try:
        with tempfile.NamedTemporaryFile(dir=_existing_ancestor(folder), prefix=".hearth-doctor-"):
            return True
    except OSError:
        return False


def home_facts() -> dict[str, Any]:
    from hearth import config
    from hearth.errors import HearthError
    from hearth.store import ModelStore

    home = config.home()
    facts: dict[str, Any] = {"path": str(home), "exists": home.is_dir(), "writable": _writable(home)}
    try:
        facts["disk_free"] = shutil.disk_usage(_existing_ancestor(home)).free
    except OSError:
        facts["disk_free"] = None
    try:
        models = ModelStore().list() if home.is_dir() else []
        facts["models"] = len(models)
        facts["default_model"] = next((str(m.model_path) for m in models
                                       if m.name.short == "smollm2:latest"), None)
    except (HearthError, OSError) as exc:
        facts["models"] = None
        facts["models_error"] = getattr(exc, "message", str(exc))
    return facts


def server_facts() -> dict[str, Any]:
    """Whether a hearth server answers at HEARTH_HOST (one GET /api/version, with the API key
    when one is set), spoken with ``http.client`` directly: the doctor sits beside the runtime,
    below the CLI's client."""
    import http.client
    import json

    from hearth import config
    from hearth.errors import HearthError

    try:
        address = config.host()
        host, _, port = address.rpartition(":")
        connection = http.client.HTTPConnection(host.strip("[]") or "127.0.0.1", int(port), timeout=1.0)
        headers = {"Authorization": f"Bearer {config.api_key()}"} if config.api_key() else {}
    except HearthError as exc:
        return {"address": None, "running": False, "error": exc.message}
    except ValueError:
        return {"address": None, "running": False, "error": "HEARTH_HOST is not HOST:PORT"}
    try:
        connection.request("GET", "/api/version", headers=headers)
        response = connection.getresponse()
        status, body = response.status, response.read()
    except (OSError, http.client.HTTPException):
        return {"address": address, "running": False}
    finally:
        connection.close()
    try:
        # hearth's own version; "version" is the Ollama API version it speaks (older hearths: its own)
        answer = json.loads(body)
        version = answer.get("hearth_version") or answer.get("version")
    except (ValueError, AttributeError):
        version = None
    return {"address": address, "running": status == 200, "status": status, "version": version}


def speed_facts(*, measure: bool, threads: int | None, self_test_ok: bool = True) -> dict[str, Any]:
    """The machine's speed figures for ``hearth fit``: measured now in a child process
    (``measure``), else the cached ones when they still hold, else why there are none."""
    from hearth.fit.machine_speed import read_machine_speed, speed_file

    if measure:
        from hearth.selftest.speed_probe import refresh_machine_speed

        probe = refresh_machine_speed(threads=threads or None)
        return {"measured_now": True, "why": None, **probe.to_json()}
    figures, why = read_machine_speed()
    if figures is None and not self_test_ok:
        why = f"{why}; the self-test failed"
    return {"measured_now": False, "ok": figures is not None, "error": None, "signal": None,
            "why": why or None, "path": str(speed_file()),
            "figures": figures.as_dict() if figures else None}


def engine_record() -> dict[str, Any]:
    """How the installed engine was built, as hearth's build recorded it (``engine/build.py``)."""
    from hearth.engine import build

    record = build.read_record()
    installed = build.installed_fingerprint()
    return {
        "installed": installed is not None,
        "built_by_hearth": record is not None,
        "matches_this_machine": build.record_matches(record, installed),
        "left_out": (record or {}).get("left_out"),
        "cmake_args": (record or {}).get("cmake_args"),
        "portable": (record or {}).get("portable", False),
        "build_seconds": (record or {}).get("build_seconds"),
        "rebuild_command": build.rebuild_command(),
    }
