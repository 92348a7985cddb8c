"""How fast a model will decode and read a prompt on this machine, predicted before download from
the size of its weights, its shape and figures measured on this machine (``MachineSpeed``,
written by ``hearth doctor --measure-speed``; see ``hearth.selftest.speed_probe``).

Pure arithmetic, no I/O: the figures come in, a ``SpeedPrediction`` goes out.

    decode, seconds per generated token
        = decode_overhead + n_layer x decode_layer_overhead + rows x decode_row_overhead
          + sum over types of the weight bytes read at it / (bandwidth x its decode factor)
          + KV cache bytes at DECODE_POSITION / bandwidth
          + attention FLOPs over the cache at DECODE_POSITION / attention rate
    prompt, seconds per prompt token
        = prompt_overhead + n_layer x prompt_layer_overhead + rows x prompt_row_overhead
          + 2 x matrix parameters / (compute x prompt factor)
          + attention FLOPs over the cells each prompt token attends / attention rate

Generating a token reads every weight once (llama.cpp multiplies one vector by every matrix),
so decode is bound by memory: its time is the bytes read over the bandwidth llama.cpp reaches on
this machine, plus a fixed cost per token (sampling, graph build, thread hand-offs, Python) that
grows with the layers, plus a cost per matrix row (``rows``: the output features of every matrix,
the output matrix's vocabulary included): a narrow model's short rows stream less well than a
wide model's long ones, so 576-wide SmolLM2 reaches half the bandwidth of a 2048-wide model.
Reading a prompt multiplies a whole batch of tokens by each matrix, so it is bound by compute:
2 FLOPs per parameter of the layers' matrices per token (the token embedding is a row lookup and
the output matrix runs for the last token only, so neither counts) at the compute rate llama.cpp
reaches, with the same kind of per-row cost (narrow matrices use the kernels less well). Each
token also attends to the KV cache (2 x n_head x (key + value head size) FLOPs per cell and
layer) at a rate of its own, several times slower than the matrices' here; llama.cpp's attention
runs over every cell up to the end of the batch, the later ones masked, so a prompt token read
in a 256-token step attends over the cache up to that step's end, and a long prompt reads slower
per token than a short one.

The bandwidth and compute rate are measured on Q8_0 weights (``REFERENCE_TYPE``); other types
dequantize differently, so each has a factor, measured on the development machine with
``benchmarks/predicted_speed.py --types`` (``QUANT_FACTORS``, documented there). A type missing
from the table is predicted as the reference type.

The figures hold for the attention settings they were measured with (HEARTH_FLASH_ATTENTION,
HEARTH_KV_CACHE_TYPE; both are part of their identity) and predict the defaults' speed: a model
whose own options choose other settings, or another thread count, is not predicted for them.

Known limits: for a catalog tag the whole file counts as read per token, so an untied token
embedding (5-7% of an 8B model) makes decode a little pessimistic (a GGUF's tensors say which
bytes are read); a mixture-of-experts model reads only the experts it routes to, so its decode
prediction (all experts read) is a floor; a model split between a GPU and the CPU gets no
prediction.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from hearth.fit.shape import ModelShape
from hearth.quantization import DEFAULT_KV_CACHE_TYPE, KV_CACHE_BYTES

REFERENCE_TYPE = "Q8_0"
# Where a prediction is made: decode with this many tokens already in the cache (a short chat),
# a prompt of this many tokens read from an empty cache.
DECODE_POSITION = 256
PROMPT_TOKENS = 512
# The file's version: a cache written by another layout is measured again.
FORMAT_VERSION = 1
# How hearth's engine and llama.cpp lay out attention (engine/batch.py's PREFILL_BUDGET; the KV
# cache's padding, about 32 cells), which decide how many cells a token attends over.
PREFILL_STEP = 256
KV_PAD = 32

# (decode factor, prompt factor) of each file type against Q8_0: its effective bandwidth and
# compute rate over Q8_0's, with the same threads, beyond the fixed, per-row and attention costs.
# Measured 2026-12-04 with `benchmarks/predicted_speed.py --types` on a 2-core AMD EPYC (Zen 4,
# AVX-512 VNNI/BF16), llama-cpp-python 0.3.36, 2 threads: a 12-layer, 1024-wide synthetic model
# written as F16 and quantized by llama.cpp's own quantizer to each type (so K-quant files mix
# types as real ones do), each type's fastest of 3 passes. Runs on this VM differ by up to about
# 0.2 (most by 0.05); a 6-layer, 2048-wide model gave factors within about 0.1. llama.cpp's
# kernels differ a lot by type: Q4_1 and Q5_1 multiply a prompt at a third of Q8_0's rate here,
# the K-quants at 1.4-3x. Other CPUs have other kernels; the figures hearth measures are Q8_0's,
# so only these ratios carry over. See benchmarks/README.md.
QUANT_FACTORS: dict[str, tuple[float, float]] = {
    "F32": (1.03, 0.82),  # not measured: F16's
    "F16": (1.03, 0.82),
    "BF16": (1.18, 1.85),
    "Q8_0": (1.0, 1.0),
    "Q6_K": (0.95, 2.05),
    "Q5_K_M": (0.77, 3.11),
    "Q5_K_S": (0.75, 3.4),
    "Q5_1": (0.62, 0.28),
    "Q5_0": (0.69, 0.75),
    "Q4_K_M": (1.08, 1.45),
    "Q4_K_S": (1.09, 1.44),
    "IQ4_NL": (1.06, 1.38),
    "Q4_1": (0.58, 0.31),
    "Q4_0": (1.12, 1.36),
    "Q3_K_L": (0.63, 2.61),
    "Q3_K_M": (0.65, 1.8),
    "Q3_K_S": (0.56, 2.1),
    "Q2_K": (0.75, 0.92),
}


@dataclass(frozen=True)
class MachineSpeed:
    """What this machine does with hearth's engine, as ``speed_probe`` measured it."""

    decode_overhead_s: float  # per generated token, whatever the model
    decode_layer_overhead_s: float  # per generated token and layer
    bandwidth_bytes_per_s: float  # weight bytes read per second while decoding (Q8_0)
    prompt_overhead_s: float  # per prompt token
    prompt_layer_overhead_s: float  # per prompt token and layer
    compute_flops_per_s: float  # matrix FLOPs per second while reading a prompt (Q8_0)
    threads: int
    decode_row_overhead_s: float = 0.0  # per generated token and matrix row
    prompt_row_overhead_s: float = 0.0  # per prompt token and matrix row
    attention_flops_per_s: float = 0.0  # attention over the KV cache; 0: at the compute rate
    # Whose figures these are: a cache is only used for the engine, threads and CPU it measured.
    hearth_version: str = ""
    llama_cpp_version: str = ""
    cpu_model: str = ""
    flash_attention: str = ""  # HEARTH_FLASH_ATTENTION when measured (auto, on, off)
    kv_cache_type: str = ""  # HEARTH_KV_CACHE_TYPE when measured (f16, q8_0, q4_0)
    device: str = "cpu"  # "cpu", or "gpu" when llama.cpp ran the probe models on a GPU
    measured_at: str = ""  # ISO 8601, UTC
    seconds: float = 0.0  # how long the measurement took
    other_load: float = 0.0  # share of the CPUs other processes used meanwhile (0-1)
    reference_type: str = REFERENCE_TYPE
    details: dict[str, Any] = field(default_factory=dict)  # the raw timings per probe model

    def identity(self) -> dict[str, Any]:
        return {"hearth_version": self.hearth_version, "llama_cpp_version": self.llama_cpp_version,
                "threads": self.threads, "cpu_model": self.cpu_model,
                "flash_attention": self.flash_attention, "kv_cache_type": self.kv_cache_type}

    def as_dict(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any) -> MachineSpeed | None:
        """The figures in ``data`` (a parsed cache file), or None when it is not one (another
        format, a missing or non-positive figure)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            return None
        try:
            figures = cls(
                decode_overhead_s=float(data["decode_overhead_s"]),
                decode_layer_overhead_s=float(data["decode_layer_overhead_s"]),
                bandwidth_bytes_per_s=float(data["bandwidth_bytes_per_s"]),
                prompt_overhead_s=float(data["prompt_overhead_s"]),
                prompt_layer_overhead_s=float(data["prompt_layer_overhead_s"]),
                compute_flops_per_s=float(data["compute_flops_per_s"]),
                threads=int(data["threads"]),
                decode_row_overhead_s=float(data.get("decode_row_overhead_s", 0.0)),
                prompt_row_overhead_s=float(data.get("prompt_row_overhead_s", 0.0)),
                attention_flops_per_s=float(data.get("attention_flops_per_s", 0.0)),
                hearth_version=str(data.get("hearth_version", "")),
                llama_cpp_version=str(data.get("llama_cpp_version", "")),
                cpu_model=str(data.get("cpu_model", "")),
                flash_attention=str(data.get("flash_attention", "")),
                kv_cache_type=str(data.get("kv_cache_type", "")),
                device=str(data.get("device", "cpu")),
                measured_at=str(data.get("measured_at", "")),
                seconds=float(data.get("seconds", 0.0)),
                other_load=float(data.get("other_load", 0.0)),
                reference_type=str(data.get("reference_type", REFERENCE_TYPE)),
                details=data.get("details") if isinstance(data.get("details"), dict) else {},
            )
        except (KeyError, TypeError, ValueError):
            return None
        if min(figures.bandwidth_bytes_per_s, figures.compute_flops_per_s) <= 0 or min(
                figures.decode_overhead_s, figures.decode_layer_overhead_s,
                figures.decode_row_overhead_s, figures.prompt_overhead_s,
                figures.prompt_layer_overhead_s, figures.prompt_row_overhead_s,
                figures.attention_flops_per_s) < 0:
            return None
        return figures


def stale_reason(figures: MachineSpeed, identity: dict[str, Any]) -> str | None:
    """Why cached figures do not describe this machine now (``identity``: the same keys as
    ``MachineSpeed.identity``), or None when they do."""
    names = {"hearth_version": "hearth", "llama_cpp_version": "llama-cpp-python",
             "threads": "threads", "cpu_model": "CPU", "flash_attention": "flash attention",
             "kv_cache_type": "KV cache type"}
    for key, label in names.items():
        then, now = figures.identity().get(key), identity.get(key)
        if now is not None and then != now:
            return f"measured with {label} {then}, now {now}"
    return None


@dataclass(frozen=True)
class SpeedPrediction:
    decode_tokens_per_second: float
    prompt_tokens_per_second: float
    basis: str  # how they were computed, in one line

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def matrix_parameters(shape: ModelShape) -> int:
    """Weights of the layers' matrices (attention q, k, v, output; feed-forward gate, up, down):
    what a prompt token is multiplied by."""
    q = shape.n_embd * shape.n_head * shape.head_dim_k
    kv = shape.n_embd * shape.n_head_kv * (shape.head_dim_k + shape.head_dim_v)
    out = shape.n_head * shape.head_dim_v * shape.n_embd
    ffn = 3 * shape.n_embd * shape.n_ff
    return shape.n_layer * (q + kv + out + ffn)


def matrix_rows(shape: ModelShape, *, output: bool = True) -> int:
    """Rows (output features) of the matrices one token is multiplied by: the layers' and, with
    ``output``, the output matrix's (one per vocabulary entry; a prompt needs it only once)."""
    per_layer = (shape.n_head * shape.head_dim_k + shape.n_head_kv * (shape.head_dim_k + shape.head_dim_v)
                 + shape.n_embd + 2 * shape.n_ff + shape.n_embd)
    return shape.n_layer * per_layer + (shape.n_vocab if output else 0)


