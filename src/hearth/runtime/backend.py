"""The one protocol behind ``Runtime._backend``: what answers a model name, whether the model runs
here (``local.LocalModels``) or at a provider (``providers.remote.RemoteModels``). Both speak the
same wire types, so everything above asks "which backend?" once and then does not care."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ShowResponse,
)
from hearth.runtime.loaded import Adapters, Cancelled


class Backend(Protocol):
    def describe(self, name: str) -> Any: ...  # a StoredModel, or a remote target
    def show(self, name: str) -> ShowResponse: ...
    def chat(self, request: ChatRequest, cancelled: Cancelled = None,
             adapters: Adapters = ()) -> Iterator[ChatResponse]: ...
    def generate(self, request: GenerateRequest, cancelled: Cancelled = None,
                 adapters: Adapters = ()) -> Iterator[GenerateResponse]: ...
    def embed(self, request: EmbedRequest) -> EmbedResponse: ...
