"""The conversation one request becomes, and its tokens: the model's system prompt and
Modelfile ``MESSAGE``s ahead of the request's messages, rendered with the chat template."""

from __future__ import annotations

from typing import Any, Protocol


class Tokenizer(Protocol):
    """What rendering needs from a vocabulary (``engine.base.Vocab`` provides it)."""

    bos_text: str
    eos_text: str

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]: ...


def assemble(messages: list[dict[str, Any]], *, system: str | None,
             preset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``system`` (the request's, else the model's) first unless the messages bring their own,
    then the model's preset messages, then the request's."""
    has_system = any(m.get("role") == "system" for m in messages)
    head = [{"role": "system", "content": system}] if system and not has_system else []
    return head + list(preset) + messages


def render_prompt(template: str, messages: list[dict[str, Any]], vocab: Tokenizer,
                  tools: list[Any] | None = None,
                  extra: dict[str, Any] | None = None) -> tuple[str, list[int]]:
    """The prompt text and its tokens; ``extra`` are template variables (enable_thinking, ...)."""
    from hearth.prompt.templates import render_chat

    text = render_chat(template, messages, add_generation_prompt=True, bos_token=vocab.bos_text,
                       eos_token=vocab.eos_text, tools=tools, extra=extra)
    # Templates that write the BOS token themselves must not get a second one.
    add_special = not (vocab.bos_text and text.startswith(vocab.bos_text))
    return text, vocab.tokenize(text, add_special=add_special, parse_special=True)
