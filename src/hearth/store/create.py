"""``hearth create``: build a model from a Modelfile (FROM a GGUF file or an existing model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import InvalidRequest, ModelNotFound
from hearth.names import ModelName
from hearth.store.importer import import_model_file, model_config
from hearth.store.manifests import Layer, MediaType
from hearth.store.models import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.modelfile import Modelfile


def create_model(
    store: ModelStore,
    name: ModelName,
    modelfile_text: str | Modelfile,
    base_dir: Path,
    progress: ProgressFn = no_progress,
    source: str = "Modelfile",
) -> StoredModel:
    from hearth.engine.templates import validate_template
    from hearth.gguf import read_gguf
    from hearth.modelfile import parse_modelfile, resolve_from

    if isinstance(modelfile_text, str):
        modelfile = parse_modelfile(modelfile_text, source=source)
    else:
        modelfile = modelfile_text
    if modelfile.adapters:
        raise InvalidRequest(f"{source}: ADAPTER is not supported by this version of hearth yet")
    if modelfile.template is not None:
        validate_template(modelfile.template)
    kind, path = resolve_from(modelfile, base_dir)
    inherited: dict[str, list[Layer]] = {}
    parent = ""
    params: dict = {}
    if kind == "file":
        assert path is not None
        if not path.is_file():
            raise InvalidRequest(f"{source} line {modelfile.from_line}: FROM file {path} does not exist")
        total = path.stat().st_size
        done = 0

        def on_bytes(count: int) -> None:
            nonlocal done
            done += count
            progress(ProgressResponse(status="copying model file", total=total, completed=done))

        progress(ProgressResponse(status="parsing GGUF"))
        model_layer, info = import_model_file(store, path, on_bytes)
        config_data = model_config(info, source=f"file:{path.name}")
    else:
        try:
            base = store.get(modelfile.from_)
        except ModelNotFound as exc:
            raise ModelNotFound(modelfile.from_, "pull it first or give FROM a .gguf file path") from exc
        parent = base.name.short
        model_layer = base.model_layer
        for layer in base.manifest.layers:
            inherited.setdefault(layer.media_type, []).append(layer)
        params = base.parameters
        info = read_gguf(base.model_path)
        config_data = dict(base.config) or model_config(info)
    config_data["parent_model"] = parent

    progress(ProgressResponse(status="creating layers"))
    layers = [model_layer]

    def text_layer(media_type: str, value: str | None) -> None:
        if value is not None:
            layers.append(store.layer_from_bytes(media_type, value.encode()))
        else:
            layers.extend(inherited.get(media_type, []))

    if modelfile.licenses:
        for text in modelfile.licenses:
            layers.append(store.layer_from_bytes(MediaType.LICENSE, text.encode()))
    else:
        layers.extend(inherited.get(MediaType.LICENSE, []))
    text_layer(MediaType.TEMPLATE, modelfile.template)
    text_layer(MediaType.SYSTEM, modelfile.system)
    params.update(modelfile.parameters)
    if params:
        layers.append(store.layer_from_bytes(MediaType.PARAMS, json.dumps(params).encode()))
    if modelfile.messages:
        layers.append(store.layer_from_bytes(MediaType.MESSAGES, json.dumps(modelfile.messages).encode()))
    else:
        layers.extend(inherited.get(MediaType.MESSAGES, []))
    progress(ProgressResponse(status="writing manifest"))
    model = store.save(name, config_data, layers)
    progress(ProgressResponse(status="success"))
    return model
