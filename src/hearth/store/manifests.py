"""Manifests in Ollama's layout: ``manifests/<host>/<namespace>/<model>/<tag>``.

A manifest lists a model's layers (the GGUF weights, license, template, system prompt,
parameters, messages, adapters) by digest. Digests and media types read from disk are
validated like any other input: a tampered manifest must not point outside the blob folder.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hearth.errors import InvalidRequest, ModelNotFound, StoreError
from hearth.names import ModelName
from hearth.store.blobs import (
    TEMP_PREFIX,
    atomic_write_bytes,
    is_stale_temp,
    store_error,
    validate_digest,
)

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class MediaType:
    CONFIG = "application/vnd.docker.container.image.v1+json"
    MODEL = "application/vnd.ollama.image.model"
    ADAPTER = "application/vnd.ollama.image.adapter"
    LICENSE = "application/vnd.ollama.image.license"
    TEMPLATE = "application/vnd.ollama.image.template"
    SYSTEM = "application/vnd.ollama.image.system"
    PARAMS = "application/vnd.ollama.image.params"
    MESSAGES = "application/vnd.ollama.image.messages"

    KNOWN = frozenset({CONFIG, MODEL, ADAPTER, LICENSE, TEMPLATE, SYSTEM, PARAMS, MESSAGES})


@dataclass(frozen=True)
class Layer:
    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}

    @classmethod
    def from_json(cls, data: object) -> Layer:
        if not isinstance(data, dict):
            raise InvalidRequest("manifest layer is not an object")
        media_type = data.get("mediaType")
        size = data.get("size")
        if not isinstance(media_type, str) or not media_type:
            raise InvalidRequest("manifest layer has no mediaType")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise InvalidRequest(f"manifest layer has an invalid size: {size!r}")
        return cls(media_type, validate_digest(data.get("digest", "")), size)


@dataclass
class Manifest:
    config: Layer
    layers: list[Layer] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json(), indent=2).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            parsed = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"manifest is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict) or parsed.get("schemaVersion") != 2:
            raise InvalidRequest("manifest is not a schemaVersion 2 manifest")
        layers = parsed.get("layers")
        if not isinstance(layers, list):
            raise InvalidRequest("manifest has no layers list")
        return cls(Layer.from_json(parsed.get("config")), [Layer.from_json(x) for x in layers])

    def layer(self, media_type: str) -> Layer | None:
        for layer in self.layers:
            if layer.media_type == media_type:
                return layer
        return None

    def layers_of(self, media_type: str) -> list[Layer]:
        return [layer for layer in self.layers if layer.media_type == media_type]

    def digests(self) -> set[str]:
        return {self.config.digest, *(layer.digest for layer in self.layers)}

    @property
    def total_size(self) -> int:
        return self.config.size + sum(layer.size for layer in self.layers)


class ManifestStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: ModelName) -> Path:
        return self.root.joinpath(*name.path_parts())

    def exists(self, name: ModelName) -> bool:
        return self.path(name).is_file()

    def get(self, name: ModelName) -> Manifest:
        path = self.path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except OSError as exc:
            raise store_error("read", path, exc) from exc
        try:
            return Manifest.from_bytes(data)
        except InvalidRequest as exc:
            raise StoreError(f"manifest of '{name}' is damaged ({exc.message}); remove it with "
                             f"'hearth rm {name}'") from exc

    def put(self, name: ModelName, manifest: Manifest) -> None:
        atomic_write_bytes(self.path(name), manifest.to_bytes())

    def delete(self, name: ModelName) -> None:
        path = self.path(name)
        try:
            path.unlink()
        except FileNotFoundError:
            raise ModelNotFound(name) from None
        except OSError as exc:
            raise store_error("delete", path, exc) from exc
        # Empty model and namespace folders are removed so `list` and `prune` stay clean.
        for parent in list(path.parents)[:3]:
            if parent == self.root:
                break
            with contextlib.suppress(OSError):
                parent.rmdir()

    def names(self) -> Iterator[tuple[ModelName, Path]]:
        """Every well-formed manifest path; stray files that do not form a valid name are skipped."""
        if not self.root.is_dir():
            return
        for dirpath, _dirs, files in os.walk(self.root):
            for filename in files:
                if filename.startswith(TEMP_PREFIX):
                    continue
                path = Path(dirpath) / filename
                parts = path.relative_to(self.root).parts
                if len(parts) != 4:
                    continue
                host, namespace, model, tag = parts
                text = f"{host}/{namespace}/{model}:{tag}"
                if ModelName.is_valid(text):
                    yield ModelName.parse(text), path

    def stale_temp_files(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            Path(dirpath) / f
            for dirpath, _dirs, files in os.walk(self.root)
            for f in files
            if is_stale_temp(Path(dirpath) / f)
        ]
