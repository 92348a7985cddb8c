"""Pydantic models for every request and response on the wire (Ollama's field names).

The server validates requests with these, the client parses responses with them, and the CLI
and Python API return them, so the four never drift apart. Unknown fields are accepted and
ignored (Ollama clients send fields we may not use yet); wrong types are rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator


class WireModel(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=(), populate_by_name=True)


# Options Ollama clients send that hearth has no use for (llama.cpp dropped some, others are
# settings hearth chooses itself): accepted and ignored with a warning in the server log, as
# Ollama does, where any other unknown name is a typo worth a 400.
IGNORED_OLLAMA_OPTIONS = frozenset({
    "mirostat", "mirostat_eta", "mirostat_tau", "tfs_z", "use_mlock", "main_gpu", "num_gqa",
    "penalize_newline", "low_vram", "f16_kv", "vocab_only", "logits_all", "numa", "rope_frequency_base",
    "rope_frequency_scale", "embedding_only",
})
# Stop strings are matched against every generated token: their number and length are bounded.
MAX_STOP_STRINGS = 32
MAX_STOP_LENGTH = 1000


class Options(WireModel):
    """Ollama's generation and load options. ``None`` means: use the model's or hearth's default."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored(cls, data: Any) -> Any:
        if isinstance(data, dict) and IGNORED_OLLAMA_OPTIONS.intersection(data):
            import logging

            ignored = sorted(IGNORED_OLLAMA_OPTIONS.intersection(data))
            logging.getLogger("hearth.options").warning("ignoring options hearth does not use: %s",
                                                        ", ".join(ignored))
            data = {key: value for key, value in data.items() if key not in IGNORED_OLLAMA_OPTIONS}
        return data

    @field_validator("flash_attention", mode="before")
    @classmethod
    def _flash_attention_mode(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return "on" if value else "off"  # Ollama's OLLAMA_FLASH_ATTENTION is a flag
        if value is not None and str(value).lower() not in ("auto", "on", "off"):
            raise ValueError("flash_attention must be auto, on or off")
        return None if value is None else str(value).lower()

    @field_validator("kv_cache_type")
    @classmethod
    def _known_kv_type(cls, value: str | None) -> str | None:
        if value is not None and value.lower() not in ("f16", "q8_0", "q4_0"):
            raise ValueError("kv_cache_type must be f16, q8_0 or q4_0")
        return None if value is None else value.lower()

    @field_validator("stop")
    @classmethod
    def _bounded_stops(cls, stop: list[str] | None) -> list[str] | None:
        if stop is not None:
            if len(stop) > MAX_STOP_STRINGS:
                raise ValueError(f"at most {MAX_STOP_STRINGS} stop strings, not {len(stop)}")
            if any(len(text) > MAX_STOP_LENGTH for text in stop):
                raise ValueError(f"a stop string may be at most {MAX_STOP_LENGTH} characters")
        return stop

    # load-time
    num_ctx: int | None = Field(None, ge=16, le=1 << 20)
    num_batch: int | None = Field(None, ge=1, le=1 << 16)
    num_thread: int | None = Field(None, ge=1, le=1024)
    num_gpu: int | None = Field(None, ge=-1, le=100000)
    use_mmap: bool | None = None
    # hearth extras, load-time: flash attention (auto, on, off) and the KV-cache element type
    # (f16, q8_0, q4_0); unset means HEARTH_FLASH_ATTENTION / HEARTH_KV_CACHE_TYPE
    flash_attention: str | None = None
    kv_cache_type: str | None = None
    # sampling
    seed: int | None = None
    num_predict: int | None = Field(None, ge=-2)
    temperature: float | None = Field(None, ge=0.0, le=100.0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    typical_p: float | None = Field(None, ge=0.0, le=1.0)
    repeat_penalty: float | None = Field(None, ge=0.0)
    repeat_last_n: int | None = Field(None, ge=-1)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    stop: list[str] | None = None
    num_keep: int | None = None

    def merged_over(self, base: Options | None) -> Options:
        """These options, falling back to ``base`` for what is unset."""
        if base is None:
            return self
        data = base.model_dump(exclude_none=True)
        data.update(self.model_dump(exclude_none=True))
        return Options(**data)




class ToolCallFunction(WireModel):
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    index: int | None = None  # Ollama's: the call's place among the turn's calls


class ToolCall(WireModel):
    # hearth extra (Ollama sends none): the call's id, which a later "tool" message answers with
    # tool_call_id; the OpenAI, Anthropic and Responses APIs hand it to their clients.
    id: str | None = None
    function: ToolCallFunction


class Message(WireModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    # the model's reasoning, apart from its answer (Ollama's field)
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    # on a "tool" message: which tool answered (Ollama's tool_name) and which call (OpenAI's id)
    tool_name: str | None = None
    tool_call_id: str | None = None


# Ollama's think: true/false, or an effort for models that take one (gpt-oss).
Think = bool | Literal["low", "medium", "high"] | None
# How tools may be used, whichever API asked: "auto" (the model decides), "none", "required"
# (some call), or {"name": ...} (that function).
ToolChoice = Literal["auto", "none", "required"] | dict[str, Any] | None


class GenerateRequest(WireModel):
    model: str
    prompt: str = ""
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    raw: bool = False
    format: str | dict[str, Any] | None = None
    images: list[str] | None = None
    options: Options | None = None
    keep_alive: str | float | int | None = None
    stream: bool = True
    context: list[int] | None = None
    truncate: bool = True  # false: a prompt over num_ctx is a 400 with both token counts
    think: Think = None


class ChatRequest(WireModel):
    model: str
    messages: list[Message] = Field(default_factory=list)
    tools: list[dict[str, Any]] | None = None
    format: str | dict[str, Any] | None = None
    options: Options | None = None
    keep_alive: str | float | int | None = None
    stream: bool = True
    # false: a chat over num_ctx is a 400 with both token counts, instead of dropping old turns
    truncate: bool = True
    think: Think = None
    # hearth extras: how tools may be used, and variables for the chat template (Qwen3's
    # enable_thinking, ...), as llama-server's and vLLM's chat_template_kwargs
    tool_choice: ToolChoice = None
    chat_template_kwargs: dict[str, Any] | None = None


class RemoteMarker(WireModel):
    """Set when a remote provider answered (Ollama's field names for its cloud models): the
    provider's own model id and its endpoint. Absent for local models."""

    remote_model: str | None = None
    remote_host: str | None = None


class Timings(RemoteMarker):
    """Ollama's timing fields; durations in nanoseconds."""

    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    # hearth extra: prompt tokens taken from the cache instead of computed
    prompt_cache_count: int | None = None
    # hearth extra: the oldest messages left out so the chat fits num_ctx (absent when none)
    dropped_messages: int | None = None
    # hearth extra: the sampling seed used, so a random answer can be reproduced
    seed: int | None = None
    # hearth extra: the stop string that ended the answer (Anthropic's stop_sequence)
    stop_sequence: str | None = None

    def tokens_per_second(self) -> float:
        if not self.eval_count or not self.eval_duration:
            return 0.0
        return self.eval_count / (self.eval_duration / 1e9)


class GenerateResponse(Timings):
    model: str
    created_at: datetime
    response: str = ""
    thinking: str | None = None
    done: bool = False
    done_reason: str | None = None
    context: list[int] | None = None


class ChatResponse(Timings):
    model: str
    created_at: datetime
    message: Message
    done: bool = False
    done_reason: str | None = None


class ModelDetails(WireModel):
    parent_model: str = ""
    format: str = "gguf"
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ListedModel(WireModel):
    name: str
    model: str
    modified_at: datetime
    size: int
    digest: str
    details: ModelDetails


class ListResponse(WireModel):
    models: list[ListedModel] = Field(default_factory=list)


# Older Ollama clients send "name" where newer ones send "model".
MODEL_FIELD = Field(validation_alias=AliasChoices("model", "name"))


class ShowRequest(WireModel):
    model: str = MODEL_FIELD
    verbose: bool = False


class ShowResponse(RemoteMarker):
    license: str = ""
    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    system: str = ""
    details: ModelDetails = Field(default_factory=ModelDetails)
    messages: list[Message] = Field(default_factory=list)
    model_info: dict[str, Any] = Field(default_factory=dict)
    modified_at: datetime | None = None
    adapters: list[str] = Field(default_factory=list)  # hearth extra: LoRA adapters and scales
    # what the model can do: completion, tools, thinking, embedding, insert, vision
    capabilities: list[str] = Field(default_factory=list)


class PullRequest(WireModel):
    model: str = MODEL_FIELD
    insecure: bool = False
    stream: bool = True
    # hearth extensions: accept a license that needs it, and cap the download speed
    # (bytes per second, or text like "10M").
    accept_license: bool = False
    max_speed: float | str | None = None


class PushRequest(WireModel):
    """Ollama's push; ``destination`` (hearth extra) pushes under another registry name."""

    model: str = MODEL_FIELD
    insecure: bool = False
    stream: bool = True
    destination: str | None = None


class ProgressResponse(WireModel):
    """One step of a long operation (pull, create)."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None
    # hearth's addition: bytes per second of a download so far (clients may ignore it).
    speed: float | None = None


class CreateRequest(WireModel):
    """Both forms of Ollama's create: a Modelfile text, or its parts as fields (``from`` a model
    or ``files`` already uploaded with POST /api/blobs)."""

    model: str = MODEL_FIELD
    modelfile: str | None = None
    from_: str | None = Field(None, alias="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    quantize: str | None = None
    allow_requantize: bool = False  # hearth extra: quantize an already low-bit model anyway
    stream: bool = True


class CopyRequest(WireModel):
    source: str
    destination: str


class DeleteRequest(WireModel):
    model: str = MODEL_FIELD


# Long operations (pull, create) report progress through this callback; the CLI draws bars
# from it and the server streams each event as one NDJSON line.
ProgressFn = Callable[[ProgressResponse], None]


def no_progress(_event: ProgressResponse) -> None:
    return None


class EmbedRequest(WireModel):
    model: str
    input: str | list[str] = ""
    truncate: bool = True
    options: Options | None = None
    keep_alive: str | float | int | None = None
    dimensions: int | None = Field(None, ge=1)


class EmbedResponse(RemoteMarker):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class EmbeddingsRequest(WireModel):
    """The older single-text embeddings route."""

    model: str
    prompt: str = ""
    options: Options | None = None
    keep_alive: str | float | int | None = None


class EmbeddingsResponse(WireModel):
    embedding: list[float]


class TokenizeRequest(WireModel):
    model: str
    content: str = Field("", alias="content")
    options: Options | None = None
    keep_alive: str | float | int | None = None


class TokenizeResponse(WireModel):
    model: str
    tokens: list[int]


class DetokenizeRequest(WireModel):
    model: str
    tokens: list[int]
    options: Options | None = None
    keep_alive: str | float | int | None = None


class DetokenizeResponse(WireModel):
    model: str
    content: str


class RunningModel(WireModel):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: datetime | None = None
    size_vram: int = 0
    context_length: int = 0
    num_parallel: int = 1
    in_use: int = 0
    runner_pid: int | None = None  # hearth extra: the model's runner process, when isolated
    # hearth extras: how the generating instance attends (auto, on, off) and its KV-cache type
    flash_attention: str | None = None
    kv_cache_type: str | None = None
    # hearth extra: every instance's runner (chat, other options, embeddings), one line per model
    runner_pids: list[int] | None = None


class ProcessResponse(WireModel):
    models: list[RunningModel] = Field(default_factory=list)


class VersionResponse(WireModel):
    version: str  # the Ollama API version hearth speaks (clients check it)
    hearth_version: str | None = None


class StatusResponse(WireModel):
    status: str = "success"