def attention_flops(shape: ModelShape, cells: float) -> float:
    """FLOPs of one token's attention over ``cells`` KV cache cells (scores and values)."""
    return 2.0 * shape.n_layer * shape.n_head * (shape.head_dim_k + shape.head_dim_v) * cells


def _kv_window(tokens: float) -> float:
    """The KV cells llama.cpp attends over when ``tokens`` are in the cache: every cell up to the
    last one written (rounded up to KV_PAD), the later ones masked, so a token in a batch pays
    for the whole batch, not only the tokens before it (measured: see the module docstring)."""
    return math.ceil(max(1.0, tokens) / KV_PAD) * KV_PAD


def prompt_attended_cells(prompt_tokens: int) -> float:
    """Cells a prompt token attends over on average: hearth's engine reads a prompt
    PREFILL_STEP tokens per llama_decode, each of them over the cache up to that step's end."""
    if prompt_tokens <= 0:
        return 0.0
    total, start = 0.0, 0
    while start < prompt_tokens:
        end = min(prompt_tokens, start + PREFILL_STEP)
        total += (end - start) * _kv_window(end)
        start = end
    return total / prompt_tokens


def decode_attended_cells(position: int) -> float:
    """Cells the token generated at ``position`` attends over (itself included)."""
    return _kv_window(max(0, position) + 1)


