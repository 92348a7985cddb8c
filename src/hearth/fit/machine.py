"""How much memory this machine has free for a model: RAM from /proc/meminfo, GPU memory from
``nvidia-smi`` when that command exists, and whether hearth's llama.cpp build can use a GPU.

Everything here is read at call time and cheap (no llama_cpp import), so ``hearth fit`` and the
scheduler's eviction check can ask as often as they like. Tests build a ``MachineMemory`` by
hand or point ``meminfo_path`` / PATH at fakes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
MIB = 1024 * 1024
# Library names of llama.cpp's GPU backends (ggml-cuda, ggml-hip, ...); a CPU-only build has none.
GPU_BACKENDS = ("ggml-cuda", "ggml-hip", "ggml-vulkan", "ggml-metal", "ggml-sycl", "ggml-musa")


@dataclass(frozen=True)
class MachineMemory:
    ram_available: int  # bytes; 0 where unknown
    ram_total: int = 0
    gpu_free: int | None = None  # bytes over all GPUs; None without a GPU
    gpu_total: int | None = None
    gpu_usable: bool = False  # hearth's llama.cpp build can offload to that GPU


def ram_available(meminfo_path: Path = MEMINFO) -> int:
    """MemAvailable in bytes (0 where unknown): what the kernel can hand out without swapping,
    page cache included, which is the number that matters for a model's mmap'd weights."""
    available = _meminfo_field("MemAvailable", meminfo_path)
    if available or meminfo_path.exists():
        return available
    return _sysconf_bytes("SC_AVPHYS_PAGES")  # no /proc (macOS, BSD): free pages, if offered


def _sysconf_bytes(name: str) -> int:
    try:
        return int(os.sysconf(name)) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 0


def _meminfo_field(field: str, path: Path) -> int:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


# nvidia-smi takes tens of milliseconds; a page of catalog tags asks once per tag.
_GPU_CACHE_SECONDS = 2.0
_gpu_cache: dict[str, tuple[float, tuple[int, int] | None]] = {}


def gpu_memory(timeout: float = 5.0) -> tuple[int, int] | None:
    """(free, total) bytes summed over the NVIDIA GPUs ``nvidia-smi`` reports, else None.

    llama.cpp splits layers over every visible GPU, so their free memory adds up.
    """
    command = shutil.which("nvidia-smi")
    if command is None:
        return None
    now = time.monotonic()
    cached = _gpu_cache.get(command)
    if cached is not None and now - cached[0] < _GPU_CACHE_SECONDS:
        return cached[1]
    result = _query_nvidia_smi(command, timeout)
    _gpu_cache[command] = (now, result)
    return result


def _query_nvidia_smi(command: str, timeout: float) -> tuple[int, int] | None:
    try:
        result = subprocess.run(
            [command, "--query-gpu=memory.free,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return parse_nvidia_smi(result.stdout)


def parse_nvidia_smi(text: str) -> tuple[int, int] | None:
    """Lines of ``free, total`` in MiB, one per GPU; lines that do not parse ("[N/A]") are
    left out, and None comes back when none does."""
    free_total, total_total, seen = 0, 0, False
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 2:
            continue
        try:
            free, total = (int(float(part)) for part in parts)
        except ValueError:
            continue
        if free < 0 or total <= 0:
            continue
        free_total += free * MIB
        total_total += total * MIB
        seen = True
    return (free_total, total_total) if seen else None


def engine_has_gpu_backend() -> bool:
    """Whether the installed llama-cpp-python ships a GPU backend library (found without
    importing it: loading llama.cpp takes longer than the whole check)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("llama_cpp")
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.origin:
        return False
    lib_dir = Path(spec.origin).parent / "lib"
    try:
        names = os.listdir(lib_dir)
    except OSError:
        return False
    return any(backend in name for name in names for backend in GPU_BACKENDS)


def read_machine_memory(meminfo_path: Path = MEMINFO) -> MachineMemory:
    gpu = gpu_memory()
    return MachineMemory(
        ram_available=ram_available(meminfo_path),
        ram_total=_meminfo_field("MemTotal", meminfo_path) or _sysconf_bytes("SC_PHYS_PAGES"),
        gpu_free=gpu[0] if gpu else None,
        gpu_total=gpu[1] if gpu else None,
        gpu_usable=bool(gpu) and engine_has_gpu_backend(),
    )
