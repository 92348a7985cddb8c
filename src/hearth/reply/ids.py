"""Tool-call ids in the shape each model family's template accepts on the next turn."""

from __future__ import annotations

import secrets
import string

from hearth.reply.style import ReplyStyle

_ALPHANUMERIC = string.ascii_letters + string.digits
MISTRAL_ID_LENGTH = 9  # Mistral's templates raise on a tool_call_id of any other length


def new_call_id(style: ReplyStyle | None = None) -> str:
    if style is not None and style.tools == "mistral":
        return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(MISTRAL_ID_LENGTH))
    return "call_" + secrets.token_hex(12)


def is_mistral_id(text: object) -> bool:
    return (isinstance(text, str) and len(text) == MISTRAL_ID_LENGTH
            and all(char in _ALPHANUMERIC for char in text))
