"""The user's models: list, pull (and pull-if-missing), create, push, copy, delete. Closed catalog
models get an explanation of how to reach them through a provider instead of "not found"."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hearth.api.types import ListResponse, ProgressFn, ProgressResponse, no_progress
from hearth.errors import InvalidRequest, ModelNotFound, StoreError
from hearth.modelfile import Modelfile, Sources
from hearth.names import ModelName
from hearth.runtime.local import LocalModels
from hearth.scheduler import Scheduler
from hearth.store import ModelStore, StoredModel


def name_for_file(path: str) -> str:
    """The model name a GGUF file gets when it is pulled or uploaded (``Foo-Q4_K_M.gguf`` ->
    ``foo:q4_k_m``)."""
    from hearth.hub.source_files import name_from_filename

    return name_from_filename(path).short


class ModelLibrary:
    def __init__(self, store: ModelStore, scheduler: Scheduler, local: LocalModels) -> None:
        self.store = store
        self.scheduler = scheduler
        self.local = local

    def list_models(self) -> ListResponse:
        from hearth.runtime.model_info import listed_model

        return ListResponse(models=[listed_model(m) for m in self.store.list()])

    def ensure(self, name: str, progress: ProgressFn = no_progress, *, accept_license: bool = False,
               ask: Callable[[str], bool] | None = None) -> StoredModel:
        """The stored model, pulled first when it is missing and a source knows it (the
        catalog, Hugging Face ``hf.co/...``, a registry ``HOST/NS/MODEL:TAG``)."""
        from hearth.catalog import find_tag
        from hearth.hub.pull import pullable_name

        parsed = ModelName.parse(name)
        try:
            return self.local.stored(parsed)
        except ModelNotFound:
            if find_tag(parsed) is None and not pullable_name(parsed):
                raise
        return self.pull(name, progress, accept_license=accept_license, ask=ask)

    def pull(self, name: str, progress: ProgressFn = no_progress, *, accept_license: bool = False,
             ask: Callable[[str], bool] | None = None, max_speed: float | None = None,
             cancelled: Callable[[], bool] | None = None, insecure: bool = False) -> StoredModel:
        """Pull a catalog name, ``hf.co/OWNER/REPO[:QUANT]``, a Hugging Face or .gguf URL, a
        local GGUF path or a registry name (``hub/pull.py``)."""
        from hearth.hub import pull_model
        from hearth.providers.closed_models import closed_model_error

        closed = closed_model_error(name)
        if closed is not None:
            raise closed
        installed = self._complete_in_store(name)
        if installed is not None:
            from hearth.licenses.enforce import enforce_policy

            # The license was settled when it was first pulled; the policy may have changed.
            enforce_policy(self.store, installed, action="pull")
            # Nothing to fetch: answer as a pull that found every layer, without asking the
            # source, which may be unreachable (offline, a registry that is down).
            progress(ProgressResponse(status="pulling manifest"))
            for layer in installed.manifest.layers:
                progress(ProgressResponse(status=f"pulling {layer.digest[7:19]}", digest=layer.digest,
                                          total=layer.size, completed=layer.size))
            progress(ProgressResponse(status="success"))
            return installed
        return pull_model(self.store, name, progress, accept_license=accept_license, ask=ask,
                          max_speed=max_speed, cancelled=cancelled, insecure=insecure)

    def _complete_in_store(self, text: str) -> StoredModel | None:
        """The stored model when ``text`` is a catalog or registry name whose manifest is in
        the store with every blob it lists, else None (then the pull runs as usual). A catalog
        tag that lists its file's digest must also match it: a changed entry is a new pull.
        Hugging Face names, URLs and files always go to their source: the file a name picks
        there can change."""
        from hearth.catalog import find_tag
        from hearth.hub import huggingface
        from hearth.hub.registry import is_registry_name
        from hearth.references import is_url, looks_like_path

        text = text.strip()
        if is_url(text) or looks_like_path(text) or huggingface.parse_reference(text) is not None:
            return None
        try:
            name = ModelName.parse(text)
        except InvalidRequest:
            return None
        if name.host in huggingface.SHORT_HOSTS:
            return None
        tag = find_tag(name)
        if tag is None and not is_registry_name(name):
            return None
        try:
            model = self.store.get(name)
            weights = model.model_layer.digest
        except (ModelNotFound, StoreError):
            return None
        blobs = self.store.blobs
        layers = [model.manifest.config, *model.manifest.layers]
        if not all(blobs.has(layer.digest) and blobs.size(layer.digest) == layer.size for layer in layers):
            return None
        wanted = tag.source.get("sha256") if tag is not None else None
        if wanted and weights != f"sha256:{wanted}":
            return None
        return model

    def create(self, name: str, *, modelfile: str | Modelfile | None = None,
               from_path: str | Path | None = None, base_dir: Path | None = None,
               progress: ProgressFn = no_progress, source: str = "Modelfile",
               quantize: str | None = None, allow_requantize: bool = False,
               sources: Sources = Sources.LOCAL_FILES) -> StoredModel:
        """``modelfile``: its text or a parsed ``Modelfile``. ``sources``: ``LOCAL_FILES`` for
        the user's own process (the CLI, the Python API); a server passes ``STORE_ONLY``, and
        then ``from_path`` and any path in the Modelfile are refused unread."""
        from hearth.modelfile import PATHS_REFUSED
        from hearth.runtime.create import create_model

        if modelfile is None:
            if from_path is None:
                raise InvalidRequest("give a Modelfile or a GGUF file to create a model from")
            if sources is not Sources.LOCAL_FILES:
                raise InvalidRequest(PATHS_REFUSED)
            path = Path(from_path).expanduser().resolve()
            modelfile = f'FROM "{path}"\n'
        return create_model(self.store, ModelName.parse(name), modelfile, base_dir, progress, source,
                            sources=sources, quantize=quantize, allow_requantize=allow_requantize)

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
