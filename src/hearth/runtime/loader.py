"""Loading a stored model for one request: the license policy, the model's parameters merged
under the request's options, LoRA adapters, the memory estimate, and the engine the factory
opens, held by the scheduler (loaded once, kept for its keep-alive, shared by every name that
points at the same weights)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import Options
from hearth.config import parse_duration
from hearth.errors import NotEnoughMemory
from hearth.runtime.loaded import (
    Adapters,
    LoadedModel,
    PromptSetup,
    checked_adapters,
    estimate_memory,
    options_from_parameters,
)

if TYPE_CHECKING:
    from hearth.gguf import GGUFInfo
    from hearth.scheduler import Scheduler
    from hearth.store import ModelStore, StoredModel


class ModelLoader:
    def __init__(self, store: ModelStore, scheduler: Scheduler, *, isolated: bool, serving: bool,
                 num_parallel: int) -> None:
        self.store = store
        self.scheduler = scheduler
        self.isolated = isolated
        self.serving = serving
        self.num_parallel = num_parallel
        self._infos: dict[str, GGUFInfo] = {}
        self._file_engines: list[Any] = []

    def model_info(self, model: StoredModel) -> GGUFInfo:
        """The GGUF header of a stored model, read once: blobs never change under their digest."""
        from hearth.gguf import read_gguf

        digest = model.model_layer.digest
        info = self._infos.get(digest)
        if info is None:
            info = self._infos[digest] = read_gguf(model.model_path)
        return info

    @contextlib.contextmanager
    def use(self, model: StoredModel, options: Options, keep_alive: Any = None,
            embedding: bool = False, extra_adapters: Adapters = (),
            cancelled: Any = None) -> Iterator[tuple[PromptSetup, int]]:
        """Hold the model's engine for one request (loading it if needed): ``(setup, load_ns)``.
        A request cancelled while it waits for the model leaves the queue."""
        from hearth.engine.factory import open_embedding_engine, open_engine
        from hearth.engine.settings import LoadSettings
        from hearth.licenses.enforce import enforce_policy
        from hearth.prompt.templates import FALLBACK_CHAT_TEMPLATE

        # HEARTH_LICENSE_POLICY: a model whose license the policy forbids is never loaded.
        enforce_policy(self.store, model, action="serve" if self.serving else "run")

        params = options_from_parameters(model.parameters, model.name.short)
        merged = options.merged_over(params)
        info = self.model_info(model)
        adapters = tuple((str(path), scale) for path, scale in model.adapters)
        adapters += checked_adapters(extra_adapters, info)
        settings = LoadSettings.from_options(merged, info.context_length, () if embedding else adapters)
        parallel = 1 if embedding else self.num_parallel
        key = (model.model_layer.digest, settings, embedding, parallel)
        path, label = model.model_path, model.name.short
        estimate = estimate_memory(info, settings, parallel)

        def load() -> LoadedModel:
            if embedding:
                engine: Any = open_embedding_engine(path, settings, isolated=self.isolated,
                                                    pooling_type=info.pooling_type, label=label)
            else:
                engine = open_engine(path, settings, isolated=self.isolated, n_parallel=parallel,
                                     label=label)
            return LoadedModel(engine=engine, info=info, digest=model.model_layer.digest,
                               settings=settings, size=estimate)

        seconds = None if keep_alive is None else parse_duration(keep_alive)
        try:
            held = self.scheduler.use(key, label, estimate, load, seconds, cancelled)
            loaded, load_ns = held.__enter__()
        except NotEnoughMemory as exc:
            raise with_smaller_context(exc, info, settings, parallel) from None
        with contextlib.ExitStack() as stack:
            stack.push(held)
            yield PromptSetup(
                name=label,
                loaded=loaded,
                template=model.template or info.chat_template or FALLBACK_CHAT_TEMPLATE,
                system=model.system,
                parameters=params,
                messages=model.messages,
            ), load_ns

    def unload(self, model: StoredModel) -> int:
        """Unload every loaded instance of the model's weights (any options, chat or
        embeddings), now or after their running requests; how many there were."""
        digest = model.model_layer.digest
        return self.scheduler.stop(lambda slot: slot.key[0] == digest)

    def load_file(self, path: Path, options: Options, adapters: Adapters = ()) -> PromptSetup:
        """The raw engine on a GGUF file outside the store (``hearth generate -m``), in this
        process (the CLI runs it inside its crash guard)."""
        from hearth.engine.factory import open_engine
        from hearth.engine.settings import LoadSettings
        from hearth.gguf import read_gguf
        from hearth.prompt.templates import FALLBACK_CHAT_TEMPLATE

        info = read_gguf(path)
        settings = LoadSettings.from_options(options, info.context_length, checked_adapters(adapters, info))
        engine = open_engine(path, settings, isolated=False)
        self._file_engines.append(engine)
        loaded = LoadedModel(engine=engine, info=info, digest="", settings=settings,
                             size=estimate_memory(info, settings))
        return PromptSetup(name=path.name, loaded=loaded,
                           template=info.chat_template or FALLBACK_CHAT_TEMPLATE, system=None,
                           parameters=Options(), messages=[])

    def close(self) -> None:
        for engine in self._file_engines:
            engine.close()
        self._file_engines.clear()


def with_smaller_context(exc: NotEnoughMemory, info: GGUFInfo, settings: Any, parallel: int) -> NotEnoughMemory:
    """The refusal, with the largest context window (halving from the asked one) that would fit."""
    import dataclasses

    num_ctx = settings.num_ctx // 2
    while num_ctx >= 512:
        smaller = dataclasses.replace(settings, num_ctx=num_ctx)
        if estimate_memory(info, smaller, parallel) <= exc.available:
            hint = f"; num_ctx {num_ctx} would fit (or use a smaller quantization, or unload other models)"
            break
        num_ctx //= 2
    else:
        hint = "; try a smaller quantization of the model (`hearth fit` shows what fits), or unload other models"
    return NotEnoughMemory(exc.message + hint, needed=exc.needed, available=exc.available)
