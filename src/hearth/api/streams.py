"""A streamed answer joined into one response: the last chunk (done, timings, tool calls) with
the whole text. The one collector for the Python API and the server's ``"stream": false``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def join_stream(chunks: Iterable[Any]) -> Any:
    """``GenerateResponse`` chunks joined on ``response``, ``ChatResponse`` chunks on
    ``message.content``; everything else comes from the last chunk."""
    collected = list(chunks)
    if not collected:
        raise ValueError("an answer ended before its first chunk")
    final = collected[-1]
    if hasattr(final, "response"):
        return final.model_copy(update={"response": "".join(c.response for c in collected)})
    text = "".join(c.message.content for c in collected)
    return final.model_copy(update={"message": final.message.model_copy(update={"content": text})})
