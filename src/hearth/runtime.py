"""The one service object: models in the store, loading, generation, pulls.

The CLI uses it in-process and the server wraps it in HTTP; both see the same methods and
the same wire types (``hearth.api.types``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    GenerateRequest,
    GenerateResponse,
    ListedModel,
    ListResponse,
    Message,
    ModelDetails,
    Options,
    ProgressFn,
    ShowResponse,
    no_progress,
)
from hearth.errors import InvalidRequest, ModelNotFound
from hearth.names import ModelName
from hearth.store import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.engine.llama_engine import EngineChunk, LlamaEngine
    from hearth.engine.settings import LoadSettings
    from hearth.gguf import GGUFInfo


@dataclass
class LoadedModel:
    key: tuple[Any, ...]
    name: str
    engine: LlamaEngine
    info: GGUFInfo
    template: str
    system: str | None
    parameters: Options
    messages: list[dict[str, Any]]


def now() -> datetime:
    return datetime.now(timezone.utc)


def options_from_parameters(params: dict[str, Any], model: str) -> Options:
    from pydantic import ValidationError

    try:
        return Options(**params)
    except ValidationError as exc:
        raise InvalidRequest(f"model '{model}' has invalid parameters: {exc.errors()[0]['msg']}") from exc


class Runtime:
    def __init__(self, store: ModelStore | None = None) -> None:
        self.store = store or ModelStore()
        self._loaded: LoadedModel | None = None

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
    ) -> StoredModel:
        from hearth.store.create import create_model

        if modelfile is None:
            if from_path is None:
                raise InvalidRequest("give a Modelfile or a GGUF file to create a model from")
            path = Path(from_path).expanduser().resolve()
            modelfile = f'FROM "{path}"\n'
        parsed = ModelName.parse(name)
        return create_model(self.store, parsed, modelfile, base_dir or Path.cwd(), progress, source)

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
        )

    def copy(self, source: str, destination: str) -> StoredModel:
        return self.store.copy(ModelName.parse(source), ModelName.parse(destination))

    def delete(self, name: str) -> list[str]:
        parsed = ModelName.parse(name)
        if self._loaded and self._loaded.name == parsed.short:
            self.unload()
        return self.store.delete(parsed)

    # -- loading --------------------------------------------------------------------------

    def _load(self, model: StoredModel, options: Options) -> tuple[LoadedModel, int]:
        from hearth.engine.llama_engine import LlamaEngine
        from hearth.engine.settings import LoadSettings
        from hearth.engine.templates import FALLBACK_CHAT_TEMPLATE
        from hearth.gguf import read_gguf

        params = options_from_parameters(model.parameters, model.name.short)
        merged = options.merged_over(params)
        info = read_gguf(model.model_path)
        settings = LoadSettings.from_options(merged, info.context_length)
        key = (model.model_layer.digest, settings)
        if self._loaded is not None and self._loaded.key == key:
            self._loaded.name = model.name.short
            self._loaded.template = model.template or info.chat_template or FALLBACK_CHAT_TEMPLATE
            self._loaded.system, self._loaded.parameters = model.system, params
            self._loaded.messages = model.messages
            return self._loaded, 0
        self.unload()
        engine = LlamaEngine.load(model.model_path, settings)
        self._loaded = LoadedModel(
            key=key,
            name=model.name.short,
            engine=engine,
            info=info,
            template=model.template or info.chat_template or FALLBACK_CHAT_TEMPLATE,
            system=model.system,
            parameters=params,
            messages=model.messages,
        )
        return self._loaded, engine.load_ns

    def load_file(self, path: Path, options: Options) -> LoadedModel:
        """The raw engine on a GGUF file outside the store (``hearth generate -m``)."""
        from hearth.engine.llama_engine import LlamaEngine
        from hearth.engine.settings import LoadSettings
        from hearth.engine.templates import FALLBACK_CHAT_TEMPLATE
        from hearth.gguf import read_gguf

        info = read_gguf(path)
        settings: LoadSettings = LoadSettings.from_options(options, info.context_length)
        self.unload()
        engine = LlamaEngine.load(path, settings)
        self._loaded = LoadedModel(
            key=(str(path), settings), name=path.name, engine=engine, info=info,
            template=info.chat_template or FALLBACK_CHAT_TEMPLATE, system=None,
            parameters=Options(), messages=[],
        )
        return self._loaded

    def unload(self) -> None:
        loaded, self._loaded = self._loaded, None
        if loaded is not None:
            loaded.engine.close()

    def close(self) -> None:
        self.unload()

    # -- generation -----------------------------------------------------------------------

    def _render(self, loaded: LoadedModel, messages: list[dict[str, Any]], tools=None,
                template: str | None = None) -> list[int]:
        from hearth.engine.templates import render_chat

        engine = loaded.engine
        text = render_chat(
            template or loaded.template,
            messages,
            add_generation_prompt=True,
            bos_token=engine.bos_text,
            eos_token=engine.eos_text,
            tools=tools,
        )
        # Templates that write the BOS token themselves must not get a second one.
        add_special = not (engine.bos_text and text.startswith(engine.bos_text))
        return engine.tokenize(text, add_special=add_special, parse_special=True)

    def _conversation(self, loaded: LoadedModel, messages: list[dict[str, Any]],
                      system: str | None = None) -> list[dict[str, Any]]:
        has_system = any(m.get("role") == "system" for m in messages)
        system_text = system if system is not None else loaded.system
        head = [{"role": "system", "content": system_text}] if system_text and not has_system else []
        return head + list(loaded.messages) + messages

    def generate(self, request: GenerateRequest) -> Iterator[GenerateResponse]:
        self._refuse_images(request.images)
        model = self.get_model(request.model)
        options = request.options or Options()
        loaded, load_ns = self._load(model, options)
        started = time.perf_counter_ns() - load_ns

        def make(text: str, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=request.model, created_at=now(), response=text, done=done, **timing)

        if not request.prompt and not request.system:
            yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                       load_duration=load_ns)
            return
        if request.raw:
            tokens = loaded.engine.tokenize(request.prompt, add_special=True, parse_special=False)
        else:
            messages = self._conversation(loaded, [{"role": "user", "content": request.prompt}], request.system)
            tokens = self._render(loaded, messages, template=request.template)
        yield from self._stream(loaded, options, tokens, request.format, started, load_ns, make)

    def chat(self, request: ChatRequest) -> Iterator[ChatResponse]:
        for message in request.messages:
            self._refuse_images(message.images)
        model = self.get_model(request.model)
        options = request.options or Options()
        loaded, load_ns = self._load(model, options)
        started = time.perf_counter_ns() - load_ns

        def make(text: str, done: bool = False, **timing: Any) -> ChatResponse:
            return ChatResponse(model=request.model, created_at=now(),
                                message=Message(role="assistant", content=text), done=done, **timing)

        if not request.messages:
            yield make("", True, done_reason="load", total_duration=time.perf_counter_ns() - started,
                       load_duration=load_ns)
            return
        messages = self._conversation(loaded, [m.model_dump(exclude_none=True) for m in request.messages])
        tokens = self._render(loaded, messages, tools=request.tools)
        yield from self._stream(loaded, options, tokens, request.format, started, load_ns, make)

    def generate_tokens(self, loaded: LoadedModel, prompt: str, options: Options,
                        fmt: Any = None) -> Iterator[GenerateResponse]:
        """Raw completion on an already loaded model, as ``hearth generate`` does."""
        tokens = loaded.engine.tokenize(prompt, add_special=True, parse_special=False)

        def make(text: str, done: bool = False, **timing: Any) -> GenerateResponse:
            return GenerateResponse(model=loaded.name, created_at=now(), response=text, done=done, **timing)

        yield from self._stream(loaded, options, tokens, fmt, time.perf_counter_ns(), 0, make)

    def _stream(self, loaded: LoadedModel, options: Options, tokens: list[int], fmt: Any,
                started: int, load_ns: int, make: Callable[..., Any]) -> Iterator[Any]:
        from hearth.engine.grammar import grammar_for_format
        from hearth.engine.settings import SamplingSettings

        sampling = SamplingSettings.from_options(options.merged_over(loaded.parameters))
        grammar = grammar_for_format(fmt)
        chunk: EngineChunk
        for chunk in loaded.engine.generate(tokens, sampling, grammar=grammar):
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
    ).to_text()
    return f"# Modelfile generated by \"hearth show\"\n# To build a new model from it: hearth create NAME -f Modelfile\n{text}"
