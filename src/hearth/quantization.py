"""Quantization types, the one home for what hearth knows about them: their order by quality
(pulls pick the closest available), the default, their bits per weight (size and memory
estimates), which ones llama.cpp's quantizer writes (``hearth create -q``) and which sources
still hold full precision. Data only: the engine maps the names to llama.cpp's constants."""

from __future__ import annotations

DEFAULT_QUANT = "Q4_K_M"

# Best quality first. "Closest" means nearest in this list: similar size and quality.
QUANT_ORDER = [
    "F32", "BF16", "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0", "Q4_K_M",
    "Q4_K_S", "IQ4_NL", "IQ4_XS", "Q4_1", "Q4_0", "Q3_K_L", "Q3_K_M", "IQ3_M", "IQ3_S",
    "Q3_K_S", "IQ3_XS", "IQ3_XXS", "Q2_K", "Q2_K_S", "IQ2_M", "IQ2_S", "IQ2_XS", "IQ2_XXS",
    "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0",
]

# Approximate bits per weight of common GGUF quantizations (llama.cpp's figures for 7B-class
# models): sizes of quantizations the catalog lists but does not measure (marked approximate),
# and parameter counts guessed from a file's size.
BITS_PER_WEIGHT = {
    "Q2_K": 3.35, "Q3_K_S": 3.5, "Q3_K_M": 3.91, "Q3_K_L": 4.27, "Q4_0": 4.55, "Q4_1": 5.0,
    "Q4_K_S": 4.58, "Q4_K_M": 4.85, "Q5_0": 5.54, "Q5_K_S": 5.54, "Q5_K_M": 5.69, "Q6_K": 6.59,
    "Q8_0": 8.5, "F16": 16.0, "BF16": 16.0,
}

# Types users can ask for, by the names llama.cpp and Ollama use.
QUANT_TYPES: dict[str, str] = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q5_K_S": "LLAMA_FTYPE_MOSTLY_Q5_K_S",
    "Q5_1": "LLAMA_FTYPE_MOSTLY_Q5_1",
    "Q5_0": "LLAMA_FTYPE_MOSTLY_Q5_0",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_K_S": "LLAMA_FTYPE_MOSTLY_Q4_K_S",
    "Q4_1": "LLAMA_FTYPE_MOSTLY_Q4_1",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q3_K_L": "LLAMA_FTYPE_MOSTLY_Q3_K_L",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q3_K_S": "LLAMA_FTYPE_MOSTLY_Q3_K_S",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "IQ4_NL": "LLAMA_FTYPE_MOSTLY_IQ4_NL",
    "F16": "LLAMA_FTYPE_MOSTLY_F16",
    "BF16": "LLAMA_FTYPE_MOSTLY_BF16",
}

# Sources that still hold the full information; anything lower loses quality twice.
FULL_PRECISION = frozenset({"F32", "F16", "BF16", "Q8_0"})

# KV-cache element types llama.cpp can keep (HEARTH_KV_CACHE_TYPE, the kv_cache_type option),
# with their bytes per element: a q8_0 block holds 32 values in 34 bytes, q4_0 in 18.
KV_CACHE_BYTES: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
DEFAULT_KV_CACHE_TYPE = "f16"
# Flash attention: llama.cpp's own three answers ("auto" lets it decide per device).
FLASH_ATTENTION_MODES = ("auto", "on", "off")
