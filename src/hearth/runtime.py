"""The one service object: models in the store, loading, generation, pulls.

The CLI uses it in-process and the server wraps it in HTTP; both see the same methods and
the same wire types (``hearth.api.types``).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
    ListedModel,
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
from hearth.names import ModelName
from hearth.store import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.engine.chunks import EngineChunk
    from hearth.engine.settings import LoadSettings
    from hearth.gguf import GGUFInfo


@dataclass
class LoadedModel:
    """An engine the scheduler holds; shared by every name that points at the same weights."""

    engine: Any  # LocalBatchEngine, RunnerEngine or EmbeddingEngine
    info: GGUFInfo
    digest: str
    settings: LoadSettings
    size: int

    @property
    def load_ns(self) -> int:
        return self.engine.load_ns

    @property
    def n_parallel(self) -> int:
        return self.engine.n_parallel

    @property
    def alive(self) -> bool:
        return self.engine.alive

    def close(self) -> None:
        self.engine.close()


@dataclass
class PromptSetup:
    """What one request needs besides the engine: the name's template, system and defaults."""

    name: str
    loaded: LoadedModel
    template: str
    system: str | None
    parameters: Options
    messages: list[dict[str, Any]]


Cancelled = Callable[[], bool] | None
Adapters = tuple[tuple[str, float], ...]


def checked_adapters(adapters: Adapters, base: GGUFInfo) -> Adapters:
    """LoRA adapters given on the command line, each checked against the model first."""
    from hearth.gguf import read_gguf
    from hearth.gguf.adapters import validate_lora

    checked = []
    for path, scale in adapters:
        resolved = Path(path).expanduser().resolve()
        validate_lora(read_gguf(resolved), base)
        checked.append((str(resolved), float(scale)))
    return tuple(checked)
FOREVER = datetime(2318, 1, 1, tzinfo=timezone.utc)  # how Ollama shows "never expires"


def estimate_memory(info: GGUFInfo, settings: LoadSettings, n_parallel: int = 1) -> int:
    """Weights + f16 KV cache for every slot + a compute/runtime allowance, in bytes."""
    layers = info.block_count or 0
    heads = info.head_count or 1
    kv_heads = info.head_count_kv or heads
    width = info.embedding_length or 0
    kv_width = (width // heads) * kv_heads if heads else width
    kv_cache = 2 * settings.num_ctx * n_parallel * layers * kv_width * 2
    return info.file_size + kv_cache + 64 * 1024 * 1024


def now() -> datetime:
    return datetime.now(timezone.utc)


def options_from_parameters(params: dict[str, Any], model: str) -> Options:
    from pydantic import ValidationError

    try:
        return Options(**params)
    except ValidationError as exc:
        raise InvalidRequest(f"model '{model}' has invalid parameters: {exc.errors()[0]['msg']}") from exc


class Runtime:
    def __init__(self, store: ModelStore | None = None, *, isolated: bool = False,
                 num_parallel: int = 1) -> None:
        """``isolated``: each loaded model runs in a runner child process (the server);
        otherwise in this process (the CLI, the Python API). ``num_parallel``: requests one
        loaded model decodes together."""
        from hearth.scheduler import Scheduler

        self.store = store or ModelStore()
        self.scheduler = Scheduler()
        self.isolated = isolated
        self.num_parallel = num_parallel
        self._file_engines: list[Any] = []

    # -- the store ------------------------------------------------------------------------

    def get_model(self, name: str) -> StoredModel:
        return self.store.get(ModelName.parse(name))

    def ensure_model(self, name: str, progress: ProgressFn = no_progress) -> StoredModel:
        """The stored model, pulled first when it is missing and the catalog knows it."""
        from hearth.catalog import find_tag

        parsed = ModelName.parse(name)
        try:
            return self.store.get(parsed)
        except ModelNotFound:
            if find_tag(parsed) is None:
                raise
        return self.pull(name, progress)

    def pull(self, name: str, progress: ProgressFn = no_progress) -> StoredModel:
        from hearth.hub import pull_model

        return pull_model(self.store, ModelName.parse(name), progress)

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
        return ListResponse(models=[self._listed(m) for m in self.store.list()])

    def _listed(self, model: StoredModel) -> ListedModel:
        return ListedModel(
            name=model.name.short,
            model=model.name.short,
            modified_at=model.modified_at,
            size=model.size,
            digest=model.digest[7:],
            details=self._details(model),
        )

    @staticmethod
    def _details(model: StoredModel) -> ModelDetails:
        cfg = model.config
        family = cfg.get("model_family", "")
        return ModelDetails(
            parent_model=cfg.get("parent_model", ""),
            family=family,
            families=cfg.get("model_families") or ([family] if family else None),
            parameter_size=cfg.get("model_type", ""),
            quantization_level=cfg.get("file_type", ""),
        )

    def show(self, name: str) -> ShowResponse:
        from hearth.gguf import read_gguf

        model = self.get_model(name)
        info = read_gguf(model.model_path)
        params = model.parameters
        return ShowResponse(
            license="\n\n".join(model.licenses) or (info.license or ""),
            modelfile=_modelfile_text(model),
            parameters="\n".join(f"{k:<16} {v}" for k, vs in params.items() for v in _as_list(vs)),
            template=model.template or info.chat_template or "",
            system=model.system or "",
            details=self._details(model),
            messages=[Message(**m) for m in model.messages],
            model_info=info.summary(),
            modified_at=model.modified_at,
            adapters=[f"{path.name} (scale {scale:g})" for path, scale in model.adapters],
        )

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
        from hearth.gguf import read_gguf

        params = options_from_parameters(model.parameters, model.name.short)
        merged = options.merged_over(params)
        info = read_gguf(model.model_path)
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

                engine = RunnerEngine(path, settings, parallel)
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
            running.append(RunningModel(
                name=slot.name, model=slot.name, size=slot.size,
                digest=(stored.digest[7:] if stored else loaded.digest[7:]),
                details=self._details(stored) if stored else ModelDetails(),
                expires_at=expires, context_length=loaded.engine.context_length,
                num_parallel=loaded.n_parallel, in_use=slot.in_use, runner_pid=loaded.engine.pid,
            ))
        return ProcessResponse(models=running)

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
        model = self.get_model(model_name)
        with self._use(model, options or Options(), keep_alive) as (setup, _):
            return setup.loaded.engine.vocab.tokenize(text, add_special=True, parse_special=True)

    def detokenize(self, model_name: str, tokens: list[int], options: Options | None = None,
                   keep_alive: Any = None) -> str:
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


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _modelfile_text(model: StoredModel) -> str:
    """The Modelfile that would recreate this model (``hearth show --modelfile``)."""
    from hearth.modelfile import Modelfile

    text = Modelfile(
        from_=str(model.model_path),
        parameters=model.parameters,
        template=model.template,
        system=model.system,
        licenses=model.licenses,
        messages=model.messages,
        adapters=[(str(path), scale) for path, scale in model.adapters],
    ).to_text()
    return f"# Modelfile generated by \"hearth show\"\n# To build a new model from it: hearth create NAME -f Modelfile\n{text}"


def _renormalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else vector
