"""Bring a GGUF file into the store: validate it first, then copy it in as a model blob."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hearth.store.blobs import validate_digest
from hearth.store.manifests import Layer, MediaType

if TYPE_CHECKING:
    from hearth.gguf import GGUFInfo
    from hearth.store.models import ModelStore


def import_model_file(
    store: ModelStore, path: Path, on_bytes: Callable[[int], None] | None = None
) -> tuple[Layer, GGUFInfo]:
    from hearth.gguf import read_gguf

    # The header is checked before a byte is copied: a bad file never enters the store.
    info = read_gguf(path)
    if path.parent == store.blobs.root and path.name.startswith("sha256-"):
        # Already a blob (uploaded through POST /api/blobs): its name is its verified digest.
        digest = validate_digest(path.name)
        return Layer(MediaType.MODEL, digest, path.stat().st_size), info
    digest, size = store.blobs.put_file(path, on_bytes=on_bytes)
    return Layer(MediaType.MODEL, digest, size), info


def verify_model_blob(store: ModelStore, digest: str) -> GGUFInfo:
    """Check a blob that arrived from elsewhere; a bad one is removed again before it is used."""
    from hearth.errors import InvalidModelFile
    from hearth.gguf import read_gguf

    try:
        return read_gguf(store.blobs.path(digest))
    except InvalidModelFile:
        store.blobs.delete(digest)
        raise


def model_config(info: GGUFInfo, *, license_id: str | None = None, source: str = "") -> dict[str, Any]:
    """The config blob: Ollama's fields plus what hearth wants without re-reading the GGUF."""
    return {
        "model_format": "gguf",
        "model_family": info.architecture,
        "model_families": [info.architecture] if info.architecture else [],
        "model_type": info.parameter_size,
        "file_type": info.quantization,
        "parameter_count": info.parameter_count,
        "context_length": info.context_length,
        "license_id": license_id or info.license or "",
        "general_name": info.name or "",
        "organization": info.organization or "",
        "source": source,
        "os": "linux",
        "architecture": "amd64",
    }
