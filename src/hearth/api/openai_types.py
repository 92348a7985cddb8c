"""Pydantic models for OpenAI's wire format under /v1 (chat, completions, embeddings, models).

They validate requests (a wrong type or an out-of-range value is a 400 in OpenAI's error shape)
and document the routes in /openapi.json. Like the Ollama types, unknown fields are accepted
and ignored, since OpenAI clients send many optional fields that do not apply to local models.
Fields OpenAI lacks but hearth accepts (``num_ctx``, ``top_k``, ``keep_alive``, ``options``)
are sent by OpenAI SDK users through ``extra_body``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from hearth.api.types import Options


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)


# -- models ---------------------------------------------------------------------------------


class ModelObject(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[ModelObject] = Field(default_factory=list)


# -- shared ---------------------------------------------------------------------------------


class Usage(OpenAIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # hearth extra: the oldest messages left out so the chat fits num_ctx (only when some were)
    dropped_messages: int | None = None

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: Any) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class StreamOptions(OpenAIModel):
    include_usage: bool = False


class HearthExtras(OpenAIModel):
    """Ollama-side knobs an OpenAI client can pass in ``extra_body``."""

    num_ctx: int | None = Field(None, ge=16, le=1 << 20)
    top_k: int | None = Field(None, ge=0)
    keep_alive: str | float | int | None = None
    options: Options | None = None


class SamplingFields(HearthExtras):
    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    n: int | None = Field(None, description="only 1 is supported")
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = None


# -- chat -----------------------------------------------------------------------------------


class ContentPart(OpenAIModel):
    """A part of a message's content; only ``text`` parts are supported by text-only models."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class FunctionCall(OpenAIModel):
    name: str
    arguments: str = Field("{}", description="the arguments as a JSON string")


class ToolCallOut(OpenAIModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ToolCallIn(OpenAIModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(OpenAIModel):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionDefinition(OpenAIModel):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(OpenAIModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class ToolChoiceFunction(OpenAIModel):
    name: str


class NamedToolChoice(OpenAIModel):
    type: Literal["function"] = "function"
    function: ToolChoiceFunction


class JsonSchemaFormat(OpenAIModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None


class ResponseFormat(OpenAIModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    # reasoning models: OpenAI's effort; "none"/"minimal" switch thinking off where a model can
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    # hearth extras (extra_body): Ollama's think, and variables for the chat template, as
    # llama-server's and vLLM's chat_template_kwargs (Qwen3's enable_thinking, ...)
    think: bool | Literal["low", "medium", "high"] | None = None
    chat_template_kwargs: dict[str, Any] | None = None


class AssistantMessage(OpenAIModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    # the model's reasoning: llama-server's and DeepSeek's name, and Ollama's (reasoning)
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallOut] | None = None
    refusal: str | None = None


class ChatChoice(OpenAIModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: None = None


class ChatCompletion(OpenAIModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str


class FunctionCallDelta(OpenAIModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(OpenAIModel):
    """A streamed call: the first delta of a call has its id, type and name, later ones only
    argument text, all keyed by ``index``."""

    index: int = 0
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: Any) -> dict[str, Any]:
        data = {key: value for key, value in handler(self).items() if value is not None}
        data["function"] = {key: value for key, value in data["function"].items() if value is not None}
        return data


class ChunkDelta(OpenAIModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None

    @model_serializer(mode="wrap")
    def _without_nulls(self, handler: Any) -> dict[str, Any]:
        # A delta carries only what changed: {"role": ...} first, then {"content": ...}.
        return {key: value for key, value in handler(self).items() if value is not None}


class ChunkChoice(OpenAIModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop", "length", "tool_calls"] | None = None
    logprobs: None = None


class ChatCompletionChunk(OpenAIModel):
    """One server-sent event of a streamed chat completion."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str


# -- completions ----------------------------------------------------------------------------


class CompletionRequest(SamplingFields):
    prompt: str | list[str] | list[int] | list[list[int]] = ""
    suffix: str | None = Field(None, description="accepted and ignored")
    echo: bool = False
    logprobs: int | None = None
    best_of: int | None = None


class CompletionChoice(OpenAIModel):
    text: str
    index: int = 0
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class Completion(OpenAIModel):
    """A completion, or (streamed) one event of it: the same object in both cases."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str


# -- embeddings -----------------------------------------------------------------------------


class EmbeddingRequest(HearthExtras):
    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1)
    user: str | None = None


class EmbeddingObject(OpenAIModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class EmbeddingUsage(OpenAIModel):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingObject]
    model: str
    usage: EmbeddingUsage
