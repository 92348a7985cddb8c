"""The one memory estimate for a model at a context size: ``hearth fit``, the pull warning and
the scheduler's eviction (through ``loading.estimate_memory``) all use ``estimate_memory``.

    weights   the GGUF file (mmap'd; every page is read while generating)
    KV cache  n_layer x context x n_parallel x n_head_kv x (key + value head size) x bytes per
              element of the cache type (f16 2, q8_0 34/32, q4_0 18/32)
    overhead  llama.cpp's compute buffer + its logits buffer + the runtime (Python, libraries)

The compute buffer follows what llama.cpp reserves for one batch of ``batch_tokens`` tokens
without flash attention (hearth turns it off on CPUs): the larger of the logits
(batch x n_vocab floats) and the attention scores with their mask
(batch x context x (n_head + 1) floats), plus the layer's activations.

Calibration (SmolLM2-135M Q4_1, 98.4 MB file, 2-core x86 machine, llama-cpp-python 0.3.36,
one process through hearth's BatchDecoder, 201-token prompt + 16 generated tokens):

    context   llama.cpp KV / compute buffer   estimate here (KV / compute)   total est.  RSS
      512        11.25 / 61.6 MiB                 11.25 / 65.3 MiB              242 MB   193 MB
     2048        45.0  / 62.3 MiB                 45.0  / 65.3 MiB              278 MB   229 MB
     8192       180.0  / 104.3 MiB               180.0  / 105.5 MiB             463 MB   371 MB

RSS before loading (Python + hearth + llama_cpp imported) was 54 MB. The estimate stays ~20-25%
above the measured RSS because llama.cpp only touches the parts of the compute buffer a batch
needs; a long prompt at a full context touches all of it, so the estimate keeps the whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from hearth.fit.shape import ModelShape
from hearth.quantization import KV_CACHE_BYTES

MIB = 1024 * 1024
# Python, hearth and llama.cpp's libraries before a model loads: 54 MB measured, rounded up
# (the server runs each model in its own runner process, which costs about the same again).
RUNTIME_BYTES = 64 * MIB
# Tokens in one llama.cpp batch as hearth's engine sets it up (engine/batch.py):
# PREFILL_BUDGET (256) + num_batch (64, hearth's default) + one per parallel sequence.
DEFAULT_BATCH_TOKENS = 256 + 64 + 1
FLOAT_BYTES = 4


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    context_length: int
    n_parallel: int = 1

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes


def kv_cache_bytes(shape: ModelShape, context_length: int, n_parallel: int = 1,
                   kv_cache_type: str | None = None) -> int:
    """K and V for every layer, slot and position, in the cache's element type (default:
    HEARTH_KV_CACHE_TYPE); ``shape.kv_bytes_per_token`` counts f16, 2 bytes an element."""
    from hearth import config

    per_element = KV_CACHE_BYTES[kv_cache_type or config.kv_cache_type()]
    return int(shape.kv_bytes_per_token * context_length * n_parallel * per_element / 2)


def compute_buffer_bytes(shape: ModelShape, context_length: int, batch_tokens: int) -> int:
    widest = max(shape.n_vocab, (shape.n_head + 1) * context_length)
    activations = 2 * shape.n_embd + 2 * shape.n_ff
    return batch_tokens * FLOAT_BYTES * (widest + activations)


def overhead_bytes(shape: ModelShape, context_length: int, n_parallel: int = 1,
                   batch_tokens: int | None = None) -> int:
    tokens = batch_tokens if batch_tokens is not None else DEFAULT_BATCH_TOKENS - 1 + n_parallel
    logits = shape.n_vocab * FLOAT_BYTES * n_parallel
    return compute_buffer_bytes(shape, context_length, tokens) + logits + RUNTIME_BYTES


def estimate_memory(weights_bytes: int, shape: ModelShape, context_length: int, *,
                    n_parallel: int = 1, batch_tokens: int | None = None,
                    kv_cache_type: str | None = None) -> MemoryEstimate:
    """Bytes a model needs loaded with ``context_length`` tokens of cache per sequence."""
    n_parallel = max(1, n_parallel)
    return MemoryEstimate(
        weights_bytes=weights_bytes,
        kv_cache_bytes=kv_cache_bytes(shape, context_length, n_parallel, kv_cache_type),
        overhead_bytes=overhead_bytes(shape, context_length, n_parallel, batch_tokens),
        context_length=context_length,
        n_parallel=n_parallel,
    )
