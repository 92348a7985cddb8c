"""The few architecture numbers a memory estimate needs, from a GGUF header, from the catalog,
or (for a model known only by its size) from rules of thumb that are written down here.

Catalog entries may carry these keys, per tag or for the whole model entry (the tag's win):
``n_layer``, ``n_embd``, ``n_head``, ``n_head_kv``, ``head_dim``, ``n_vocab``, ``n_ff``. With
``n_layer``, ``n_embd`` and ``n_head_kv`` present the KV cache is exact; without them it is
guessed from the parameter count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hearth.gguf import GGUFInfo

# Rules of thumb for a model known only by its parameter count, shaped like Llama: a width of
# 128 x depth (Llama 3 8B: 4096 = 128 x 32), head size 128, 4 query heads per KV head
# (grouped-query attention, as in Llama 3, Mistral, Qwen 2), and ~12 x depth x width^2 weights
# in the layers. KV cache per token against published shapes: 1B -> 42.5 KiB (Llama 3.2 1B:
# 32 KiB), 3B -> 87.5 KiB (Llama 3.2 3B: 112 KiB), 8B -> 153 KiB (Llama 3 8B: 128 KiB), 70B ->
# 639 KiB (Llama 3 70B: 320 KiB), 135M -> 13.5 KiB (SmolLM2: 22.5 KiB). Models without
# grouped-query attention (Llama 2, Phi-3) need up to 4x more, so catalog entries for them
# should carry their real shape.
WIDTH_PER_LAYER = 128
HEAD_DIM = 128
QUERY_HEADS_PER_KV_HEAD = 4
# The vocabulary sizes the logits buffer: 128k is Llama 3's (Qwen: 152k, Gemma: 256k).
TYPICAL_VOCAB = 128_256
FFN_PER_WIDTH = 4

# A file of unknown quantization is read as the most common download, a 4-5 bit one; a 16-bit
# file then looks like more parameters than it has, which errs on the safe (larger) side.
ASSUMED_BITS_PER_WEIGHT = 5.0


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_vocab: int
    n_ff: int
    source: str  # "gguf", "catalog" or "rule of thumb"

    @property
    def kv_bytes_per_token(self) -> int:
        """f16 K and V for every layer (llama.cpp's default cache type)."""
        return self.n_layer * self.n_head_kv * (self.head_dim_k + self.head_dim_v) * 2

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_layer": self.n_layer, "n_embd": self.n_embd, "n_head": self.n_head,
            "n_head_kv": self.n_head_kv, "head_dim": self.head_dim_k, "n_vocab": self.n_vocab,
            "n_ff": self.n_ff, "source": self.source,
        }


def shape_from_gguf(info: GGUFInfo) -> ModelShape:
    arch = info.architecture
    meta = info.metadata

    def arch_int(suffix: str) -> int | None:
        value = meta.get(f"{arch}.{suffix}")
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            return max(value)  # per-layer values: the largest sizes the buffers
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    n_embd = info.embedding_length or 0
    n_head = info.head_count or 1
    n_head_kv = info.head_count_kv or n_head
    head_dim = n_embd // n_head if n_head else 0
    vocab = meta.get("tokenizer.ggml.tokens")
    n_vocab = arch_int("vocab_size") or (len(vocab) if vocab is not None else 0) or TYPICAL_VOCAB
    return ModelShape(
        n_layer=info.block_count or 0,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=arch_int("attention.key_length") or head_dim,
        head_dim_v=arch_int("attention.value_length") or head_dim,
        n_vocab=n_vocab,
        n_ff=arch_int("feed_forward_length") or FFN_PER_WIDTH * n_embd,
        source="gguf",
    )


def shape_from_numbers(numbers: dict[str, Any], parameter_count: int | None) -> ModelShape:
    """A catalog entry's numbers when it has the essential three, else the rule of thumb."""
    def number(key: str) -> int | None:
        value = numbers.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None

    n_layer, n_embd, n_head_kv = number("n_layer"), number("n_embd"), number("n_head_kv")
    if not (n_layer and n_embd and n_head_kv):
        return shape_from_parameter_count(parameter_count or 0)
    n_head = number("n_head") or max(n_head_kv, n_embd // HEAD_DIM)
    head_dim = number("head_dim") or max(1, n_embd // n_head)
    return ModelShape(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head, n_head_kv=n_head_kv,
        head_dim_k=head_dim, head_dim_v=head_dim,
        n_vocab=number("n_vocab") or TYPICAL_VOCAB,
        n_ff=number("n_ff") or FFN_PER_WIDTH * n_embd,
        source="catalog",
    )


def shape_from_parameter_count(parameter_count: int) -> ModelShape:
    """The Llama-like shape of a model with this many weights (see the rules above)."""
    params = max(parameter_count, 1_000_000)
    width = (params * WIDTH_PER_LAYER / 12) ** (1 / 3)
    n_layer = max(1, round(width / WIDTH_PER_LAYER))
    n_head = max(1, round(width / HEAD_DIM))
    n_embd = n_head * HEAD_DIM
    return ModelShape(
        n_layer=n_layer, n_embd=n_embd, n_head=n_head,
        n_head_kv=max(1, math.ceil(n_head / QUERY_HEADS_PER_KV_HEAD)),
        head_dim_k=HEAD_DIM, head_dim_v=HEAD_DIM, n_vocab=TYPICAL_VOCAB,
        n_ff=FFN_PER_WIDTH * n_embd, source="rule of thumb",
    )


_SIZE_RE = re.compile(r"^\s*(?:(\d+)\s*[xX]\s*)?(\d+(?:\.\d+)?)\s*([KMBT])\s*$", re.IGNORECASE)
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_parameter_size(text: str) -> int | None:
    """``135M`` -> 135_000_000, ``1.7B``, ``8x7B`` (experts: all of them are loaded) -> 56e9."""
    match = _SIZE_RE.match(text or "")
    if not match:
        return None
    experts = int(match.group(1) or 1)
    return int(experts * float(match.group(2)) * _SCALE[match.group(3).upper()])


def bits_per_weight(quantization: str) -> float | None:
    """Bits per weight of a quantization (``hearth.quantization``, one table for hearth)."""
    from hearth.quantization import BITS_PER_WEIGHT

    name = (quantization or "").upper()
    return 32.0 if name == "F32" else BITS_PER_WEIGHT.get(name)


def parameters_from_file_size(size_bytes: int, quantization: str = "") -> int:
    bits = bits_per_weight(quantization) or ASSUMED_BITS_PER_WEIGHT
    return int(size_bytes * 8 / bits)
