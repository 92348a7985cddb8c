"""Pydantic models for OpenAI's Responses API under /v1/responses.

The request is typed where a wrong type should be a 400 (numbers, flags, the reasoning and text
settings); ``input`` items and ``tools`` stay plain dicts here because they come in many types,
most of which hearth answers by leaving them out, and ``server/responses_translate.py`` reads
each known type with the item models below so an error names the item (``input[3]``).
Unknown top-level fields (``include``, ``prompt_cache_key``, ``client_metadata``,
``service_tier``, ``stream_options``, ...) are accepted and ignored, as on the other OpenAI
routes. The response models carry the fields the official SDK's ``Response`` type requires.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hearth.api.openai_types import HearthExtras


class ResponsesModel(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)


# -- request --------------------------------------------------------------------------------


class ReasoningConfig(ResponsesModel):
    # "none"/"minimal" turn thinking off; "xhigh" is read as "high"
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class TextConfig(ResponsesModel):
    # {"type": "text"} | {"type": "json_object"} | {"type": "json_schema", "schema", "name", "strict"}
    format: dict[str, Any] | None = None
    verbosity: str | None = None


class ResponsesRequest(HearthExtras):
    model: str
    input: str | list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    seed: int | None = None  # hearth extra, as on chat completions
    text: TextConfig | None = None
    stream: bool = False
    store: bool = True
    previous_response_id: str | None = None
    # "auto" drops the oldest turns when the conversation does not fit; "disabled" (the
    # default, as OpenAI's) answers context_length_exceeded instead
    truncation: Literal["auto", "disabled"] | None = None
    metadata: dict[str, Any] | None = None
    user: str | None = None


class ContentPart(ResponsesModel):
    """A part of a message item's content: input_text, output_text, refusal, input_image, ..."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None
    refusal: str | None = None


class MessageItem(ResponsesModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(ResponsesModel):
    type: Literal["function_call"] = "function_call"
    call_id: str
    name: str
    arguments: str = "{}"
    namespace: str | None = None
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(ResponsesModel):
    type: Literal["function_call_output"] = "function_call_output"
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class SummaryText(ResponsesModel):
    type: Literal["summary_text"] = "summary_text"
    text: str


class ReasoningText(ResponsesModel):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class ReasoningItem(ResponsesModel):
    type: Literal["reasoning"] = "reasoning"
    id: str | None = None
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None  # another server's sealed reasoning: hearth cannot read it
    status: str | None = None


# -- response -------------------------------------------------------------------------------


class InputTokensDetails(ResponsesModel):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(ResponsesModel):
    reasoning_tokens: int = 0


class ResponseUsage(ResponsesModel):
    input_tokens: int = 0
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int = 0
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int = 0


class IncompleteDetails(ResponsesModel):
    reason: Literal["max_output_tokens"] = "max_output_tokens"


class ResponseError(ResponsesModel):
    code: str = "server_error"
    message: str


class ResponseObject(ResponsesModel):
    """A response: what POST answers, what each lifecycle event carries, what GET returns."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    background: bool = False
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    # the output items as plain dicts: message, reasoning and function_call (see responses_events)
    output: list[dict[str, Any]] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: dict[str, Any] = Field(default_factory=lambda: {"effort": None, "summary": None})
    store: bool = True
    temperature: float | None = None
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float | None = None
    truncation: Literal["auto", "disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ResponseDeleted(ResponsesModel):
    id: str
    object: Literal["response"] = "response"
    deleted: bool = True
