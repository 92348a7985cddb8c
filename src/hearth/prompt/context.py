"""Whether a prompt fits the context window, and what to leave out of a chat that does not.

A chat that outgrows ``num_ctx`` keeps working: its system messages and newest turns stay, the
oldest turns are left out whole (a turn starts at a user message, so a tool call never loses
its result), and the caller learns how many messages went. ``truncate=False`` asks for the
typed error instead, with both token counts, as llama-server's ``exceed_context_size_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hearth.errors import ContextOverflow, InvalidRequest

Render = Callable[[list[dict[str, Any]]], list[int]]


def check_fits(tokens: list[int], context: int) -> None:
    if not tokens:
        # No token to read means no logits to sample the first answer token from.
        raise InvalidRequest("the prompt is empty after applying the template: nothing to generate from")
    if len(tokens) >= context:
        raise overflow(len(tokens), context)


def overflow(prompt_tokens: int, context: int, what: str = "the prompt") -> ContextOverflow:
    return ContextOverflow(
        f"{what} is {prompt_tokens} tokens but the context window (num_ctx) holds {context}; "
        "shorten it or raise num_ctx",
        prompt_tokens=prompt_tokens, context=context,
    )


@dataclass(frozen=True)
class FittedChat:
    tokens: list[int]
    dropped_messages: int  # the oldest messages left out so the rest fits


def answer_room(context: int, num_predict: int | None) -> int:
    """Tokens kept free for the answer when older turns must go: what the request asked for,
    within reason, else a quarter of the window."""
    if num_predict is not None and num_predict > 0:
        return min(num_predict, context // 2)
    return context // 4


def fit_chat(messages: list[dict[str, Any]], render: Render, context: int, *, truncate: bool = True,
             answer_tokens: int = 0) -> FittedChat:
    """The tokens of ``messages`` if they fit ``context``; otherwise, with ``truncate``, of the
    system messages and the fewest newest turns dropped so the prompt leaves ``answer_tokens``
    free. Raises ``ContextOverflow`` when even the last turn does not fit, or when it would
    have to drop something and ``truncate`` is false."""
    tokens = render(messages)
    if len(tokens) < context:
        return FittedChat(tokens, 0)
    if not truncate:
        raise overflow(len(tokens), context)
    head = 0
    while head < len(messages) and messages[head].get("role") == "system":
        head += 1
    # Where a kept part may start: at a user message, never at the very first one (that is
    # the whole chat, already too long).
    starts = [i for i in range(head + 1, len(messages)) if messages[i].get("role") == "user"]
    if not starts:
        raise overflow(len(tokens), context)
    target = max(1, context - answer_tokens)

    def attempt(start: int) -> list[int]:
        return render(messages[:head] + messages[start:])

    # Fewer dropped messages, longer prompt: find the first start that fits, halving the range.
    low, high = 0, len(starts) - 1
    best: list[int] | None = None
    best_start = -1
    while low <= high:
        middle = (low + high) // 2
        candidate = attempt(starts[middle])
        if len(candidate) <= target:
            best, best_start = candidate, starts[middle]
            high = middle - 1
        else:
            low = middle + 1
    if best is None:
        # Not even the last turn leaves the answer its room: give it what is left, if anything.
        last = attempt(starts[-1])
        if len(last) >= context:
            raise overflow(len(last), context, what="even the system prompt and the last turn alone")
        best, best_start = last, starts[-1]
    return FittedChat(best, best_start - head)
