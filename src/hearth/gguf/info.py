"""What a GGUF header says about a model, as plain values."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hearth.gguf.filetypes import file_type_name, ggml_type_name

# GGUF metadata value types (gguf_type in gguf.h): id -> name
VALUE_TYPE_NAMES: dict[int, str] = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}


@dataclass(frozen=True)
class ArrayInfo:
    """Stands in for a long metadata array (a tokenizer's tokens, scores, merges).

    Such arrays run to ~50k entries and nothing outside llama.cpp needs their values, so the
    reader checks their bounds and keeps only their element type and length.
    """

    element_type: int
    length: int

    @property
    def type_name(self) -> str:
        return VALUE_TYPE_NAMES.get(self.element_type, str(self.element_type))

    def __len__(self) -> int:
        return self.length


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order: shape[0] is the innermost (row) dimension
    ggml_type: int
    offset: int  # absolute file offset of the tensor's data
    nbytes: int
    n_elements: int

    @property
    def type_name(self) -> str:
        return ggml_type_name(self.ggml_type)


@dataclass
class GGUFInfo:
    path: Path
    version: int
    file_size: int
    metadata: dict[str, Any]
    tensors: list[TensorInfo]
    data_offset: int
    alignment: int = 32

    def _get_int(self, key: str) -> int | None:
        return _as_int(self.metadata.get(key))

    def _get_str(self, key: str) -> str | None:
        value = self.metadata.get(key)
        return value if isinstance(value, str) else None

    def _arch_int(self, suffix: str) -> int | None:
        arch = self.architecture
        return self._get_int(f"{arch}.{suffix}") if arch else None

    @property
    def architecture(self) -> str:
        return self._get_str("general.architecture") or ""

    @property
    def name(self) -> str | None:
        return self._get_str("general.name")

    @property
    def organization(self) -> str | None:
        return self._get_str("general.organization")

    @property
    def license(self) -> str | None:
        return self._get_str("general.license")

    @property
    def chat_template(self) -> str | None:
        return self._get_str("tokenizer.chat_template")

    @property
    def context_length(self) -> int | None:
        return self._arch_int("context_length")

    @property
    def embedding_length(self) -> int | None:
        return self._arch_int("embedding_length")

    @property
    def block_count(self) -> int | None:
        return self._arch_int("block_count")

    @property
    def head_count(self) -> int | None:
        return self._arch_int("attention.head_count")

    @property
    def head_count_kv(self) -> int | None:
        return self._arch_int("attention.head_count_kv")

    @property
    def pooling_type(self) -> int | None:
        return self._arch_int("pooling_type")

    @property
    def file_type(self) -> int | None:
        return self._get_int("general.file_type")

    @property
    def bos_token_id(self) -> int | None:
        return self._get_int("tokenizer.ggml.bos_token_id")

    @property
    def eos_token_id(self) -> int | None:
        return self._get_int("tokenizer.ggml.eos_token_id")

    @property
    def quantization(self) -> str:
        file_type = self.file_type
        if file_type is not None:
            known = file_type_name(file_type)
            if known:
                return known
        # Without general.file_type, the weight matrices (2-D) tell the story; the 1-D norms
        # are F32 in every quantization and would outvote them in small models.
        candidates = [t for t in self.tensors if len(t.shape) == 2] or self.tensors
        if not candidates:
            return "unknown"
        counts = Counter(t.ggml_type for t in candidates)
        return ggml_type_name(counts.most_common(1)[0][0])

    @property
    def parameter_count(self) -> int:
        return sum(t.n_elements for t in self.tensors)

    @property
    def parameter_size(self) -> str:
        return format_parameter_count(self.parameter_count)

    def summary(self, max_array_length: int = 64) -> dict[str, Any]:
        """The metadata as JSON-ready values, for ``model_info`` in Ollama's /api/show.

        Arrays longer than ``max_array_length`` (tokenizer vocabularies) are left out, as are
        non-finite floats, which JSON cannot carry.
        """
        out: dict[str, Any] = {}
        for key, value in self.metadata.items():
            if isinstance(value, ArrayInfo):
                continue
            if isinstance(value, list):
                if len(value) > max_array_length:
                    continue
                out[key] = [_json_safe(v) for v in value]
            else:
                out[key] = _json_safe(value)
        out["general.parameter_count"] = self.parameter_count
        return out


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    # Some architectures store per-layer values (e.g. head counts) as arrays; the largest
    # is what sizes the caches.
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return max(value)
    return None


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_parameter_count(n: int) -> str:
    """135M, 7.2B, 1.2K: one decimal below 10, none above, like Hugging Face size labels."""
    if n < 1000:
        return str(n)
    text, suffix = str(n), ""
    for scale, unit in ((10**3, "K"), (10**6, "M"), (10**9, "B"), (10**12, "T")):
        value = n / scale
        text = f"{value:.1f}" if value < 9.95 else f"{value:.0f}"
        suffix = unit
        # 999_600 rounds to "1000K"; the next unit says it better as "1M".
        if float(text) < 1000:
            break
    return text.removesuffix(".0") + suffix
