"""Whether a prompt fits the context window. (The policy for chats longer than the window, what
to drop and how to say so, belongs here too: see the issue "Serve untrusted traffic safely".)"""

from __future__ import annotations

from hearth.errors import ContextOverflow


def check_fits(tokens: list[int], context: int) -> None:
    if len(tokens) >= context:
        raise ContextOverflow(
            f"the prompt is {len(tokens)} tokens but the context window (num_ctx) holds {context}; "
            "shorten the prompt or raise num_ctx"
        )
