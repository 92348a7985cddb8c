"""Which layers of a registry's model hearth keeps, so that a model from Ollama's registry runs
(``hearth import --ollama`` applies the same template and parameter rules to a local store).

Ollama's manifests may carry layers hearth cannot use: a Go-syntax chat template (hearth renders
Jinja, the GGUF's own template is used instead), parameters hearth does not know (``mirostat``),
or media types it has no use for (vision projectors). Unknown media types are left out before
anything is downloaded; templates and parameters are small and are checked once stored. What a
model pushed by hearth carries is always kept, so its round trip changes nothing.
"""

from __future__ import annotations

import json

from hearth.store import Layer, MediaType, ModelStore


def known_layers(layers: list[Layer]) -> tuple[list[Layer], list[str]]:
    """Layers of media types hearth uses, and a note for each one left out."""
    kept = [layer for layer in layers if layer.media_type in MediaType.KNOWN]
    notes = [f"left out layer {layer.media_type} ({layer.digest[7:19]}): hearth does not use it"
             for layer in layers if layer.media_type not in MediaType.KNOWN]
    return kept, notes


def usable_layers(store: ModelStore, layers: list[Layer]) -> tuple[list[Layer], list[str]]:
    """The stored layers with Go templates dropped and unknown parameters trimmed."""
    result: list[Layer] = []
    notes: list[str] = []
    for layer in layers:
        if layer.media_type == MediaType.TEMPLATE:
            if is_jinja_template(store.blobs.read_bytes(layer.digest).decode("utf-8", errors="replace")):
                result.append(layer)
            else:
                notes.append("left out the Ollama (Go) template: the GGUF's own chat template is used")
        elif layer.media_type == MediaType.PARAMS:
            kept, dropped = known_parameters(store.blobs.read_bytes(layer.digest))
            if not dropped:
                result.append(layer)
                continue
            notes.append(f"left out parameters hearth does not know: {', '.join(dropped)}")
            if kept:
                result.append(store.layer_from_bytes(MediaType.PARAMS, json.dumps(kept).encode()))
        else:
            result.append(layer)
    return result, notes


def is_jinja_template(template: str) -> bool:
    from hearth.errors import TemplateError
    from hearth.prompt.templates import validate_template

    try:
        validate_template(template)
    except TemplateError:
        return False
    return True


def known_parameters(data: bytes) -> tuple[dict, list[str]]:
    """Ollama's parameters split into those hearth accepts and the names of the rest."""
    from pydantic import ValidationError

    from hearth.api.types import IGNORED_OLLAMA_OPTIONS, Options

    try:
        params = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}, ["(not valid JSON)"]
    if not isinstance(params, dict):
        return {}, ["(not a JSON object)"]
    kept: dict = {}
    dropped: list[str] = []
    for key, value in params.items():
        if key in IGNORED_OLLAMA_OPTIONS:
            dropped.append(str(key))  # a request may send it; a stored model need not keep it
            continue
        try:
            Options(**{key: value})
        except (ValidationError, TypeError):
            dropped.append(str(key))
        else:
            kept[key] = value
    return kept, sorted(dropped)
