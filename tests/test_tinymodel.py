"""The tiny test models are real: llama.cpp loads them and generates from them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.tinymodel import (
    WORD_START,
    build_vocab,
    write_tiny_embedding_model,
    write_tiny_model,
    write_truncated_copy,
)

llama_cpp = pytest.importorskip("llama_cpp")


def load(path: Path, **kwargs):
    return llama_cpp.Llama(model_path=str(path), n_ctx=128, verbose=False, **kwargs)


def complete(llm, prompt: str = "hello", max_tokens: int = 8) -> dict:
    return llm.create_completion(prompt, max_tokens=max_tokens, temperature=0)["choices"][0]


@pytest.fixture(scope="module")
def llm(tiny_model):
    model = load(tiny_model)
    yield model
    model.close()


def test_tiny_model_is_tiny(tiny_model):
    assert tiny_model.stat().st_size < 400_000


def test_writing_is_deterministic(tmp_path):
    a = write_tiny_model(tmp_path / "a.gguf", seed=3).read_bytes()
    b = write_tiny_model(tmp_path / "b.gguf", seed=3).read_bytes()
    c = write_tiny_model(tmp_path / "c.gguf", seed=4).read_bytes()
    assert a == b
    assert a != c


def test_loads_fast(tiny_model):
    start = time.perf_counter()
    model = load(tiny_model)
    elapsed = time.perf_counter() - start
    model.close()
    assert elapsed < 1.0, f"loading took {elapsed:.2f}s"


def test_generates_deterministically(llm, tiny_model):
    first = complete(llm)
    assert first["text"].strip()
    assert first["finish_reason"] == "length"
    assert complete(llm)["text"] == first["text"]
    fresh = load(tiny_model)
    try:
        assert complete(fresh)["text"] == first["text"]
    finally:
        fresh.close()


def test_generated_text_is_made_of_words(llm):
    text = complete(llm, "the sky is", max_tokens=16)["text"]
    words = {w for w in build_vocab()[0] if w.startswith(WORD_START)}
    assert text.strip()
    assert "\ufffd" not in text
    for word in text.split():
        assert WORD_START + word.strip(".,!?;:'\"-()") in words or not word.strip(".,!?;:'\"-()")


def test_tokenizer_uses_the_word_pieces(llm):
    tokens, _, _ = build_vocab()
    ids = llm.tokenize(b"hello world")
    assert ids == [1, tokens.index(WORD_START + "hello"), tokens.index(WORD_START + "world")]
    assert llm.detokenize(ids).decode().strip() == "hello world"
    # Text outside the vocabulary falls back to byte tokens and still round-trips.
    odd = "zébu ☃"
    assert llm.detokenize(llm.tokenize(odd.encode(), add_bos=False)).decode().strip() == odd


def test_special_tokens(llm):
    tokens, _, _ = build_vocab()
    assert llm.token_bos() == 1
    assert llm.token_eos() == 2
    im_start = llm.tokenize(b"<|im_start|>", add_bos=False, special=True)
    assert im_start == [tokens.index("<|im_start|>")]


def test_chat_completion_uses_the_chat_template(llm):
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": "Hi there"}], max_tokens=8, temperature=0
    )["choices"][0]
    assert reply["message"]["role"] == "assistant"
    assert reply["message"]["content"].strip()


@pytest.mark.parametrize("file_type", ["F16", "Q8_0", "Q4_0", "Q4_1"])
def test_other_file_types_generate(tmp_path, file_type):
    model = load(write_tiny_model(tmp_path / "m.gguf", file_type=file_type))
    try:
        assert complete(model)["text"].strip()
    finally:
        model.close()


def test_bigger_shapes_generate(tmp_path):
    path = write_tiny_model(tmp_path / "m.gguf", n_layers=2, n_embd=64, context_length=512)
    model = load(path)
    try:
        assert model.metadata["llama.context_length"] == "512"
        assert model.metadata["llama.block_count"] == "2"
        assert complete(model)["text"].strip()
    finally:
        model.close()


def test_embedding_model_returns_one_vector_per_input(tmp_path):
    model = load(write_tiny_embedding_model(tmp_path / "e.gguf"), embedding=True)
    try:
        vector = model.embed("hello world")
        assert len(vector) == 32 and all(isinstance(x, float) for x in vector)
        assert model.embed("hello world") == vector
        both = model.embed(["hello", "the sky is blue"])
        assert len(both) == 2 and both[0] != both[1]
    finally:
        model.close()


def test_llama_cpp_refuses_a_truncated_copy(tiny_model, tmp_path):
    # What hearth.gguf rejects as "truncated" is a file llama.cpp cannot load either.
    cut = write_truncated_copy(tiny_model, tmp_path / "cut.gguf", tiny_model.stat().st_size - 100)
    with pytest.raises(ValueError):
        load(cut)
