"""Read the catalog data file and resolve a model name to a catalog tag."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hearth.names import DEFAULT_HOST, DEFAULT_NAMESPACE, ModelName

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class CatalogTag:
    model: str
    tag: str
    publisher: str
    family: str
    description: str
    license: str
    weights: str
    context_length: int
    parameter_size: str
    quantization: str
    size: int
    source: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def load_catalog() -> dict[str, Any]:
    text = resources.files("hearth.catalog").joinpath("models.toml").read_text("utf-8")
    return tomllib.loads(text)


def find_tag(name: ModelName) -> CatalogTag | None:
    """The catalog tag for a short library name (``smollm2``, ``smollm2:135m``), else None."""
    if name.host != DEFAULT_HOST or name.namespace != DEFAULT_NAMESPACE:
        return None
    entry = load_catalog().get(name.model)
    if not isinstance(entry, dict):
        return None
    for tag, data in entry.get("tags", {}).items():
        if name.tag == tag or name.tag in data.get("aliases", []):
            return CatalogTag(
                model=name.model,
                tag=tag,
                publisher=entry.get("publisher", ""),
                family=entry.get("family", ""),
                description=entry.get("description", ""),
                license=entry.get("license", ""),
                weights=entry.get("weights", "open"),
                context_length=int(entry.get("context_length", 0)),
                parameter_size=data.get("parameter_size", ""),
                quantization=data.get("quantization", ""),
                size=int(data.get("size", 0)),
                source=dict(data.get("source", {})),
                parameters=dict(data.get("parameters", {})),
            )
    return None


def tags_of(model: str) -> list[str]:
    entry = load_catalog().get(model, {})
    names = []
    for tag, data in entry.get("tags", {}).items():
        names.append(tag)
        names.extend(data.get("aliases", []))
    return names
