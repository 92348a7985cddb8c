"""What the parser hands back: a piece of the reply, split into its three streams."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ParsedCall:
    """A complete tool call: a function the request offered, its arguments, a fresh id."""

    name: str
    arguments: dict[str, Any]
    id: str


@dataclass
class ReplyDelta:
    """Text and calls that became certain with one ``feed`` (or at ``finish``)."""

    content: str = ""
    thinking: str = ""
    tool_calls: list[ParsedCall] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.content or self.thinking or self.tool_calls)
