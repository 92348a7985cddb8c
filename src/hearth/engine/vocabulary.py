"""Tokens and text for one model: tokenize, detokenize, special tokens, fill-in-the-middle.

Used by the decoder, in this process or in a runner (where the server reaches it through
``runner_client.RunnerVocab``, so a vocabulary llama.cpp cannot read costs the runner, not the
server).
"""

from __future__ import annotations

import ctypes
from typing import Any


class Vocabulary:
    def __init__(self, model: Any) -> None:
        """``model`` is llama-cpp-python's ``LlamaModel`` (full or vocab-only)."""
        import llama_cpp

        self._llama_cpp = llama_cpp
        self.model = model
        self.vocab = model.vocab
        self._pieces: dict[tuple[int, bool], bytes] = {}

    @property
    def size(self) -> int:
        return self._llama_cpp.llama_vocab_n_tokens(self.vocab)

    def piece(self, token: int, special: bool = False) -> bytes:
        key = (token, special)
        piece = self._pieces.get(key)
        if piece is None:
            size = 64
            while True:
                buffer = ctypes.create_string_buffer(size)
                n = self._llama_cpp.llama_token_to_piece(self.vocab, token, buffer, size, 0, special)
                if n >= 0:
                    break
                size = -n  # llama.cpp answers with the size it needs
            piece = buffer.raw[:n]
            self._pieces[key] = piece
        return piece

    def text(self, token: int, special: bool = False) -> str:
        return self.piece(token, special).decode("utf-8", errors="replace")

    @property
    def bos_text(self) -> str:
        bos = self._llama_cpp.llama_vocab_bos(self.vocab)
        return self.text(bos, special=True) if bos >= 0 else ""

    @property
    def eos_text(self) -> str:
        eos = self._llama_cpp.llama_vocab_eos(self.vocab)
        return self.text(eos, special=True) if eos >= 0 else ""

    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = True) -> list[int]:
        return self.model.tokenize(check_unicode(text), add_special, parse_special)

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self.piece(t) for t in tokens).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self.vocab, token))

    def fill_in_middle(self, prefix: str, suffix: str) -> list[int] | None:
        """Prompt tokens asking for the text between prefix and suffix, or None when the
        model has no fill-in-the-middle tokens."""
        lib = self._llama_cpp
        pre, suf, mid = (lib.llama_vocab_fim_pre(self.vocab), lib.llama_vocab_fim_suf(self.vocab),
                         lib.llama_vocab_fim_mid(self.vocab))
        if min(pre, suf, mid) < 0:
            return None
        body = self.tokenize(prefix, add_special=False, parse_special=False)
        tail = self.tokenize(suffix, add_special=False, parse_special=False)
        head = self.tokenize("", add_special=True, parse_special=False)  # BOS where the model wants one
        return [*head, pre, *body, suf, *tail, mid]

    def close(self) -> None:
        self.model.close()


def check_unicode(text: str) -> bytes:
    """The UTF-8 bytes of ``text``; a lone UTF-16 surrogate ("\\ud800" in JSON) is not text a
    tokenizer can read, and is the caller's error."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        from hearth.errors import InvalidRequest

        raise InvalidRequest(f"the text holds a lone UTF-16 surrogate at character {exc.start}; "
                             "send valid Unicode") from None
