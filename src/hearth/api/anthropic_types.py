"""Pydantic models for Anthropic's Messages API (``/v1/messages``, ``/v1/messages/count_tokens``).

They validate requests (a wrong type is a 400 in Anthropic's error shape) and document the
routes in /openapi.json. Unknown fields are accepted and ignored, as in hearth's other wire
types: Claude Code sends ``output_config``, ``context_management``, ``metadata``,
``cache_control`` on any block and more, none of which changes what a local model does.

Content blocks are a union told apart by ``type``; a type hearth cannot read (``document``,
``search_result``, a server tool's result) validates as ``OtherBlock`` so that the
translation can refuse it by name instead of with pydantic's list of expected tags.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag


class AnthropicModel(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)


# -- content blocks in requests --------------------------------------------------------------


T = TypeVar("T")
# A string or a list of blocks; told apart first, so a bad block is reported as that block
# rather than also as "not a string".
StringOr = Annotated[Annotated[str, Tag("string")] | Annotated[T, Tag("blocks")],
                     Discriminator(lambda value: "string" if isinstance(value, str) else "blocks")]


class TextBlock(AnthropicModel):
    type: Literal["text"] = "text"
    text: str


class ImageBlock(AnthropicModel):
    type: Literal["image"] = "image"
    source: dict[str, Any] | None = None


class ToolUseBlock(AnthropicModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(AnthropicModel):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: StringOr[list[ResultPart]] | None = None
    is_error: bool | None = None


class ThinkingBlock(AnthropicModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(AnthropicModel):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str = ""


class OtherBlock(AnthropicModel):
    """A block of a type hearth does not read; the translation names it in a 400."""

    type: str


KNOWN_BLOCKS = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")


def block_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in KNOWN_BLOCKS else "other"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")] | Annotated[ImageBlock, Tag("image")]
    | Annotated[ToolUseBlock, Tag("tool_use")] | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ThinkingBlock, Tag("thinking")] | Annotated[RedactedThinkingBlock, Tag("redacted_thinking")]
    | Annotated[OtherBlock, Tag("other")],
    Discriminator(block_kind),
]
# What a tool_result's content may hold: text, or an image (refused: text-only models).
ResultPart = Annotated[
    Annotated[TextBlock, Tag("text")] | Annotated[ImageBlock, Tag("image")] | Annotated[OtherBlock, Tag("other")],
    Discriminator(lambda value: {"text": "text", "image": "image"}.get(block_kind(value), "other")),
]
ToolResultBlock.model_rebuild()


class InputMessage(AnthropicModel):
    # "system" is not in Anthropic's documentation, but Claude Code sends one as the last entry.
    role: Literal["user", "assistant", "system"]
    content: StringOr[list[ContentBlock]]


# -- tools and options -----------------------------------------------------------------------


class ToolDefinition(AnthropicModel):
    name: str = Field(min_length=1)
    description: str | None = None
    # JSON Schema (2020-12, as Claude Code writes it); absent on Anthropic's server tools
    input_schema: dict[str, Any] | None = None
    # None or "custom" for a client tool; "web_search_20250305", "bash_20250124", ... otherwise
    type: str | None = None


class ToolChoice(AnthropicModel):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class ThinkingConfig(AnthropicModel):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: int | None = Field(None, ge=0)


class PromptFields(AnthropicModel):
    """What both routes read: the prompt, as the model will see it."""

    model: str
    messages: list[InputMessage]
    system: StringOr[list[TextBlock]] | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: ToolChoice | None = None
    thinking: ThinkingConfig | None = None


class MessagesRequest(PromptFields):
    max_tokens: int = Field(ge=1)
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(None, ge=0.0, le=1.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    stream: bool = False
    # hearth extra, as on the other APIs: how long the model stays loaded afterwards
    keep_alive: str | float | int | None = None


class CountTokensRequest(PromptFields):
    pass


# -- responses -------------------------------------------------------------------------------


class TextOut(AnthropicModel):
    type: Literal["text"] = "text"
    text: str


class ThinkingOut(AnthropicModel):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str


class ToolUseOut(AnthropicModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class MessageUsage(AnthropicModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class MessageOut(AnthropicModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ThinkingOut | TextOut | ToolUseOut] = Field(default_factory=list)
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: MessageUsage = Field(default_factory=MessageUsage)


class TokenCount(AnthropicModel):
    input_tokens: int
