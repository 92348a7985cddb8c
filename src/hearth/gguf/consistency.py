"""Does a GGUF's metadata agree with its own tensors? Checked before llama.cpp sees the file.

The reader (``reader.py``) proves the file is well formed; this proves the model it describes
is one llama.cpp can build. llama.cpp trusts much of the metadata: ``<arch>.block_count`` over
its 512-layer limit, an expert count it does not expect or an unknown rope scaling type end in
a ``GGML_ASSERT`` (SIGABRT, nothing on stderr), a context length over 2**31 comes back from
``llama_n_ctx_train`` as a negative number that llama-cpp-python uses as an array length, and
metadata that disagrees with the tensors fails late with "failed to load model". Each check
here mirrors one of those (llama.cpp as vendored by llama-cpp-python 0.3.36:
``llama_model_base::load_hparams`` and the ``create_tensor`` shapes of the architectures), and
refuses only what cannot load or run.

Only what is present is checked: a missing required key is llama.cpp's clean refusal to give.
LoRA adapters (``general.type = adapter``) carry no model hyperparameters and are checked
against their base model instead (``adapters.py``); ``clip`` projector files have none either.
"""

from __future__ import annotations

import re
from typing import Any

from hearth.errors import InvalidModelFile
from hearth.gguf.info import ArrayInfo, GGUFInfo, TensorInfo

MAX_BLOCK_COUNT = 512  # LLAMA_MAX_LAYERS
MAX_EXPERT_COUNT = 1024  # LLAMA_MAX_EXPERTS
# Far beyond any trained context (the longest are ~10M), and well inside llama.cpp's int32.
MAX_CONTEXT_LENGTH = 1 << 24
ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")

# Architectures whose files break a general rule below, as llama.cpp reads them.
NO_HYPERPARAMETERS = frozenset({"clip"})  # llama.cpp reads tensors only
FEATURE_WIDTH_EMBEDDINGS = frozenset({"wavtokenizer-dec"})  # n_embd is features_length
OWN_VOCABULARY = frozenset({"eagle3", "dflash"})  # draft models: token_embd has the target's
DENSE_WITH_ONE_EXPERT = frozenset({"hunyuan-dense", "hunyuan_vl"})  # expert_count <= 1 is ignored

_BLOCK_TENSOR = re.compile(r"blk\.(\d+)\.(.*)")


def check_consistency(info: GGUFInfo) -> None:
    """Raise ``InvalidModelFile`` naming the field and the numbers if the metadata cannot
    describe these tensors (or no model llama.cpp can load)."""
    arch = info.architecture
    if not arch or arch in NO_HYPERPARAMETERS or info.metadata.get("general.type") == "adapter":
        return
    fields = _Fields(info, arch)
    fields.integer("context_length", 1, MAX_CONTEXT_LENGTH)
    n_embd = fields.integer("embedding_length", 1, None)
    n_layer = fields.integer("block_count", 1, None)
    blocks = _block_tensors(info.tensors)
    if n_layer is not None:
        if n_layer > MAX_BLOCK_COUNT:  # GGML_ASSERT in llama.cpp: SIGABRT
            present = f"; the file has tensors for blocks 0 to {max(blocks)}" if blocks else ""
            raise fields.error(f"{fields.key('block_count')} is {n_layer}, over llama.cpp's "
                               f"limit of {MAX_BLOCK_COUNT} blocks{present}")
        _check_blocks(fields, n_layer, blocks)
    tensors = {tensor.name: tensor for tensor in info.tensors}
    if "token_embd.weight" in tensors:
        _check_token_embedding(fields, tensors["token_embd.weight"], n_embd)
    _check_heads(fields, n_embd, n_layer, blocks)
    _check_experts(fields, n_layer)
    fields.integer("nextn_predict_layers", 0, n_layer)
    scaling = fields.get("rope.scaling.type")
    if scaling is not None and scaling not in ROPE_SCALING_TYPES:
        raise fields.error(f"{fields.key('rope.scaling.type')} is {scaling!r}; llama.cpp knows "
                           f"{', '.join(ROPE_SCALING_TYPES)}")


