"""Re-quantize a GGUF with llama.cpp's own quantizer (``llama_model_quantize``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from hearth.errors import EngineError, InvalidRequest
from hearth.quantization import FULL_PRECISION, QUANT_TYPES


def check_quantize_request(source_type: str, target: str, allow_requantize: bool) -> str:
    """The canonical target name; refuses unknown types and lossy re-quantization."""
    name = target.strip().upper()
    if name not in QUANT_TYPES:
        raise InvalidRequest(f"unknown quantization type '{target}'; supported: {', '.join(QUANT_TYPES)}")
    if source_type.upper() not in FULL_PRECISION and not allow_requantize:
        raise InvalidRequest(
            f"the model is already quantized ({source_type}); quantizing it again to {name} loses "
            "quality twice. Start from an F32/F16/BF16/Q8_0 model, or pass --allow-requantize"
        )
    return name


def quantize_file(source: Path, target: Path, type_name: str, *, allow_requantize: bool = False,
                  threads: int | None = None, on_progress: Callable[[int], None] | None = None) -> None:
    """Write ``source`` quantized to ``type_name`` at ``target``. ``on_progress`` receives the
    bytes written so far, every quarter second (llama.cpp reports no progress of its own)."""
    import llama_cpp
    from llama_cpp._logger import set_verbose

    set_verbose(False)
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[type_name])
    params.allow_requantize = allow_requantize
    params.nthread = threads or os.cpu_count() or 1
    done = threading.Event()

    def report() -> None:
        while not done.wait(0.25):
            if on_progress and target.exists():
                on_progress(target.stat().st_size)

    watcher = threading.Thread(target=report, daemon=True)
    watcher.start()
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), str(target).encode(), params)
    finally:
        done.set()
        watcher.join()
    if status != 0 or not target.is_file():
        raise EngineError(f"llama.cpp could not quantize {source.name} to {type_name} (status {status})")
    if on_progress:
        on_progress(target.stat().st_size)
