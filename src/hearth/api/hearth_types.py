"""Wire types of hearth's own JSON routes (``/api/hearth/...``), which the web app uses for what
Ollama's API does not say: catalog search, license summaries, hardware fit and remote models.

License summaries and fit reports are produced by ``hearth.licenses`` and ``hearth.fit``;
these models describe their shape for /openapi.json and let new fields pass through.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenModel(BaseModel):
    # Fields added later by the producing modules reach the client unchanged.
    model_config = ConfigDict(extra="allow", protected_namespaces=())


class LicenseSummary(OpenModel):
    """What a license allows, from hearth's license knowledge base (``hearth license``)."""

    id: str | None = None
    known: bool = False
    name: str = ""
    osi_approved: bool | None = None
    commercial_use: Literal["yes", "no", "conditional", "unknown"] = "unknown"
    attribution: Any = None
    redistribution: Any = None
    modification: Any = None
    restrictions: list[str] = Field(default_factory=list)
    url: str | None = None
    needs_acceptance: bool = False


class FitInfo(OpenModel):
    """Whether a model fits this machine's memory (``hearth fit``); sizes in bytes."""

    verdict: Literal["fits", "tight", "too large", "unknown"]
    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    overhead_bytes: int = 0
    total_bytes: int = 0
    available_bytes: int = 0
    gpu_available_bytes: int | None = None
    context_length: int | None = None
    budget_bytes: int | None = None
    device: str | None = None
    notes: list[str] = Field(default_factory=list)
    # Predicted from this machine's measured figures (``hearth.fit.speed``); None without them,
    # and then ``speed_basis`` says why and what to run.
    decode_tokens_per_second: float | None = None
    prompt_tokens_per_second: float | None = None
    speed_basis: str = ""


class CatalogTagInfo(OpenModel):
    tag: str
    parameter_size: str = ""
    quantization: str = ""
    size: int = 0
    source: Any = None
    fit: FitInfo | None = None
    installed: bool = False
    license_summary: LicenseSummary | None = None  # set when this tag's license differs from the entry's


class CatalogEntryInfo(OpenModel):
    model: str
    publisher: str = ""
    family: str = ""
    description: str = ""
    license: str = ""
    weights: Literal["open", "closed"] = "open"
    context_length: int | None = None
    tags: list[CatalogTagInfo] = Field(default_factory=list)
    provider_hint: str | None = None
    license_summary: LicenseSummary | None = None


class CatalogSearchResponse(BaseModel):
    query: str
    entries: list[CatalogEntryInfo] = Field(default_factory=list)


class InstalledModelInfo(BaseModel):
    """An installed model with what the Models page shows beyond /api/tags."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    size: int
    architecture: str = ""
    parameter_count: int | None = None
    parameter_size: str = ""
    quantization: str = ""
    context_length: int | None = None
    license_id: str | None = None
    license: LicenseSummary | None = None
    fit: FitInfo | None = None
    error: str | None = None


class InstalledModelsResponse(BaseModel):
    models: list[InstalledModelInfo] = Field(default_factory=list)


class RemoteModelInfo(BaseModel):
    name: str
    provider: str
    owned_by: str = ""
    context_length: int | None = None
    weights: str = ""
    license: str = ""


class RemoteProviderInfo(BaseModel):
    name: str
    endpoint: str
    ready: bool
    key_env: str | None = None
    models: list[RemoteModelInfo] = Field(default_factory=list)
    error: str | None = None


class RemoteModelsResponse(BaseModel):
    """Remote providers and the models they offer. Every model listed here runs elsewhere:
    prompts sent to it leave this machine."""

    offline: bool
    providers: list[RemoteProviderInfo] = Field(default_factory=list)