class _Fields:
    """The architecture's metadata keys, read with their checks."""

    def __init__(self, info: GGUFInfo, arch: str) -> None:
        self.info = info
        self.arch = arch

    def key(self, suffix: str) -> str:
        return f"{self.arch}.{suffix}"

    def get(self, suffix: str) -> Any:
        return self.info.metadata.get(self.key(suffix))

    def error(self, problem: str) -> InvalidModelFile:
        return InvalidModelFile(self.info.path, problem)

    def integer(self, suffix: str, low: int, high: int | None) -> int | None:
        """The key's integer value, None when absent; refused when not an integer in range."""
        value = self.get(suffix)
        if value is None:
            return None
        if not _is_int(value):
            raise self.error(f"{self.key(suffix)} is {_describe(value)}, not an integer")
        _in_range(self, self.key(suffix), value, low, high)
        return value

    def per_layer(self, suffix: str, n_layer: int | None) -> list[int] | None:
        """A value llama.cpp reads per block (one integer, or an array of one per block)."""
        value = self.get(suffix)
        if value is None:
            return None
        key = self.key(suffix)
        if _is_int(value):
            values = [value] * (n_layer or 1)
        elif isinstance(value, (list, ArrayInfo)) and n_layer is not None and len(value) != n_layer:
            raise self.error(f"{key} has {len(value)} entries, but {self.key('block_count')} "
                             f"is {n_layer}")
        elif isinstance(value, list) and value and all(_is_int(v) for v in value):
            if n_layer is not None and len(value) != n_layer:
                raise self.error(f"{key} has {len(value)} entries, but {self.key('block_count')} "
                                 f"is {n_layer}")
            values = value
        else:
            raise self.error(f"{key} is {_describe(value)}, not an integer or an array of them")
        for v in values:
            _in_range(self, key, v, 0, (1 << 32) - 1)
        return values


def _check_blocks(fields: _Fields, n_layer: int, blocks: dict[int, list[str]]) -> None:
    if not blocks:
        return  # no blk.N tensors: a vocabulary-only file, or layers named otherwise (t5)
    key = fields.key("block_count")
    highest = max(blocks)
    if highest >= n_layer:
        raise fields.error(f"tensor 'blk.{highest}.{blocks[highest][0]}' belongs to block "
                           f"{highest}, but {key} is {n_layer} (blocks 0 to {n_layer - 1})")
    # A block may hold no tensors only where it has neither attention nor a feed-forward
    # network (deci's no-op layers), which the per-block arrays say.
    heads = fields.per_layer("attention.head_count", n_layer)
    ffn = fields.per_layer("feed_forward_length", n_layer)
    may_be_empty = [heads is not None and ffn is not None and heads[i] == 0 and ffn[i] == 0
                    for i in range(n_layer)]
    missing = [i for i in range(n_layer) if i not in blocks and not may_be_empty[i]]
    if not missing:
        return
    if missing[0] > highest:
        raise fields.error(f"{key} is {n_layer}, but the tensors stop at block {highest}: there "
                           f"are no blk.N tensors for blocks {missing[0]} to {n_layer - 1}")
    raise fields.error(f"{key} is {n_layer}, but there are no tensors for block {missing[0]} "
                       f"(no blk.{missing[0]}.* in the file)")


def _check_token_embedding(fields: _Fields, tensor: TensorInfo, n_embd: int | None) -> None:
    shape = list(tensor.shape)
    if len(shape) != 2:
        raise fields.error(f"tensor 'token_embd.weight' has shape {shape}; it must have 2 "
                           "dimensions (embedding length, vocabulary size)")
    if n_embd is not None and fields.arch not in FEATURE_WIDTH_EMBEDDINGS and shape[0] != n_embd:
        raise fields.error(f"{fields.key('embedding_length')} is {n_embd}, but tensor "
                           f"'token_embd.weight' {shape} has rows of {shape[0]}")
    if fields.arch in OWN_VOCABULARY:
        return
    tokens = fields.info.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, (list, ArrayInfo)):
        n_vocab, source = len(tokens), "tokens in tokenizer.ggml.tokens"
    elif _is_int(fields.get("vocab_size")):
        n_vocab, source = fields.get("vocab_size"), f"in {fields.key('vocab_size')}"
    else:
        return
    if shape[1] != n_vocab:
        raise fields.error(f"tensor 'token_embd.weight' {shape} has {shape[1]} rows, but the "
                           f"vocabulary has {n_vocab} {source}")


