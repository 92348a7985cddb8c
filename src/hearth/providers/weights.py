"""Open or closed weights for a provider's model id: hearth's catalog first, then the table of
models met only through providers (known_models.toml). Unknown stays unknown."""

from __future__ import annotations

import fnmatch
import functools
import sys
from dataclasses import dataclass
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class ModelFacts:
    publisher: str = ""
    weights: str = "unknown"  # "open", "closed" or "unknown"
    license: str = ""
    family: str = ""
    source: str = ""  # "catalog", "known models" or ""


UNKNOWN = ModelFacts()


@functools.lru_cache(maxsize=1)
def _known() -> list[dict[str, Any]]:
    text = resources.files("hearth.providers").joinpath("known_models.toml").read_text("utf-8")
    return list(tomllib.loads(text).get("model", []))


def _base_id(model_id: str) -> str:
    """The last part of the id, lower-cased: vendor prefixes say who hosts, not what it is."""
    return model_id.rsplit("/", 1)[-1].lower()


def _from_catalog(base: str) -> ModelFacts | None:
    from hearth.catalog.entries import load_catalog

    name = base.split(":", 1)[0]
    entry = load_catalog().get(name)
    if not isinstance(entry, dict):
        return None
    return ModelFacts(publisher=str(entry.get("publisher", "")), weights=str(entry.get("weights", "open")),
                      license=str(entry.get("license", "")), family=str(entry.get("family", "")),
                      source="catalog")


def facts_for(model_id: str) -> ModelFacts:
    base = _base_id(model_id)
    try:
        found = _from_catalog(base)
    except Exception:  # a broken catalog must not hide a remote model
        found = None
    if found is not None:
        return found
    for entry in _known():
        if any(fnmatch.fnmatchcase(base, pattern) for pattern in entry.get("match", [])):
            return ModelFacts(publisher=entry.get("publisher", ""), weights=entry.get("weights", "unknown"),
                              license=entry.get("license", ""), source="known models")
    return UNKNOWN