def quant_factors(quantization: str) -> tuple[float, float]:
    """(decode, prompt) factor of a file type against the reference type (1.0 when unknown)."""
    return QUANT_FACTORS.get((quantization or "").upper(), (1.0, 1.0))


# A tensor's own type read as the file type made mostly of it (K-quant files mix types).
TENSOR_TYPE_AS_FILE_TYPE = {"Q2_K": "Q2_K", "Q3_K": "Q3_K_S", "Q4_K": "Q4_K_S", "Q5_K": "Q5_K_S",
                            "Q6_K": "Q6_K"}


def bytes_read_per_token(tensors: list[tuple[str, str, int]], quantization: str) -> dict[str, int]:
    """The bytes a generated token reads, by the type they are read at, from a GGUF's tensors
    ((name, type, bytes)): the layers at the file's type; the output matrix at its own type (often
    Q8_0 or Q6_K in a 4-bit file); the token embedding not at all when the model has an output
    matrix of its own (one row is looked up), as the output matrix when it has none (tied)."""
    names = {name for name, _type, _size in tensors}
    read: dict[str, int] = {}
    for name, type_name, size in tensors:
        if name == "token_embd.weight" and "output.weight" in names:
            continue
        if name in ("output.weight", "token_embd.weight"):
            key = TENSOR_TYPE_AS_FILE_TYPE.get(type_name.upper(), type_name.upper())
        else:
            key = (quantization or "").upper()
        read[key] = read.get(key, 0) + size
    return read


