"""Names and sizes of ggml tensor types and llama.cpp file types.

The tables are copied here (from ggml.h / llama.h, as vendored by llama-cpp-python 0.3.36)
rather than taken from the ``gguf`` package because importing ``gguf`` pulls in numpy, and
reading a header must stay fast enough for ``hearth list`` and ``hearth show``. Ids that a
newer llama.cpp adds are looked up in the installed ``gguf`` package as a fallback.
"""

from __future__ import annotations

from functools import lru_cache

# ggml type id -> (name, elements per block, bytes per block)
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}

# general.file_type (llama_ftype) -> the name Ollama and Hugging Face file names use
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}


@lru_cache(maxsize=256)
def ggml_type_info(type_id: int) -> tuple[str, int, int] | None:
    """(name, block size, type size) of a ggml type id, or None if no llama.cpp knows it."""
    known = GGML_TYPES.get(type_id)
    if known is not None:
        return known
    try:
        import gguf  # slow (numpy), so only for ids newer than our table
    except ImportError:
        return None
    try:
        qtype = gguf.GGMLQuantizationType(type_id)
        block, size = gguf.GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        return None
    return qtype.name, int(block), int(size)


def ggml_type_name(type_id: int) -> str:
    info = ggml_type_info(type_id)
    return info[0] if info else f"type{type_id}"


@lru_cache(maxsize=256)
def file_type_name(file_type: int) -> str | None:
    """Name of a ``general.file_type`` value (e.g. 15 -> "Q4_K_M"), None if unknown."""
    known = FILE_TYPES.get(file_type)
    if known is not None:
        return known
    try:
        import gguf  # slow (numpy), so only for ids newer than our table

        name = gguf.LlamaFileType(file_type).name
    except (ImportError, ValueError):
        return None
    if name == "GUESSED":
        return None
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")
