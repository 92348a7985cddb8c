"""The one service object: models in the store, loading, generation, pulls.

The CLI uses it in-process and the server wraps it in HTTP; both see the same methods and
the same wire types (``hearth.api.types``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ListResponse,
    Message,
    ModelDetails,
    Options,
    ProcessResponse,
    ProgressFn,
    RunningModel,
    ShowResponse,
    no_progress,
)
from hearth.config import parse_duration
from hearth.errors import HearthError, InvalidRequest, ModelNotFound
from hearth.loading import (
    FOREVER,
    Adapters,
    Cancelled,
    LoadedModel,
    PromptSetup,
    checked_adapters,
    estimate_memory,
    options_from_parameters,
)
from hearth.model_info import listed_model, model_details, show_response
from hearth.names import ModelName
from hearth.store import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.engine.chunks import EngineChunk
    from hearth.gguf import GGUFInfo
    from hearth.providers.remote import RemoteModels


def now() -> datetime:
    return datetime.now(timezone.utc)


class Runtime:
    def __init__(self, store: ModelStore | None = None, *, isolated: bool = False,
                 num_parallel: int = 1, serving: bool = False) -> None:
        """``isolated``: each loaded model runs in a runner child process (the server, the
        Python API), so a crash in llama.cpp fails requests instead of killing this process;
        otherwise in this process (the CLI, which guards itself with a fork: cli/crash_guard.py).
        ``num_parallel``: requests one loaded model decodes together. ``serving``: the license
        policy is checked for serving, not for running."""
        from hearth.scheduler import Scheduler

        self.store = store or ModelStore()
        self.scheduler = Scheduler()
        self.isolated = isolated
        self.serving = serving
        self.num_parallel = num_parallel
        self._file_engines: list[Any] = []
        self._infos: dict[str, GGUFInfo] = {}

    # -- remote models (PROVIDER/MODEL, see hearth.providers) ----------------------------

    @functools.cached_property
    def remote(self) -> RemoteModels:
        from hearth.providers.remote import RemoteModels

        return RemoteModels()

    def is_remote(self, name: str) -> bool:
        # A name without a slash is local without reading the provider list.
        return "/" in name and self.remote.owns(name)

    def _local_only(self, name: str, what: str) -> None:
        if self.is_remote(name):
            raise InvalidRequest(f"{what} needs a local model; '{name}' runs at a remote provider")

    # -- the store ------------------------------------------------------------------------

    def get_model(self, name: str) -> StoredModel:
        if self.is_remote(name):
            return self.remote.describe(name)  # type: ignore[return-value]
        return self._stored(ModelName.parse(name))

    def _stored(self, parsed: ModelName) -> StoredModel:
        """The stored model; a closed catalog name (gpt-4o) that is not stored gets an
        explanation of how to reach it through a provider instead of "not found"."""
        try:
            return self.store.get(parsed)
        except ModelNotFound:
            from hearth.catalog import closed_model_error

            closed = closed_model_error(parsed)
            if closed is not None:
                raise closed from None
            raise

    def ensure_model(self, name: str, progress: ProgressFn = no_progress, *,
                     accept_license: bool = False,
                     ask: Callable[[str], bool] | None = None) -> StoredModel:
        """The stored model, pulled first when it is missing and a source knows it (the
        catalog, Hugging Face ``hf.co/...``, a registry ``HOST/NS/MODEL:TAG``)."""
        from hearth.catalog import find_tag
        from hearth.hub.pull import pullable_name

        if self.is_remote(name):
            return self.remote.describe(name)  # type: ignore[return-value]
        parsed = ModelName.parse(name)
        try:
            return self._stored(parsed)
        except ModelNotFound:
            if find_tag(parsed) is None and not pullable_name(parsed):
                raise
        return self.pull(name, progress, accept_license=accept_license, ask=ask)

    def pull(self, name: str, progress: ProgressFn = no_progress, *, accept_license: bool = False,
             ask: Callable[[str], bool] | None = None, max_speed: float | None = None,
             cancelled: Callable[[], bool] | None = None, insecure: bool = False) -> StoredModel:
        """Pull a catalog name, ``hf.co/OWNER/REPO[:QUANT]``, a Hugging Face or .gguf URL, a
        local GGUF path or a registry name (``hub/pull.py``)."""
        from hearth.catalog import closed_model_error
        from hearth.hub import pull_model

        closed = closed_model_error(name)
        if closed is not None:
            raise closed

        return pull_model(self.store, name, progress, accept_license=accept_license, ask=ask,
                          max_speed=max_speed, cancelled=cancelled, insecure=insecure)

    def create(
        self,
        name: str,
        *,
        modelfile: str | None = None,
        from_path: str | Path | None = None,
        base_dir: Path | None = None,
        progress: ProgressFn = no_progress,
        source: str = "Modelfile",
        quantize: str | None = None,
        allow_requantize: bool = False,
    ) -> StoredModel:
        from hearth.store.create import create_model

        if modelfile is None:
            if from_path is None:
                raise InvalidRequest("give a Modelfile or a GGUF file to create a model from")
            path = Path(from_path).expanduser().resolve()
            modelfile = f'FROM "{path}"\n'
        parsed = ModelName.parse(name)
        return create_model(self.store, parsed, modelfile, base_dir or Path.cwd(), progress, source,
                            quantize=quantize, allow_requantize=allow_requantize)

    def list_models(self) -> ListResponse:
        return ListResponse(models=[listed_model(m) for m in self.store.list()])

    def show(self, name: str) -> ShowResponse:
        if self.is_remote(name):
            return self.remote.show(name)
        return show_response(self.get_model(name))

    def push(self, name: str, progress: ProgressFn = no_progress, *, destination: str | None = None,
             insecure: bool = False) -> ModelName:
        """Upload a stored model to an OCI / Ollama registry (``hub/registry_push.py``)."""
        from hearth.hub.registry import push_model

        return push_model(self.store, ModelName.parse(name), progress, destination=destination,
                          insecure=insecure)

    def copy(self, source: str, destination: str) -> StoredModel:
        return self.store.copy(ModelName.parse(source), ModelName.parse(destination))

    def delete(self, name: str) -> list[str]:
        parsed = ModelName.parse(name)
        removed = self.store.delete(parsed)
        self.scheduler.stop(lambda slot: slot.name == parsed.short)
        return removed

    # -- loading --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _use(self, model: StoredModel, options: Options, keep_alive: Any = None,
             embedding: bool = False, extra_adapters: Adapters = ()) -> Iterator[tuple[PromptSetup, int]]:
        """Hold the model's engine for one request (loading it if needed): ``(setup, load_ns)``."""
        from hearth.engine.settings import LoadSettings
        from hearth.engine.templates import FALLBACK_CHAT_TEMPLATE
        from hearth.licenses.enforce import enforce_policy

        # HEARTH_LICENSE_POLICY: a model whose license the policy forbids is never loaded.
        enforce_policy(self.store, model, action="serve" if self.serving else "run")

        params = options_from_parameters(model.parameters, model.name.short)
        merged = options.merged_over(params)
        info = self._model_info(model)
        adapters = tuple((str(path), scale) for path, scale in model.adapters)
        adapters += checked_adapters(extra_adapters, info)
        settings = LoadSettings.from_options(merged, info.context_length, () if embedding else adapters)
        parallel = 1 if embedding else self.num_parallel
        key = (model.model_layer.digest, settings, embedding, parallel)
        path = model.model_path

        def load() -> LoadedModel:
            if embedding:
                from hearth.engine.embedding import EmbeddingEngine

                engine: Any = EmbeddingEngine.load(path, settings, pooling_type=info.pooling_type)
            elif self.isolated:
                from hearth.engine.runner_client import RunnerEngine

                engine = RunnerEngine(path, settings, parallel, label=model.name.short)
            else:
                from hearth.engine.local_engine import LocalBatchEngine

                engine = LocalBatchEngine(path, settings, parallel)
            return LoadedModel(engine=engine, info=info, digest=model.model_layer.digest,
                               settings=settings, size=estimate)

        estimate = estimate_memory(info, settings, parallel)
        seconds = None if keep_alive is None else parse_duration(keep_alive)
        with self.scheduler.use(key, model.name.short, estimate, load, seconds) as (loaded, load_ns):
            setup = PromptSetup(
                name=model.name.short,
                loaded=loaded,
                template=model.template or info.chat_template or FALLBACK_CHAT_TEMPLATE,
                system=model.system,
                parameters=params,
                messages=model.messages,
            )
            yield setup, load_ns

    def load_file(self, path: Path, options: Options, adapters: Adapters = ()) -> PromptSetup:
        """The raw engine on a GGUF file outside the store (``hearth generate -m``)."""
        from hearth.engine.local_engine import LocalBatchEngine
        from hearth.engine.settings import LoadSettings
        from hearth.engine.templates import FALLBACK_CHAT_TEMPLATE
        from hearth.gguf import read_gguf

        info = read_gguf(path)
        settings = LoadSettings.from_options(options, info.context_length, checked_adapters(adapters, info))
        engine = LocalBatchEngine(path, settings, 1)
        self._file_engines.append(engine)
        loaded = LoadedModel(engine=engine, info=info, digest="", settings=settings,
                             size=estimate_memory(info, settings))
        return PromptSetup(name=path.name, loaded=loaded,
                           template=info.chat_template or FALLBACK_CHAT_TEMPLATE, system=None,
                           parameters=Options(), messages=[])

    def _model_info(self, model: StoredModel) -> GGUFInfo:
        """The GGUF header of a stored model, read once: blobs never change under their digest."""
        from hearth.gguf import read_gguf

        digest = model.model_layer.digest
        info = self._infos.get(digest)
        if info is None:
            info = self._infos[digest] = read_gguf(model.model_path)
        return info

    def ps(self) -> ProcessResponse:
        running = []
        by_digest = {m.model_layer.digest: m for m in self._safe_models()}
        for slot in self.scheduler.slots():
            loaded: LoadedModel = slot.loaded
            stored = by_digest.get(loaded.digest)
            expires = None
            if slot.expires_at != float("inf"):
                expires = datetime.fromtimestamp(slot.expires_at, tz=timezone.utc)
            elif slot.in_use == 0:
                expires = FOREVER
            entry = RunningModel(
                name=slot.name, model=slot.name, size=slot.size,
                digest=(stored.digest[7:] if stored else loaded.digest[7:]),
                details=model_details(stored) if stored else ModelDetails(),
                expires_at=expires, context_length=loaded.engine.context_length,
                num_parallel=loaded.n_parallel, in_use=slot.in_use, runner_pid=loaded.engine.pid,
            )
            running.append(_merge_instances(running, entry))
        # One line per model, as in Ollama, however many instances (generation, embedding) it has.
        return ProcessResponse(models=list({m.name: m for m in running}.values()))

    def _safe_models(self) -> list[StoredModel]:
        try:
            return self.store.list()
        except HearthError:
            return []

    def stop(self, name: str) -> int:
        """Unload a model now (or after its running requests)."""
        parsed = ModelName.parse(name)
        stopped = self.scheduler.stop(lambda slot: slot.name == parsed.short)
        if not stopped:
            self.get_model(name)  # a clear "not found" for unknown names
        return stopped

    def close(self) -> None:
        self.scheduler.close()
        for engine in self._file_engines:
            engine.close()
        self._file_engines.clear()

    # -- generation -----------------------------------------------------------------------

    def _render(self, setup: PromptSetup, messages: list[dict[str, Any]], tools=None,
                template: str | None = None) -> list[int]:
        from hearth.engine.templates import render_chat

        engine = setup.loaded.engine.vocab
        text = render_chat(
            template or setup.template,
            messages,
            add_generation_prompt=True,
            bos_token=engine.bos_text,
            eos_token=engine.eos_text,
            tools=tools,
        )
        # Templates that write the BOS token themselves must not get a second one.
        add_special = not (engine.bos_text and text.startswith(engine.bos_text))
        return engine.tokenize(text, add_special=add_special, parse_special=True)

    @staticmethod
    def _conversation(setup: PromptSetup, messages: list[dict[str, Any]],
                      system: str | None = None) -> list[dict[str, Any]]:
        has_system = any(m.get("role") == "system" for m in messages)
        system_text = system if system is not None else setup.system
        head = [{"role": "system", "content": system_text}] if system_text and not has_system else []
        return head + list(setup.messages) + messages

    def generate(self, request: GenerateRequest, cancelled: Cancelled = None,
                 adapters: Adapters = ()) -> Iterator[GenerateResponse]:
        if self.is_remote(request.model):
            if adapters:
                raise InvalidRequest("LoRA adapters apply to local models only")
            yield from self.remote.generate(request, cancelled)
            return
        self._refuse_images(request.images)
        model = self.get_model(request.model)
        options = request.options or Options()
        started = time.perf_counter_ns()

        def make(text: str, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=request.model, created_at=now(), response=text, done=done, **timing)

        with self._use(model, options, request.keep_alive, extra_adapters=adapters) as (setup, load_ns):
            if not request.prompt and not request.system:
                yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                           load_duration=load_ns)
                return
            if request.suffix:
                fim = setup.loaded.engine.vocab.fill_in_middle(request.prompt, request.suffix)
                if fim is None:
                    raise InvalidRequest(f"model '{request.model}' does not support insert (suffix): "
                                         "it has no fill-in-the-middle tokens")
                tokens = fim
            elif request.raw:
                tokens = setup.loaded.engine.vocab.tokenize(request.prompt, add_special=True,
                                                            parse_special=False)
            else:
                messages = self._conversation(setup, [{"role": "user", "content": request.prompt}],
                                              request.system)
                tokens = self._render(setup, messages, template=request.template)
            yield from self._stream(setup, options, tokens, request.format, started, load_ns, make, cancelled)

    def chat(self, request: ChatRequest, cancelled: Cancelled = None,
             adapters: Adapters = ()) -> Iterator[ChatResponse]:
        if self.is_remote(request.model):
            if adapters:
                raise InvalidRequest("LoRA adapters apply to local models only")
            yield from self.remote.chat(request, cancelled)
            return
        for message in request.messages:
            self._refuse_images(message.images)
        model = self.get_model(request.model)
        options = request.options or Options()
        started = time.perf_counter_ns()

        def make(text: str, done: bool = False, **timing: Any) -> ChatResponse:
            return ChatResponse(model=request.model, created_at=now(),
                                message=Message(role="assistant", content=text), done=done, **timing)

        with self._use(model, options, request.keep_alive, extra_adapters=adapters) as (setup, load_ns):
            if not request.messages:
                yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                           load_duration=load_ns)
                return
            messages = self._conversation(setup, [m.model_dump(exclude_none=True) for m in request.messages])
            tokens = self._render(setup, messages, tools=request.tools)
            yield from self._stream(setup, options, tokens, request.format, started, load_ns, make, cancelled)

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        if self.is_remote(request.model):
            return self.remote.embed(request)
        model = self.get_model(request.model)
        # An empty input only loads the model, as in Ollama.
        texts = ([request.input] if request.input else []) if isinstance(request.input, str) else list(request.input)
        started = time.perf_counter_ns()
        options = request.options or Options()
        with self._use(model, options, request.keep_alive, embedding=True) as (setup, load_ns):
            vectors, count = setup.loaded.engine.embed(texts, truncate=request.truncate) if texts else ([], 0)
        if request.dimensions:
            vectors = [_renormalize(v[: request.dimensions]) for v in vectors]
        return EmbedResponse(model=request.model, embeddings=vectors, prompt_eval_count=count,
                             total_duration=time.perf_counter_ns() - started, load_duration=load_ns)

    def tokenize(self, model_name: str, text: str, options: Options | None = None,
                 keep_alive: Any = None) -> list[int]:
        self._local_only(model_name, "tokenize")
        model = self.get_model(model_name)
        with self._use(model, options or Options(), keep_alive) as (setup, _):
            return setup.loaded.engine.vocab.tokenize(text, add_special=True, parse_special=True)

    def detokenize(self, model_name: str, tokens: list[int], options: Options | None = None,
                   keep_alive: Any = None) -> str:
        self._local_only(model_name, "detokenize")
        model = self.get_model(model_name)
        with self._use(model, options or Options(), keep_alive) as (setup, _):
            vocab = setup.loaded.engine.vocab
            bad = [t for t in tokens if not 0 <= t < vocab.size]
            if bad:
                raise InvalidRequest(f"token ids out of range for this model (0..{vocab.size - 1}): {bad[:5]}")
            return vocab.detokenize(tokens)

    def generate_tokens(self, setup: PromptSetup, prompt: str, options: Options,
                        fmt: Any = None) -> Iterator[GenerateResponse]:
        """Raw completion on an already loaded file, as ``hearth generate`` does."""
        tokens = setup.loaded.engine.vocab.tokenize(prompt, add_special=True, parse_special=False)

        def make(text: str, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=setup.name, created_at=now(), response=text, done=done, **timing)

        yield from self._stream(setup, options, tokens, fmt, time.perf_counter_ns(), 0, make, None)

    def _stream(self, setup: PromptSetup, options: Options, tokens: list[int], fmt: Any,
                started: int, load_ns: int, make: Callable[..., Any], cancelled: Cancelled) -> Iterator[Any]:
        from hearth.engine.grammar import grammar_for_format
        from hearth.engine.settings import SamplingSettings

        sampling = SamplingSettings.from_options(options.merged_over(setup.parameters))
        grammar = grammar_for_format(fmt)
        chunk: EngineChunk
        for chunk in setup.loaded.engine.generate(tokens, sampling, grammar=grammar, cancelled=cancelled):
            if not chunk.done:
                yield make(chunk.text)
                continue
            stats = chunk.stats
            assert stats is not None
            yield make(
                chunk.text,
                True,
                done_reason=chunk.done_reason,
                total_duration=time.perf_counter_ns() - started,
                load_duration=load_ns,
                prompt_eval_count=stats.prompt_evaluated,
                prompt_eval_duration=stats.prompt_eval_ns,
                prompt_cache_count=stats.prompt_cached,
                eval_count=stats.eval_count,
                eval_duration=stats.eval_ns,
            )

    @staticmethod
    def _refuse_images(images: list[str] | None) -> None:
        if images:
            raise InvalidRequest("this model does not support images (it is a text-only model)")


def _merge_instances(seen: list[RunningModel], entry: RunningModel) -> RunningModel:
    """``entry`` combined with an earlier instance of the same model: memory and requests add
    up, the later expiry counts, and the generating instance's context and runner are shown."""
    earlier = next((m for m in reversed(seen) if m.name == entry.name), None)
    if earlier is None:
        return entry
    main, other = (entry, earlier) if entry.num_parallel > earlier.num_parallel else (earlier, entry)
    expiries = [m.expires_at for m in (earlier, entry) if m.expires_at is not None]
    return main.model_copy(update={
        "size": earlier.size + entry.size, "in_use": earlier.in_use + entry.in_use,
        "expires_at": max(expiries) if expiries else None,
        "runner_pid": main.runner_pid or other.runner_pid,
    })


def _renormalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
