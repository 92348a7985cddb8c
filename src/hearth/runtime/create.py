"""``hearth create``: build a model from a Modelfile (FROM a GGUF file, an uploaded blob or an
existing model), optionally re-quantized, with LoRA adapters, template, system prompt,
parameters, messages and licenses as layers.

Where weights and adapters may come from is the caller's ``sources`` (``modelfile.Sources``):
the API passes ``STORE_ONLY``, and then no path is resolved, probed or read, here or below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import InvalidRequest, ModelNotFound
from hearth.modelfile import Sources
from hearth.names import ModelName
from hearth.store.importer import import_model_file, model_config
from hearth.store.manifests import Layer, MediaType
from hearth.store.models import ModelStore, StoredModel

if TYPE_CHECKING:
    from hearth.gguf import GGUFInfo
    from hearth.modelfile import Modelfile


def byte_progress(progress: ProgressFn, status: str, total: int | None) -> Any:
    done = 0

    def on_bytes(count: int) -> None:
        nonlocal done
        done += count
        progress(ProgressResponse(status=status, total=total, completed=done))

    return on_bytes


def create_model(
    store: ModelStore,
    name: ModelName,
    modelfile_text: str | Modelfile,
    base_dir: Path | None,
    progress: ProgressFn = no_progress,
    source: str = "Modelfile",
    *,
    sources: Sources,
    quantize: str | None = None,
    allow_requantize: bool = False,
) -> StoredModel:
    """``sources`` has no default: every caller says whether paths on this machine may be read
    (``LOCAL_FILES``, with relative ones under ``base_dir``) or not (``STORE_ONLY``)."""
    from hearth.gguf import read_gguf
    from hearth.modelfile import blob_reference, check_sources, parse_modelfile, resolve_from
    from hearth.prompt.templates import validate_template

    modelfile = parse_modelfile(modelfile_text, source=source) if isinstance(modelfile_text, str) else modelfile_text
    # Before anything else, so that a refused path is refused the same way every time.
    check_sources(modelfile, sources)
    if modelfile.template is not None:
        validate_template(modelfile.template)
    kind, path = resolve_from(modelfile, base_dir, sources)
    inherited: dict[str, list[Layer]] = {}
    parent = ""
    params: dict = {}
    adapter_scales: list[dict[str, Any]] = []
    if kind == "blob":
        _digest, path = _uploaded_blob(store, blob_reference(modelfile.from_) or "", "FROM")
    if kind in ("file", "blob"):
        assert path is not None
        if not path.is_file():
            raise InvalidRequest(f"{source} line {modelfile.from_line}: FROM file {path} does not exist")
        progress(ProgressResponse(status="parsing GGUF"))
        model_layer, info = import_model_file(
            store, path, byte_progress(progress, "copying model file", path.stat().st_size))
        config_data = model_config(info, source=f"file:{path.name}")
    else:
        try:
            base = store.get(modelfile.from_)
        except ModelNotFound as exc:
            hint = ("pull it first or give FROM a .gguf file path" if sources is Sources.LOCAL_FILES
                    else "pull it first, or upload a .gguf with POST /api/blobs and pass it in `files`")
            raise ModelNotFound(modelfile.from_, hint) from exc
        parent = base.name.short
        model_layer = base.model_layer
        for layer in base.manifest.layers:
            inherited.setdefault(layer.media_type, []).append(layer)
        params = base.parameters
        adapter_scales = list(base.config.get("adapters", []))
        info = read_gguf(base.model_path)
        config_data = dict(base.config) or model_config(info)
    if quantize:
        model_layer, info = _quantized(store, model_layer, info, quantize, allow_requantize, progress)
        config_data.update(model_config(info, license_id=config_data.get("license_id") or None,
                                        source=config_data.get("source", "")))
    config_data["parent_model"] = parent

    progress(ProgressResponse(status="creating layers"))
    layers = [model_layer]
    if modelfile.adapters:
        adapter_scales = []
        for adapter_path, scale in modelfile.adapters:
            layer = _adapter_layer(store, adapter_path, base_dir, info, progress, sources)
            layers.append(layer)
            adapter_scales.append({"digest": layer.digest, "scale": scale})
    else:
        layers.extend(inherited.get(MediaType.ADAPTER, []))
    config_data["adapters"] = adapter_scales

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


def _uploaded_blob(store: ModelStore, reference: str, what: str) -> tuple[str, Path]:
    """The digest and stored file an ``@sha256:...`` reference names; it must be uploaded."""
    from hearth.store import validate_digest

    digest = validate_digest(reference)
    if not store.blobs.has(digest):
        raise InvalidRequest(f"{what}: blob {digest} is not on the server; "
                             "upload it with POST /api/blobs first")
    return digest, store.blobs.path(digest)


def _adapter_layer(store: ModelStore, value: str, base_dir: Path | None, base: GGUFInfo,
                   progress: ProgressFn, sources: Sources) -> Layer:
    from hearth.gguf import read_gguf
    from hearth.gguf.adapters import validate_lora
    from hearth.modelfile import PATHS_REFUSED, blob_reference

    reference = blob_reference(value)
    if reference is not None:
        digest, blob = _uploaded_blob(store, reference, "ADAPTER")
        validate_lora(read_gguf(blob), base)
        return Layer(MediaType.ADAPTER, digest, blob.stat().st_size)
    if sources is not Sources.LOCAL_FILES:
        raise InvalidRequest(PATHS_REFUSED)  # check_sources said so first; this is the backstop
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    if not path.is_file():
        raise InvalidRequest(f"ADAPTER file {path} does not exist")
    validate_lora(read_gguf(path), base)
    digest, size = store.blobs.put_file(path, on_bytes=byte_progress(
        progress, f"copying adapter {path.name}", path.stat().st_size))
    return Layer(MediaType.ADAPTER, digest, size)


def _quantized(store: ModelStore, layer: Layer, info: GGUFInfo, target: str, allow_requantize: bool,
               progress: ProgressFn) -> tuple[Layer, GGUFInfo]:
    from hearth.engine.quantize import check_quantize_request, quantize_file
    from hearth.gguf import read_gguf
    from hearth.hub.workspace import scratch_folder

    type_name = check_quantize_request(info.quantization, target, allow_requantize)
    status = f"quantizing {info.quantization} to {type_name}"
    progress(ProgressResponse(status=status))
    with scratch_folder(store.home) as scratch:
        output = scratch / "quantized.gguf"
        # Our policy was checked above; llama.cpp itself needs the flag for any quantized source
        # (Q8_0 included), so it is always set here.
        quantize_file(store.blobs.path(layer.digest), output, type_name, allow_requantize=True,
                      on_progress=lambda size: progress(ProgressResponse(status=status, completed=size)))
        quantized = read_gguf(output)
        progress(ProgressResponse(status=f"quantized to {type_name}: {quantized.file_size} bytes "
                                         f"(was {info.file_size})"))
        digest, size = store.blobs.put_file(output)
    return Layer(MediaType.MODEL, digest, size), read_gguf(store.blobs.path(digest))
