"""Tiny but real llama-architecture GGUF models, written with the ``gguf`` package.

``write_tiny_model`` writes a model of a few hundred KB with random weights that llama.cpp
loads in milliseconds and generates from: a SentencePiece ("llama") vocabulary of <unk>, <s>,
</s>, the ChatML control tokens, the 256 byte-fallback tokens and word pieces for common
English words, and F32 (or F16 / Q8_0 / Q4_0 / Q4_1) tensors for every weight llama.cpp's llama
graph needs. Greedy decoding is deterministic for a given seed.

``extra_tokens`` appends a model family's own special tokens (Llama 3's ``<|eot_id|>``, gpt-oss's
``<|channel|>``, Mistral's ``[TOOL_CALLS]``...) as control or user-defined tokens, and
``bos_token`` / ``eos_token`` / ``eot_token`` name the ones that begin a text and end a turn, so
a tiny model tokenizes a family's real prompt layout as the family's models do.

The engine self-test (``hearth doctor``, setup) decodes one of these when the default model is
not installed, so it needs no download; the test suite writes them for every engine, store and
CLI test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# SentencePiece marks a word start with U+2581 instead of a space.
WORD_START = "\u2581"

_WORD_TEXT = (
    "the be to of and a in that have it for not on with he as you do at this but his by from "
    "they we say her she or an will my one all would there their what so up out if about who "
    "get which go me when make can like time no just him know take people into year your good "
    "some could them see other than then now look only come its over think also back after use "
    "two how our work first well way even new want because any these give day most us is are "
    "was were hello world sky blue green red sun moon cat dog tree water light fire model story "
    "once upon lived little happy The Hello Hi Once It I user assistant system"
)
_WORDS = tuple(_WORD_TEXT.split())
_PUNCTUATION = list(".,!?;:'\"-()")

# llama.cpp token types (llama_token_type / gguf.TokenType)
_NORMAL, _UNKNOWN, _CONTROL, _USER_DEFINED, _BYTE = 1, 2, 3, 4, 6

# How an extra token is typed: "control" tokens are read from text only when special tokens are
# parsed and rendered only when special tokens are shown; "user_defined" ones always are (how
# converted GGUFs carry added tokens that Hugging Face does not mark special, like Qwen's <think>).
EXTRA_TOKEN_TYPES = {"control": _CONTROL, "user_defined": _USER_DEFINED}

_FILE_TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q8_0": 7}


def build_vocab() -> tuple[list[str], list[float], list[int]]:
    """Tokens, scores and token types of the tiny SentencePiece vocabulary.

    llama.cpp's SPM tokenizer builds words by merging adjacent pieces whose concatenation is
    in the vocabulary (highest score first), so every prefix of every word is a piece; the
    score grows with length so that whole words win. Anything else falls back to bytes.
    """
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [_UNKNOWN, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    scores = [0.0] * len(tokens)
    for byte in range(256):
        tokens.append(f"<0x{byte:02X}>")
        types.append(_BYTE)
        scores.append(0.0)
    pieces: dict[str, None] = {WORD_START: None}
    for char in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789":
        pieces[char] = None
        pieces[WORD_START + char] = None
    for char in _PUNCTUATION:
        pieces[char] = None
    for word in _WORDS:
        for end in range(1, len(word) + 1):
            pieces[WORD_START + word[:end]] = None
            pieces[word[:end]] = None
    for piece in pieces:
        tokens.append(piece)
        types.append(_NORMAL)
        scores.append(float(len(piece)) - len(tokens) * 1e-4)
    return tokens, scores, types


def _append_extra_tokens(tokens: list[str], scores: list[float], types: list[int],
                         extra_tokens: list[tuple[str, str]]) -> None:
    known = set(tokens)
    for text, kind in extra_tokens:
        if kind not in EXTRA_TOKEN_TYPES:
            raise ValueError(f"token type for {text!r} must be one of {sorted(EXTRA_TOKEN_TYPES)}, "
                             f"not {kind!r}")
        if not text or text in known:
            raise ValueError(f"extra token {text!r} is empty or already in the vocabulary")
        known.add(text)
        tokens.append(text)
        types.append(EXTRA_TOKEN_TYPES[kind])
        scores.append(0.0)


def _token_id(tokens: list[str], text: str, role: str) -> int:
    try:
        return tokens.index(text)
    except ValueError:
        raise ValueError(f"the {role} token {text!r} is not in the vocabulary; add it with "
                         "extra_tokens") from None


def write_tiny_model(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_layers: int = 1,
    n_embd: int = 32,
    context_length: int = 256,
    chat_template: str | None = DEFAULT_CHAT_TEMPLATE,
    license: str | None = "apache-2.0",
    name: str = "tiny-test",
    organization: str | None = "hearth-tests",
    file_type: str = "F32",
    extra_metadata: dict[str, Any] | None = None,
    head_dim: int = 8,
    n_ff: int | None = None,
    repeat_layers: bool = False,
    extra_tokens: list[tuple[str, str]] | None = None,
    bos_token: str = "<s>",
    eos_token: str = "</s>",
    eot_token: str | None = None,
    add_bos: bool = True,
) -> Path:
    """Write a tiny llama model to ``path`` and return the path.

    ``n_embd`` must be a multiple of 32 (the block size of the quantized types and a whole
    number of 8-wide heads). ``extra_metadata`` values are written as string, bool, uint32,
    int32 (negative ints), float32 or arrays of those.

    For larger synthetic models (the speed probe, ``hearth.selftest.speed_probe``):
    ``head_dim`` is the attention head size (default 8: ``n_embd / 8`` heads, half as many KV
    heads), ``n_ff`` the feed-forward width (default ``2 x n_embd``, a multiple of 32), and
    ``repeat_layers`` gives every layer the first layer's weights, so a model of hundreds of MB
    is written in about a second (each layer is still its own bytes in the file).

    For a model family's prompt layout: ``extra_tokens`` are ``(text, "control" |
    "user_defined")`` pairs appended after the base vocabulary, in order (an empty text or one
    already there is a ValueError). ``bos_token``, ``eos_token`` and ``eot_token`` are token
    texts written as ``tokenizer.ggml.bos/eos/eot_token_id``; llama.cpp ends generation at the
    EOS and EOT tokens and, whatever the metadata says, at the end-of-turn texts it knows by name
    (``<|im_end|>``, ``<|eot_id|>``, ``<|return|>``, ``<|call|>``, ...). ``add_bos`` is whether
    tokenizing with special tokens puts the BOS token first (Qwen and gpt-oss do not).
    """
    import gguf
    import numpy as np

    if file_type not in _FILE_TYPES:
        raise ValueError(f"file_type must be one of {sorted(_FILE_TYPES)}, not {file_type!r}")
    if n_embd % 32:
        raise ValueError("n_embd must be a multiple of 32")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, token_types = build_vocab()
    _append_extra_tokens(tokens, scores, token_types, extra_tokens or [])
    bos_id = _token_id(tokens, bos_token, "BOS")
    eos_id = _token_id(tokens, eos_token, "EOS")
    eot_id = None if eot_token is None else _token_id(tokens, eot_token, "EOT")
    n_vocab = len(tokens)
    if head_dim < 1 or n_embd % head_dim:
        raise ValueError("head_dim must divide n_embd")
    n_head = n_embd // head_dim
    n_head_kv = max(1, n_head // 2)
    n_ff = n_ff or n_embd * 2
    if n_ff % 32:
        raise ValueError("n_ff must be a multiple of 32")

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    if organization is not None:
        writer.add_organization(organization)
    if license is not None:
        writer.add_license(license)
    writer.add_file_type(_FILE_TYPES[file_type])
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(n_vocab)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(token_types)
    writer.add_bos_token_id(bos_id)
    writer.add_eos_token_id(eos_id)
    writer.add_unk_token_id(0)
    if eot_id is not None:
        writer.add_eot_token_id(eot_id)
    writer.add_add_bos_token(add_bos)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    for key, value in (extra_metadata or {}).items():
        _add_metadata(writer, key, value)

    rng = np.random.RandomState(seed)

    def matrix(rows: int, cols: int) -> Any:
        return (rng.standard_normal((rows, cols)) / np.sqrt(cols)).astype(np.float32)

    tensors: dict[str, Any] = {"token_embd.weight": matrix(n_vocab, n_embd)}
    first: dict[str, Any] = {}
    for layer in range(n_layers):
        prefix = f"blk.{layer}."
        if repeat_layers and first:
            tensors.update({prefix + key: value for key, value in first.items()})
            continue
        block = {
            "attn_norm.weight": np.ones(n_embd, dtype=np.float32),
            "attn_q.weight": matrix(n_embd, n_embd),
            "attn_k.weight": matrix(n_head_kv * head_dim, n_embd),
            "attn_v.weight": matrix(n_head_kv * head_dim, n_embd),
            "attn_output.weight": matrix(n_embd, n_embd),
            "ffn_norm.weight": np.ones(n_embd, dtype=np.float32),
            "ffn_gate.weight": matrix(n_ff, n_embd),
            "ffn_up.weight": matrix(n_ff, n_embd),
            "ffn_down.weight": matrix(n_embd, n_ff),
        }
        if repeat_layers:
            first = block
        tensors.update({prefix + key: value for key, value in block.items()})
    tensors["output_norm.weight"] = np.ones(n_embd, dtype=np.float32)
    output = matrix(n_vocab, n_embd) * 4.0
    # Only whole words and punctuation get output weight, so greedy text reads as words: never
    # a control token (an EOS would end generation at once), a stray non-UTF-8 byte, or a
    # word fragment.
    speakable = {WORD_START + word for word in _WORDS} | set(_PUNCTUATION)
    output[[token not in speakable for token in tokens]] = 0.0
    tensors["output.weight"] = output

    qtype = gguf.GGMLQuantizationType[file_type]
    converted: dict[int, Any] = {}  # a repeated layer's arrays are converted once
    for tensor_name, data in tensors.items():
        if data.ndim == 1 or file_type == "F32":
            writer.add_tensor(tensor_name, data)
            continue
        if id(data) not in converted:
            converted[id(data)] = (data.astype(np.float16) if file_type == "F16"
                                   else gguf.quants.quantize(data, qtype))
        if file_type == "F16":
            writer.add_tensor(tensor_name, converted[id(data)])
        else:
            writer.add_tensor(tensor_name, converted[id(data)], raw_dtype=qtype)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_model_parameter_count(*, n_layers: int = 1, n_embd: int = 32, head_dim: int = 8,
                               n_ff: int | None = None, n_extra_tokens: int = 0) -> int:
    """The number of weights ``write_tiny_model`` writes for these sizes (and this many
    ``extra_tokens``)."""
    n_vocab = len(build_vocab()[0]) + n_extra_tokens
    n_head_kv = max(1, n_embd // head_dim // 2)
    kv = n_head_kv * head_dim
    n_ff = n_ff or n_embd * 2
    per_layer = n_embd * 2 + n_embd * n_embd * 2 + kv * n_embd * 2 + n_ff * n_embd * 3
    return n_vocab * n_embd * 2 + n_embd + n_layers * per_layer


def _add_metadata(writer: Any, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        (writer.add_uint32 if value >= 0 else writer.add_int32)(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    elif isinstance(value, (list, tuple)):
        writer.add_array(key, list(value))
    else:
        raise TypeError(f"cannot write {type(value).__name__} metadata for {key!r}")
