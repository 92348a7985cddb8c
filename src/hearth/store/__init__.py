"""The model store: content-addressed blobs plus Ollama-layout manifests under HEARTH_HOME."""

from hearth.store.blobs import BlobStore, validate_digest
from hearth.store.manifests import Layer, Manifest, ManifestStore, MediaType
from hearth.store.models import ModelStore, StoredModel

__all__ = [
    "BlobStore",
    "Layer",
    "Manifest",
    "ManifestStore",
    "MediaType",
    "ModelStore",
    "StoredModel",
    "validate_digest",
]
