"""What the installed llama.cpp is: versions, the backends compiled in, the devices they see,
and the CPU features compiled in (``llama_print_system_info``).

Importing llama.cpp and asking its backends about devices runs native code, so ``hearth doctor``
calls this inside its self-test child (``hearth.selftest.child``), never in its own process.
"""

from __future__ import annotations

import ctypes
from typing import Any

# ggml_backend_dev_type
_DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}


def parse_system_info(text: str) -> dict[str, dict[str, str]]:
    """``"CPU : SSE3 = 1 | AVX2 = 1 | ... | CUDA : ARCHS = 890 | ..."`` as
    ``{"CPU": {"SSE3": "1", "AVX2": "1"}, "CUDA": {"ARCHS": "890"}}``."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for part in text.split("|"):
        part = part.strip()
        if not part:
            continue
        if " : " in part:
            name, _, part = part.partition(" : ")
            current = sections.setdefault(name.strip(), {})
        if current is None or "=" not in part:
            continue
        key, _, value = part.partition("=")
        current[key.strip()] = value.strip()
    return sections


def _ggml() -> Any:
    from llama_cpp import _ggml

    return _ggml.libggml


def _text(function: Any) -> str | None:
    function.restype = ctypes.c_char_p
    function.argtypes = []
    value = function()
    return value.decode("utf-8", "replace") if value else None


def _devices(lib: Any) -> list[dict[str, Any]]:
    lib.ggml_backend_dev_count.restype = ctypes.c_size_t
    lib.ggml_backend_dev_get.restype = ctypes.c_void_p
    lib.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).restype = ctypes.c_char_p
        getattr(lib, name).argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_type.restype = ctypes.c_int
    lib.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    lib.ggml_backend_dev_memory.restype = None
    lib.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t),
                                            ctypes.POINTER(ctypes.c_size_t)]
    devices = []
    for index in range(lib.ggml_backend_dev_count()):
        device = lib.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        devices.append({
            "name": (lib.ggml_backend_dev_name(device) or b"").decode("utf-8", "replace"),
            "description": (lib.ggml_backend_dev_description(device) or b"").decode("utf-8", "replace"),
            "type": _DEVICE_TYPES.get(lib.ggml_backend_dev_type(device), "other"),
            "memory_free": int(free.value),
            "memory_total": int(total.value),
        })
    return devices


def _backends(lib: Any) -> list[str]:
    lib.ggml_backend_reg_count.restype = ctypes.c_size_t
    lib.ggml_backend_reg_get.restype = ctypes.c_void_p
    lib.ggml_backend_reg_get.argtypes = [ctypes.c_size_t]
    lib.ggml_backend_reg_name.restype = ctypes.c_char_p
    lib.ggml_backend_reg_name.argtypes = [ctypes.c_void_p]
    return [(lib.ggml_backend_reg_name(lib.ggml_backend_reg_get(i)) or b"").decode()
            for i in range(lib.ggml_backend_reg_count())]


def read_build_info() -> dict[str, Any]:
    """Everything llama.cpp says about itself; a part it cannot tell is left out, not guessed."""
    import llama_cpp

    info: dict[str, Any] = {"llama_cpp_python": getattr(llama_cpp, "__version__", "unknown")}
    llama_cpp.llama_backend_init()
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
    info["system_info"] = system_info
    info["features"] = parse_system_info(system_info)
    info["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
    try:
        lib = _ggml()
        info["ggml_version"] = _text(lib.ggml_version)
        info["ggml_commit"] = _text(lib.ggml_commit)
        info["backends"] = _backends(lib)
        info["devices"] = _devices(lib)
    except (AttributeError, OSError, ImportError):
        pass  # an older build without these symbols: the system info above still tells a lot
    return info