def predict_speed(weights_bytes: int, shape: ModelShape, machine: MachineSpeed, *,
                  quantization: str = "", decode_position: int = DECODE_POSITION,
                  prompt_tokens: int = PROMPT_TOKENS,
                  read_by_type: dict[str, int] | None = None) -> SpeedPrediction:
    """Decode and prompt tokens per second of a model with ``weights_bytes`` of weights and this
    ``shape`` on the machine ``machine`` describes (see the module docstring for the formula).
    ``read_by_type`` is what a token reads by type (``bytes_read_per_token``) when the tensors are
    known; without it the whole of ``weights_bytes`` is read at the file's ``quantization``."""
    prompt_factor = quant_factors(quantization)[1]
    attention_rate = machine.attention_flops_per_s or machine.compute_flops_per_s
    # shape.kv_bytes_per_token counts f16 (2 bytes an element); the cache may be quantized.
    per_element = KV_CACHE_BYTES.get(machine.kv_cache_type or DEFAULT_KV_CACHE_TYPE, 2.0)
    kv_bytes = shape.kv_bytes_per_token * max(0, decode_position) * per_element / 2
    groups = read_by_type if read_by_type else {quantization: max(0, weights_bytes)}
    # The KV cache streams like Q8_0-sized weights do (f16 values, read once per token).
    weight_seconds = sum(size / (machine.bandwidth_bytes_per_s * quant_factors(name)[0])
                         for name, size in groups.items())
    read = sum(groups.values()) + kv_bytes
    decode_s_reading = weight_seconds + kv_bytes / machine.bandwidth_bytes_per_s
    bandwidth = read / decode_s_reading if decode_s_reading > 0 else machine.bandwidth_bytes_per_s
    decode_fixed = (machine.decode_overhead_s + shape.n_layer * machine.decode_layer_overhead_s
                    + matrix_rows(shape) * machine.decode_row_overhead_s
                    + attention_flops(shape, decode_attended_cells(decode_position)) / attention_rate)
    decode_s = decode_fixed + decode_s_reading

    flops = 2.0 * matrix_parameters(shape)
    compute = machine.compute_flops_per_s * prompt_factor
    prompt_fixed = (machine.prompt_overhead_s + shape.n_layer * machine.prompt_layer_overhead_s
                    + matrix_rows(shape, output=False) * machine.prompt_row_overhead_s
                    + attention_flops(shape, prompt_attended_cells(prompt_tokens)) / attention_rate)
    prompt_s = prompt_fixed + flops / compute

    basis = (f"predicted from this machine's measured figures ({machine.threads} thread"
             f"{'' if machine.threads == 1 else 's'}"
             f"{', ' + machine.measured_at[:10] if machine.measured_at else ''}): decode "
             f"{decode_fixed * 1e3:.2f} ms + {_mb(read)} read at {bandwidth / 1e9:.1f} GB/s per "
             f"token with {decode_position} tokens in context; prompt {prompt_fixed * 1e3:.3f} ms + "
             f"{flops / 1e9:.2f} GFLOP at {compute / 1e9:.0f} GFLOP/s per token of a "
             f"{prompt_tokens}-token prompt")
    return SpeedPrediction(
        decode_tokens_per_second=round(1.0 / decode_s, 1),
        prompt_tokens_per_second=round(1.0 / prompt_s, 1),
        basis=basis,
    )


def _mb(size: float) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"