def _check_heads(fields: _Fields, n_embd: int | None, n_layer: int | None,
                 blocks: dict[int, list[str]]) -> None:
    heads = fields.per_layer("attention.head_count", n_layer)
    if heads is None:
        return  # not a transformer (mamba, rwkv), or llama.cpp refuses the missing key
    heads_kv = fields.per_layer("attention.head_count_kv", n_layer) or heads
    head_key, kv_key = fields.key("attention.head_count"), fields.key("attention.head_count_kv")
    if len(heads) != len(heads_kv):  # only without a block_count, which fixes both lengths
        if min(len(heads), len(heads_kv)) > 1:
            raise fields.error(f"{head_key} has {len(heads)} entries, but {kv_key} has "
                               f"{len(heads_kv)}")
        heads, heads_kv = (heads * len(heads_kv), heads_kv) if len(heads) == 1 else (
            heads, heads_kv * len(heads))
    has_key_length = fields.get("attention.key_length") is not None
    for layer, (n_head, n_head_kv) in enumerate(zip(heads, heads_kv, strict=True)):
        names = blocks.get(layer, [])
        where = f" for block {layer}" if len(set(heads)) > 1 or len(set(heads_kv)) > 1 else ""
        query = next((n for n in names if n.startswith("attn_q")), None)
        if n_head == 0:
            if query is not None:
                raise fields.error(f"{head_key} is 0{where}, but the model has attention "
                                   f"weights (tensor 'blk.{layer}.{query}')")
            continue
        if n_head_kv == 0:
            kv = next((n for n in names if n.startswith(("attn_k", "attn_v"))), None)
            if kv is not None:
                raise fields.error(f"{kv_key} is 0{where}, but the model has key/value "
                                   f"weights (tensor 'blk.{layer}.{kv}')")
            continue
        if n_head % n_head_kv:
            # ggml_mul_mat asserts that the query heads are a whole multiple of the key heads.
            raise fields.error(f"{head_key} {n_head} is not a multiple of {kv_key} "
                               f"{n_head_kv}{where}")
        if n_embd is not None and not has_key_length and n_embd % n_head:
            raise fields.error(f"{fields.key('embedding_length')} {n_embd} is not a multiple "
                               f"of {head_key} {n_head}{where} (and there is no "
                               f"{fields.key('attention.key_length')} to give the head size)")


def _check_experts(fields: _Fields, n_layer: int | None) -> None:
    """The asserts of llama.cpp's load_hparams on expert counts, as messages."""
    n_expert = fields.integer("expert_count", 0, MAX_EXPERT_COUNT)
    used = fields.per_layer("expert_used_count", n_layer)
    if fields.arch in DENSE_WITH_ONE_EXPERT and (n_expert or 0) <= 1:
        return
    used_max = max(used) if used else 0
    count_key, used_key = fields.key("expert_count"), fields.key("expert_used_count")
    if not n_expert:
        if used_max:
            raise fields.error(f"{used_key} is {used_max}, but the model has no experts "
                               f"({count_key} is {n_expert or 'not set'})")
        return
    if used_max == 0:
        raise fields.error(f"{count_key} is {n_expert}, but {used_key} is "
                           f"{'0' if used else 'not set'}")
    if used_max > n_expert:
        raise fields.error(f"{used_key} {used_max} is more than {count_key} {n_expert}")


def _block_tensors(tensors: list[TensorInfo]) -> dict[int, list[str]]:
    """Block number -> the names (after ``blk.N.``) of its tensors."""
    blocks: dict[int, list[str]] = {}
    for tensor in tensors:
        match = _BLOCK_TENSOR.fullmatch(tensor.name)
        if match:
            blocks.setdefault(int(match.group(1)), []).append(match.group(2))
    return blocks


def _in_range(fields: _Fields, key: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        raise fields.error(f"{key} is {value}; it must be {bounds}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if isinstance(value, ArrayInfo):
        return f"an array of {value.length} {value.type_name} values"
    if isinstance(value, list):
        return f"an array of {len(value)} values"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
