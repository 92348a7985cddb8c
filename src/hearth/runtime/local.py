"""The local backend: models in the store, run by llama.cpp. The same methods as the remote
backend (``providers.remote.RemoteModels``), so the runtime asks "remote or local?" once.

A request becomes a conversation (``prompt/conversation.py``), tokens, and an engine's chunks
(``loader.use`` holds the engine), and those become wire responses (``generation.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    Message,
    Options,
    ShowResponse,
)
from hearth.config import parse_duration
from hearth.errors import InvalidRequest, ModelNotFound
from hearth.names import ModelName
from hearth.prompt.context import answer_room, fit_chat
from hearth.prompt.conversation import assemble, render_prompt
from hearth.runtime.generation import as_delta, now, stream_responses
from hearth.runtime.loaded import Adapters, Cancelled, PromptSetup
from hearth.runtime.loader import ModelLoader
from hearth.runtime.reply_plan import plan_for_chat, plan_reply, special_token_of, wire_calls
from hearth.store import ModelStore, StoredModel


class LocalModels:
    def __init__(self, store: ModelStore, loader: ModelLoader) -> None:
        self.store = store
        self.loader = loader

    # -- what a name is -------------------------------------------------------------------------

    def describe(self, name: str) -> StoredModel:
        return self.stored(ModelName.parse(name))

    def stored(self, parsed: ModelName) -> StoredModel:
        """The stored model; a closed catalog name (gpt-4o) that is not stored gets an
        explanation of how to reach it through a provider instead of "not found"."""
        try:
            return self.store.get(parsed)
        except ModelNotFound:
            from hearth.providers.closed_models import closed_model_error

            closed = closed_model_error(parsed)
            if closed is not None:
                raise closed from None
            raise

    def show(self, name: str) -> ShowResponse:
        from hearth.runtime.model_info import show_response

        return show_response(self.describe(name))

    # -- generation -----------------------------------------------------------------------------

    @staticmethod
    def _conversation(setup: PromptSetup, messages: list[dict[str, Any]],
                      system: str | None = None) -> list[dict[str, Any]]:
        return assemble(messages, system=system if system is not None else setup.system,
                        preset=setup.messages)

    def generate(self, request: GenerateRequest, cancelled: Cancelled = None,
                 adapters: Adapters = ()) -> Iterator[GenerateResponse]:
        refuse_images(request.images)
        model = self.describe(request.model)
        options = request.options or Options()
        started = time.perf_counter_ns()

        def make(piece: Any, done: bool = False, **timing: Any) -> GenerateResponse:
            delta = as_delta(piece)
            return GenerateResponse(model=request.model, created_at=now(), response=delta.content,
                                    thinking=delta.thinking or None, done=done, **timing)

        if not request.prompt and not request.system and unloads_now(request.keep_alive):
            yield self._unload(model, make, started)
            return
        with self.loader.use(model, options, request.keep_alive, extra_adapters=adapters,
                             cancelled=cancelled) as (setup, load_ns):
            if not request.prompt and not request.system:
                yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                           load_duration=load_ns)
                return
            vocab = setup.loaded.engine.vocab
            template = request.template or setup.template
            plan = plan_reply(request.model, template, tools=None, think=request.think)
            prompt_text = request.prompt
            if request.suffix:
                tokens = vocab.fill_in_middle(request.prompt, request.suffix)
                if tokens is None:
                    raise InvalidRequest(f"model '{request.model}' does not support insert (suffix): "
                                         "it has no fill-in-the-middle tokens")
            elif request.raw:
                # A hand-formatted prompt's <|im_start|> is the token, as in Ollama and llama-cli.
                tokens = vocab.tokenize(request.prompt, add_special=True, parse_special=True)
            else:
                messages = self._conversation(setup, [{"role": "user", "content": request.prompt}],
                                              request.system)
                prompt_text, tokens = render_prompt(template, messages, vocab, extra=plan.template_kwargs)
            if request.context:
                # Ollama's (deprecated) conversation memory: an earlier exchange's tokens first.
                bad = [t for t in request.context if not 0 <= t < vocab.size]
                if bad:
                    raise InvalidRequest(f"context holds token ids out of range for this model: {bad[:5]}")
                tokens = list(request.context) + tokens
            parser = plan.parser(prompt_text) if plan.keep_special else None
            yield from stream_responses(setup, options, tokens, request.format, started, load_ns,
                                        make, cancelled, parser=parser, keep_special=plan.keep_special)

    def chat(self, request: ChatRequest, cancelled: Cancelled = None,
             adapters: Adapters = ()) -> Iterator[ChatResponse]:
        for message in request.messages:
            refuse_images(message.images)
        model = self.describe(request.model)
        options = request.options or Options()
        started = time.perf_counter_ns()

        calls_so_far = 0

        def make(piece: Any, done: bool = False, **timing: Any) -> ChatResponse:
            nonlocal calls_so_far
            delta = as_delta(piece)
            calls = wire_calls(delta, calls_so_far)
            calls_so_far += len(calls or ())
            message = Message(role="assistant", content=delta.content, thinking=delta.thinking or None,
                              tool_calls=calls)
            return ChatResponse(model=request.model, created_at=now(), message=message, done=done, **timing)

        if not request.messages and unloads_now(request.keep_alive):
            yield self._unload(model, make, started)
            return
        with self.loader.use(model, options, request.keep_alive, extra_adapters=adapters,
                             cancelled=cancelled) as (setup, load_ns):
            if not request.messages:
                yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                           load_duration=load_ns)
                return
            plan = plan_for_chat(request.model, setup.template, request)
            messages = self._conversation(setup, template_messages(request.messages))
            vocab = setup.loaded.engine.vocab
            context = setup.loaded.engine.context_length
            rendered: list[str] = [""]

            def render(kept: list[dict[str, Any]]) -> list[int]:
                # Every candidate ends with the same generation prompt, which is what the parser reads.
                rendered[0], tokens = render_prompt(setup.template, kept, vocab, tools=plan.tools,
                                                    extra=plan.template_kwargs)
                return tokens

            fitted = fit_chat(messages, render, context, truncate=request.truncate,
                              answer_tokens=answer_room(context, options.merged_over(setup.parameters).num_predict))
            parser = plan.parser(rendered[0]) if plan.keep_special else None
            grammar = plan.tool_grammar(special_token_of(vocab)) if request.format is None else None
            yield from stream_responses(setup, options, fitted.tokens, request.format, started, load_ns,
                                        make, cancelled, dropped_messages=fitted.dropped_messages,
                                        parser=parser, grammar=grammar, keep_special=plan.keep_special)

    def count_chat_tokens(self, request: ChatRequest) -> int:
        """The prompt tokens ``request`` would read (Anthropic's count_tokens), model loaded."""
        model = self.describe(request.model)
        with self.loader.use(model, request.options or Options(), request.keep_alive) as (setup, _):
            plan = plan_for_chat(request.model, setup.template, request)
            messages = self._conversation(setup, template_messages(request.messages))
            return len(render_prompt(setup.template, messages, setup.loaded.engine.vocab, tools=plan.tools,
                                     extra=plan.template_kwargs)[1])

    def _unload(self, model: StoredModel, make: Any, started: int) -> Any:
        """An empty request with keep_alive 0: Ollama's way to unload a model, every instance."""
        self.loader.unload(model)
        return make("", True, done_reason="unload", total_duration=time.perf_counter_ns() - started)

    def generate_tokens(self, setup: PromptSetup, prompt: str, options: Options,
                        fmt: Any = None) -> Iterator[GenerateResponse]:
        """Raw completion on an already loaded file, as ``hearth generate`` does."""
        tokens = setup.loaded.engine.vocab.tokenize(prompt, add_special=True, parse_special=True)

        def make(piece: Any, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=setup.name, created_at=now(), response=as_delta(piece).content,
                                    done=done, **timing)

        yield from stream_responses(setup, options, tokens, fmt, time.perf_counter_ns(), 0, make, None)

    # -- embeddings and tokens ------------------------------------------------------------------

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        model = self.describe(request.model)
        # An empty input only loads the model, as in Ollama.
        texts = ([request.input] if request.input else []) if isinstance(request.input, str) else list(request.input)
        empty = [i for i, text in enumerate(texts) if not text]
        if empty:
            # Nothing to read gives llama.cpp no token to pool: a request error, not a crash.
            raise InvalidRequest(f"input[{empty[0]}] is an empty string; empty strings cannot be embedded")
        started = time.perf_counter_ns()
        options = request.options or Options()
        with self.loader.use(model, options, request.keep_alive, embedding=True) as (setup, load_ns):
            vectors, count = setup.loaded.engine.embed(texts, truncate=request.truncate) if texts else ([], 0)
        if request.dimensions:
            vectors = [renormalize(v[: request.dimensions]) for v in vectors]
        return EmbedResponse(model=request.model, embeddings=vectors, prompt_eval_count=count,
                             total_duration=time.perf_counter_ns() - started, load_duration=load_ns)

    def tokenize(self, model_name: str, text: str, options: Options | None = None,
                 keep_alive: Any = None) -> list[int]:
        model = self.describe(model_name)
        with self.loader.use(model, options or Options(), keep_alive) as (setup, _):
            return setup.loaded.engine.vocab.tokenize(text, add_special=True, parse_special=True)

    def detokenize(self, model_name: str, tokens: list[int], options: Options | None = None,
                   keep_alive: Any = None) -> str:
        model = self.describe(model_name)
        with self.loader.use(model, options or Options(), keep_alive) as (setup, _):
            vocab = setup.loaded.engine.vocab
            bad = [t for t in tokens if not 0 <= t < vocab.size]
            if bad:
                raise InvalidRequest(f"token ids out of range for this model (0..{vocab.size - 1}): {bad[:5]}")
            return vocab.detokenize(tokens)


def template_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as templates read them: an assistant's thinking also as ``reasoning_content``,
    the name Qwen3's template reads (gpt-oss's reads ``thinking``)."""
    dumped = [m.model_dump(exclude_none=True) for m in messages]
    for message in dumped:
        if message.get("thinking"):
            message.setdefault("reasoning_content", message["thinking"])
    return dumped


def unloads_now(keep_alive: Any) -> bool:
    return keep_alive is not None and parse_duration(keep_alive) == 0


def refuse_images(images: list[str] | None) -> None:
    if images:
        raise InvalidRequest("this model does not support images (it is a text-only model)")


def renormalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
