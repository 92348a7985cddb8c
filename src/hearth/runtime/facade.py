"""``Runtime``: the one service object the CLI uses in-process and the server wraps in HTTP. Both
see the same methods and the same wire types (``hearth.api.types``).

It is a facade: which backend answers a name (a remote provider for ``PROVIDER/MODEL``, else the
local models) is decided once, in ``_backend``; local models are ``local.LocalModels`` (loading in
``loader.py``, prompts in ``prompt/``, responses in ``generation.py``); the user's models are
``library.ModelLibrary``; ``hearth ps`` is ``status.py``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
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
    Options,
    ProcessResponse,
    ProgressFn,
    ShowResponse,
    no_progress,
)
from hearth.errors import InvalidRequest
from hearth.names import ModelName
from hearth.runtime.library import ModelLibrary
from hearth.runtime.loaded import Adapters, Cancelled, PromptSetup
from hearth.runtime.loader import ModelLoader
from hearth.runtime.local import LocalModels
from hearth.store import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.providers.remote import RemoteModels
    from hearth.runtime.backend import Backend


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
        self.loader = ModelLoader(self.store, self.scheduler, isolated=isolated, serving=serving,
                                  num_parallel=num_parallel)
        self.local = LocalModels(self.store, self.loader)
        self.library = ModelLibrary(self.store, self.scheduler, self.local)

    # -- which backend answers a name -------------------------------------------------------------

    @functools.cached_property
    def remote(self) -> RemoteModels:
        from hearth.providers.remote import RemoteModels

        return RemoteModels()

    def is_remote(self, name: str) -> bool:
        # A name without a slash is local without reading the provider list.
        return "/" in name and self.remote.owns(name)

    def _backend(self, name: str, adapters: Adapters = ()) -> Backend:
        """``self.remote`` or ``self.local`` (``backend.Backend``): the one place that asks."""
        if not self.is_remote(name):
            return self.local
        if adapters:
            raise InvalidRequest("LoRA adapters apply to local models only")
        return self.remote

    def _local_only(self, name: str, what: str) -> LocalModels:
        if self.is_remote(name):
            raise InvalidRequest(f"{what} needs a local model; '{name}' runs at a remote provider")
        return self.local

    # -- generation ---------------------------------------------------------------------------------

    def generate(self, request: GenerateRequest, cancelled: Cancelled = None,
                 adapters: Adapters = ()) -> Iterator[GenerateResponse]:
        # A generator, so that every error (a missing model too) comes with the first chunk.
        yield from self._backend(request.model, adapters).generate(request, cancelled, adapters)

    def chat(self, request: ChatRequest, cancelled: Cancelled = None,
             adapters: Adapters = ()) -> Iterator[ChatResponse]:
        yield from self._backend(request.model, adapters).chat(request, cancelled, adapters)

    def count_chat_tokens(self, request: ChatRequest) -> int:
        """How many prompt tokens a chat would read (Anthropic's count_tokens); local models only."""
        return self._local_only(request.model, "counting tokens").count_chat_tokens(request)

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        return self._backend(request.model).embed(request)

    def tokenize(self, model_name: str, text: str, options: Options | None = None,
                 keep_alive: Any = None) -> list[int]:
        return self._local_only(model_name, "tokenize").tokenize(model_name, text, options, keep_alive)

    def detokenize(self, model_name: str, tokens: list[int], options: Options | None = None,
                   keep_alive: Any = None) -> str:
        return self._local_only(model_name, "detokenize").detokenize(model_name, tokens, options,
                                                                     keep_alive)

    def load_file(self, path: Path, options: Options, adapters: Adapters = ()) -> PromptSetup:
        """The raw engine on a GGUF file outside the store (``hearth generate -m``)."""
        return self.loader.load_file(path, options, adapters)

    def generate_tokens(self, setup: PromptSetup, prompt: str, options: Options,
                        fmt: Any = None) -> Iterator[GenerateResponse]:
        return self.local.generate_tokens(setup, prompt, options, fmt)

    # -- models -------------------------------------------------------------------------------------

    def get_model(self, name: str) -> StoredModel:
        return self._backend(name).describe(name)

    def show(self, name: str) -> ShowResponse:
        return self._backend(name).show(name)

    def ensure_model(self, name: str, progress: ProgressFn = no_progress, *,
                     accept_license: bool = False,
                     ask: Callable[[str], bool] | None = None) -> StoredModel:
        if self.is_remote(name):
            return self.remote.describe(name)  # type: ignore[return-value]
        return self.library.ensure(name, progress, accept_license=accept_license, ask=ask)

    def pull(self, name: str, progress: ProgressFn = no_progress, **options: Any) -> StoredModel:
        return self.library.pull(name, progress, **options)

    def create(self, name: str, **options: Any) -> StoredModel:
        """``library.ModelLibrary.create``. Its ``sources`` (``modelfile.Sources``) defaults to
        ``LOCAL_FILES``, for the user's own process; the server passes ``STORE_ONLY``."""
        return self.library.create(name, **options)

    def push(self, name: str, progress: ProgressFn = no_progress, **options: Any) -> ModelName:
        return self.library.push(name, progress, **options)

    def list_models(self) -> ListResponse:
        return self.library.list_models()

    def copy(self, source: str, destination: str) -> StoredModel:
        return self.library.copy(source, destination)

    def delete(self, name: str) -> list[str]:
        return self.library.delete(name)

    # -- what hearth knows about models, and tools on the store ------------------------------------
    # (runtime/facts.py, licenses/, interop/, quality.py: the CLI asks here, never below)

    def describe_license(self, target: str) -> dict[str, Any]:
        from hearth.runtime.facts import describe_license

        return describe_license(self.store, target)

    def license_policy(self) -> Any:
        """The HEARTH_LICENSE_POLICY in force (None without one); raises LicensePolicyError."""
        from hearth.licenses.policy import current_policy

        return current_policy()

    def license_policy_warning(self) -> str:
        from hearth.licenses.policy import current_policy, unrecognised_warning

        return unrecognised_warning(current_policy()) or ""

    def audit_licenses(self, *, commercial: bool = False) -> list[Any]:
        from hearth.licenses.audit import audit_models

        return audit_models(self.store, commercial=commercial)

    def fit(self, text: str, ctx: int | None = None, *, catalog: bool = False,
            n_parallel: int = 1) -> Any:
        from hearth.runtime.facts import fit_answer

        return fit_answer(self.store, text, ctx, catalog=catalog, n_parallel=n_parallel)

    def measure_quality(self, name: str, text: str, ctx: int, threads: int) -> Any:
        from hearth.runtime.quality import measure

        return measure(self.store, name, text, ctx, threads)

    def export(self, name: str, destination: str, *, force: bool = False,
               progress: ProgressFn = no_progress) -> Any:
        from hearth.interop.export import export_model

        return export_model(self.store, name, destination, force=force, progress=progress)

    def import_ollama(self, root: Path | None, progress: ProgressFn = no_progress, *,
                      short_names: bool = False) -> tuple[Path, list[Any]]:
        """Import an Ollama store (``root``, or Ollama's default folder): (root, outcomes)."""
        from hearth.interop.ollama_import import default_ollama_dir, import_ollama_store

        root = root or default_ollama_dir()
        return root, import_ollama_store(self.store, root, progress, short_names=short_names)

    def prune(self) -> Any:
        return self.store.prune()

    # -- what is loaded -------------------------------------------------------------------------------

    def ps(self) -> ProcessResponse:
        from hearth.runtime.status import running_models

        return running_models(self.store, self.scheduler)

    def stop(self, name: str) -> int:
        """Unload a model now (or after its running requests)."""
        parsed = ModelName.parse(name)
        stopped = self.scheduler.stop(lambda slot: slot.name == parsed.short)
        if not stopped:
            self.get_model(name)  # a clear "not found" for unknown names
        return stopped

    def close(self) -> None:
        self.scheduler.close()
        self.loader.close()
