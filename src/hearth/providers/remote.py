"""Remote models behind the runtime's methods: chat, generate, embed and show for names like
``groq/llama-3.3-70b-versatile``, answering with the same wire types as local models.

Every answer carries ``remote_model`` and ``remote_host`` (Ollama's fields for its cloud
models), so an API client can tell that the data left the machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    Message,
    ModelDetails,
    ShowResponse,
)
from hearth.errors import InvalidRequest, ModelNotFound, ProviderError
from hearth.providers import translate
from hearth.providers.directory import (
    Provider,
    RemoteTarget,
    find_provider,
    load_providers,
    resolve,
)
from hearth.providers.transport import IncompleteStream, Transport
from hearth.providers.weights import facts_for

Cancelled = Callable[[], bool] | None
_PATTERN_CHARS = set("*?[")


@dataclass(frozen=True)
class RemoteListing:
    """One model a provider offers (``hearth list --remote``)."""

    name: str
    owned_by: str
    context_length: int | None
    weights: str
    license: str


def _now() -> datetime:
    return datetime.now(timezone.utc)


class RemoteModels:
    # -- names ----------------------------------------------------------------------------

    @staticmethod
    def owns(name: str) -> bool:
        """True when ``name`` is PROVIDER/MODEL for a known provider (no network)."""
        return resolve(name) is not None

    @staticmethod
    def target(name: str) -> RemoteTarget:
        target = resolve(name)
        if target is None:
            raise ModelNotFound(name)
        if not target.provider.allows(target.model):
            allowed = ", ".join(target.provider.models)
            raise ModelNotFound(name, f"providers.toml allows only these models of "
                                      f"{target.provider.name}: {allowed}")
        return target

    def describe(self, name: str) -> RemoteTarget:
        return self.target(name)

    @staticmethod
    def marker(target: RemoteTarget) -> dict[str, str]:
        return {"remote_model": target.model, "remote_host": target.provider.endpoint}

    # -- show and list --------------------------------------------------------------------

    def show(self, name: str) -> ShowResponse:
        target = self.target(name)
        facts = facts_for(target.model)
        info: dict[str, Any] = {
            "remote.provider": target.provider.name,
            "remote.endpoint": target.provider.endpoint,
            "remote.model": target.model,
            "remote.weights": facts.weights,
        }
        if facts.publisher:
            info["general.publisher"] = facts.publisher
        if facts.license:
            info["general.license"] = facts.license
        return ShowResponse(
            license=facts.license,
            modelfile=f"# {target.name} runs at {target.provider.name} ({target.provider.endpoint})\n",
            details=ModelDetails(format="remote", family=facts.family),
            model_info=info,
            **self.marker(target),
        )

    @staticmethod
    def list_remote(provider_name: str) -> list[RemoteListing]:
        provider = find_provider(provider_name)
        if provider is None:
            known = ", ".join(sorted(load_providers()))
            raise InvalidRequest(f"unknown provider '{provider_name}'; known: {known}")
        data = Transport(provider).get_json("models")
        items = data.get("data", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ProviderError(f"{provider.name} answered /models with an unexpected shape")
        listed = []
        for item in items:
            model = item.get("id") if isinstance(item, dict) else None
            if not isinstance(model, str) or not provider.allows(model):
                continue
            context = next((item[k] for k in ("context_window", "context_length", "max_model_len",
                                               "max_context_length") if isinstance(item.get(k), int)), None)
            facts = facts_for(model)
            listed.append(RemoteListing(name=f"{provider.name}/{model}", owned_by=str(item.get("owned_by") or ""),
                                        context_length=context, weights=facts.weights, license=facts.license))
        return sorted(listed, key=lambda entry: entry.name.lower())

    @staticmethod
    def ready_providers() -> tuple[list[Provider], list[Provider]]:
        """(providers that can be called, providers that lack their key)."""
        ready, keyless = [], []
        for provider in load_providers().values():
            (ready if provider.key() or not provider.needs_key else keyless).append(provider)
        return ready, keyless

    def declared_models(self) -> list[tuple[str, str]]:
        """(name, provider) for each model an allow-list names exactly, of callable providers."""
        ready, _ = self.ready_providers()
        return [(f"{p.name}/{m}", p.name) for p in ready for m in p.models if not _PATTERN_CHARS & set(m)]

    # -- generation -----------------------------------------------------------------------

    # ``adapters`` keeps the local backend's signature; the runtime refuses them for remote names.

    def chat(self, request: ChatRequest, cancelled: Cancelled = None,
             adapters: tuple[tuple[str, float], ...] = ()) -> Iterator[ChatResponse]:
        target = self.target(request.model)
        marker = self.marker(target)

        def make(text: str, done: bool = False, message: Message | None = None, **timing: Any) -> ChatResponse:
            return ChatResponse(model=request.model, created_at=_now(), done=done, **marker, **timing,
                                message=message or Message(role="assistant", content=text))

        if not request.messages:
            yield make("", True, done_reason="load", total_duration=0, load_duration=0)
            return
        body = translate.chat_body(request, target.model, target.provider)
        reader = yield from self._stream(target, "chat/completions", body, make, cancelled)
        calls = reader.tool_calls()
        message = Message(role="assistant", content="", tool_calls=calls or None)
        yield make("", True, message=message, done_reason=reader.done_reason, **reader.timings())

    def generate(self, request: GenerateRequest, cancelled: Cancelled = None,
                 adapters: tuple[tuple[str, float], ...] = ()) -> Iterator[GenerateResponse]:
        target = self.target(request.model)
        marker = self.marker(target)

        def make(text: str, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=request.model, created_at=_now(), response=text, done=done,
                                    **marker, **timing)

        if not request.prompt and not request.system:
            yield make("", True, done_reason="load", total_duration=0, load_duration=0)
            return
        if request.raw or request.suffix:
            # Raw text (or fill-in-the-middle) needs the plain completions route.
            route = "completions"
            body: dict[str, Any] = {"model": target.model, "prompt": request.prompt, "stream": True}
            if request.suffix:
                body["suffix"] = request.suffix
            body.update(translate.sampling(request.options))
        else:
            route = "chat/completions"
            messages = [Message(role="system", content=request.system)] if request.system else []
            messages.append(Message(role="user", content=request.prompt, images=request.images))
            chat = ChatRequest(model=request.model, messages=messages, format=request.format,
                               options=request.options)
            body = translate.chat_body(chat, target.model, target.provider)
        reader = yield from self._stream(target, route, body, make, cancelled)
        yield make("", True, done_reason=reader.done_reason, **reader.timings())

    @staticmethod
    def _stream(target: RemoteTarget, route: str, body: dict[str, Any], make: Callable[..., Any],
                cancelled: Cancelled):
        """Yield a chunk per piece of text; return the reader with what the stream said."""
        reader = translate.StreamReader()
        events = Transport(target.provider).post_events(route, body, model=target.model, cancelled=cancelled)
        try:
            for event in events:
                text = reader.feed(event)
                if text:
                    yield make(text)
        except IncompleteStream:
            # Some servers end without "[DONE]"; after a finish reason nothing was lost.
            if reader.finish_reason is None:
                raise
        finally:
            events.close()
        return reader

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        target = self.target(request.model)
        texts = ([request.input] if request.input else []) if isinstance(request.input, str) else list(request.input)
        started = time.perf_counter_ns()
        if not texts:
            return EmbedResponse(model=request.model, embeddings=[], total_duration=0, load_duration=0,
                                 prompt_eval_count=0, **self.marker(target))
        body: dict[str, Any] = {"model": target.model, "input": texts, "encoding_format": "float"}
        if request.dimensions:
            body["dimensions"] = request.dimensions
        data = Transport(target.provider).post_json("embeddings", body, model=target.model)
        try:
            rows = sorted(data["data"], key=lambda row: row.get("index", 0))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ProviderError(f"{target.provider.name} answered /embeddings with an unexpected shape") from None
        if len(vectors) != len(texts):
            raise ProviderError(f"{target.provider.name} returned {len(vectors)} embeddings for {len(texts)} inputs")
        usage = data.get("usage") or {}
        return EmbedResponse(model=request.model, embeddings=vectors, total_duration=time.perf_counter_ns() - started,
                             load_duration=0, prompt_eval_count=usage.get("prompt_tokens"), **self.marker(target))

    # -- the OpenAI gateway ---------------------------------------------------------------

    def _forward_body(self, target: RemoteTarget, body: dict[str, Any]) -> dict[str, Any]:
        payload = {k: v for k, v in body.items() if k not in translate.HEARTH_ONLY_FIELDS}
        payload["model"] = target.model
        if not target.provider.stream_usage:
            payload.pop("stream_options", None)
        translate.adapt_response_format(payload, target.provider)
        return payload

    def forward(self, name: str, route: str, body: dict[str, Any], cancelled: Cancelled = None) -> dict[str, Any]:
        """An OpenAI request passed to the provider as it is (the model id swapped in)."""
        target = self.target(name)
        payload = self._forward_body(target, body)
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        answer = Transport(target.provider).post_json(route, payload, model=target.model, cancelled=cancelled)
        if not isinstance(answer, dict):
            raise ProviderError(f"{target.provider.name} answered with something that is not a JSON object")
        return answer

    def forward_events(self, name: str, route: str, body: dict[str, Any],
                       cancelled: Cancelled = None) -> Iterator[dict[str, Any]]:
        target = self.target(name)
        payload = self._forward_body(target, body)
        payload["stream"] = True
        finished = False
        events = Transport(target.provider).post_events(route, payload, model=target.model, cancelled=cancelled)
        try:
            for event in events:
                finished = finished or any(c.get("finish_reason") for c in event.get("choices") or [])
                yield event
        except IncompleteStream:
            if not finished:
                raise
        finally:
            events.close()
