"""Tiny but real GGUF files for tests: the models themselves come from
``hearth.selftest.tiny_model`` (the engine self-test writes the same ones); this module adds
what only tests need: truncated copies, embedding models, LoRA adapters and models in the layout
of a model family (its chat template and special tokens)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hearth.selftest.tiny_model import (  # noqa: F401  (re-exported for the tests)
    DEFAULT_CHAT_TEMPLATE,
    EXTRA_TOKEN_TYPES,
    WORD_START,
    build_vocab,
    tiny_model_parameter_count,
    write_tiny_model,
)


def write_truncated_copy(
    src: str | os.PathLike[str], dst: str | os.PathLike[str], keep_bytes: int
) -> Path:
    """Copy the first ``keep_bytes`` bytes of ``src`` to ``dst``: an interrupted download."""
    dst = Path(dst)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        remaining = keep_bytes
        while remaining > 0:
            chunk = fin.read(min(remaining, 1 << 20))
            if not chunk:
                break
            fout.write(chunk)
            remaining -= len(chunk)
    return dst


def write_tiny_embedding_model(
    path: str | os.PathLike[str], *, pooling_type: int = 1, **kwargs: Any
) -> Path:
    """A tiny model whose GGUF names a pooling type (1 = mean, 2 = cls, 3 = last), so that
    llama.cpp in embedding mode returns one vector per input instead of one per token."""
    extra = dict(kwargs.pop("extra_metadata", None) or {})
    extra["llama.pooling_type"] = pooling_type
    kwargs.setdefault("name", "tiny-embed")
    return write_tiny_model(path, extra_metadata=extra, **kwargs)


def write_tiny_lora(
    path: str | os.PathLike[str],
    base: str | os.PathLike[str],
    *,
    rank: int = 4,
    seed: int = 0,
    targets: tuple[str, ...] = ("attn_q", "attn_v", "ffn_up", "ffn_down"),
    strength: float = 1.0,
    architecture: str = "llama",
) -> Path:
    """A LoRA adapter for the tiny model at ``base``: random low-rank deltas for the named
    weights of every layer, shaped from the base's own tensors (GGUF order: w is (in, out),
    lora_a is (in, rank), lora_b is (rank, out))."""
    import gguf
    import numpy as np

    from hearth.gguf import read_gguf

    info = read_gguf(base)
    rng = np.random.RandomState(seed)
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for tensor in info.tensors:
        stem = tensor.name.removesuffix(".weight")
        if len(tensor.shape) != 2 or stem.split(".")[-1] not in targets:
            continue
        n_in, n_out = tensor.shape
        lora_a = (rng.standard_normal((rank, n_in)) * strength).astype(np.float32)
        lora_b = (rng.standard_normal((n_out, rank)) * strength).astype(np.float32)
        writer.add_tensor(f"{tensor.name}.lora_a", lora_a)
        writer.add_tensor(f"{tensor.name}.lora_b", lora_b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def write_family_model(path: str | os.PathLike[str], family: str, **kwargs: Any) -> Path:
    """A tiny model that looks like one of ``tests.family_templates.FAMILIES`` to the engine: the
    family's chat template, its special tokens typed as its GGUFs type them (those the base
    vocabulary already has, like ChatML's, are kept where they are), its BOS and EOS. The
    context is 4096 tokens unless ``kwargs`` say otherwise: a tool prompt spelled mostly in
    single letters is long. Any ``write_tiny_model`` argument in ``kwargs`` wins."""
    from tests.family_templates import BEGIN_OF_TEXT, FAMILIES

    template, special_tokens, eos_token = FAMILIES[family]
    tokens, _, types = build_vocab()
    base = dict(zip(tokens, types, strict=True))  # token text -> type
    for text, kind in special_tokens:
        if text in base and base[text] != EXTRA_TOKEN_TYPES[kind]:
            raise ValueError(f"{text!r} is already in the base vocabulary with another type")
    begin = BEGIN_OF_TEXT[family]
    settings: dict[str, Any] = {
        "chat_template": template,
        "extra_tokens": [(text, kind) for text, kind in special_tokens if text not in base],
        "eos_token": eos_token,
        "bos_token": begin or "<s>",
        "add_bos": begin is not None,
        "name": f"tiny-{family}",
        "context_length": 4096,
    }
    settings.update(kwargs)
    return write_tiny_model(path, **settings)
