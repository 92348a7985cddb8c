"""A streamed answer joined into one response: the last chunk (done, timings) with the whole
text, thinking and tool calls. The one collector for the Python API and the server's
``"stream": false``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def join_stream(chunks: Iterable[Any]) -> Any:
    """``GenerateResponse`` chunks joined on ``response`` and ``thinking``, ``ChatResponse``
    chunks on ``message.content``, ``message.thinking`` and ``message.tool_calls``; everything
    else comes from the last chunk."""
    collected = list(chunks)
    if not collected:
        raise ValueError("an answer ended before its first chunk")
    final = collected[-1]
    if hasattr(final, "response"):
        return final.model_copy(update={"response": "".join(c.response for c in collected),
                                        "thinking": _joined(c.thinking for c in collected)})
    messages = [c.message for c in collected]
    calls = [call for m in messages for call in (m.tool_calls or ())]
    message = final.message.model_copy(update={
        "content": "".join(m.content for m in messages),
        "thinking": _joined(m.thinking for m in messages),
        "tool_calls": calls or None,
    })
    return final.model_copy(update={"message": message})


def _joined(pieces: Iterable[str | None]) -> str | None:
    text = "".join(piece or "" for piece in pieces)
    return text or None
