"""``match_catalog``: the catalog entries a query matches, as JSON-ready dicts (the runtime's
``search_catalog`` adds how to reach closed models through a provider).

Every word of the query must appear (case-insensitively) in the entry's name, family,
publisher, description, weights ("open"/"closed") or license (its id or full name, for every
tag's license). Exact name matches come first, then names that start with the query, then the
rest in catalog order.
"""

from __future__ import annotations

from typing import Any

from hearth.catalog.entries import CatalogTag, entry_tags, iter_entries


def _license_words(license_id: str) -> str:
    from hearth.catalog.license_terms import lookup

    terms = lookup(license_id)
    return f"{license_id} {terms.name}" if terms else license_id


def _tag_dict(tag: CatalogTag, entry_license: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "tag": tag.tag, "parameter_size": tag.parameter_size, "quantization": tag.quantization,
        "size": tag.size, "size_approx": tag.size_approx, "quantizations": list(tag.quantizations),
        "source": dict(tag.source), "pull": f"{tag.model}:{tag.tag}" if tag.source else None,
    }
    if tag.license != entry_license:
        data["license"] = tag.license
    if tag.context_length:
        data["context_length"] = tag.context_length
    if tag.note:
        data["note"] = tag.note
    return data


def entry_dict(model: str, entry: dict[str, Any]) -> dict[str, Any]:
    license_id = str(entry.get("license", ""))
    tags = entry_tags(model, entry)
    aliases = {tag: data.get("aliases", []) for tag, data in entry.get("tags", {}).items()}
    tag_dicts = []
    for tag in tags:
        item = _tag_dict(tag, license_id)
        item["aliases"] = list(aliases.get(tag.tag, []))
        tag_dicts.append(item)
    weights = str(entry.get("weights", "open"))
    return {
        "model": model,
        "publisher": str(entry.get("publisher", "")),
        "family": str(entry.get("family", "")),
        "description": str(entry.get("description", "")),
        "license": license_id,
        "licenses": sorted({license_id, *(t.license for t in tags)} - {""}),
        "weights": weights,
        "context_length": int(entry.get("context_length", 0)),
        "tags": tag_dicts,
        "provider_hint": "",  # filled in by runtime.facts (a provider question)
        "providers": list(entry.get("providers", [])),
    }


def _haystack(item: dict[str, Any]) -> str:
    parts = [item["model"], item["family"], item["publisher"], item["description"], item["weights"]]
    parts += [_license_words(lic) for lic in item["licenses"]]
    parts += [t["tag"] for t in item["tags"]]
    return " ".join(parts).lower()


def match_catalog(query: str) -> list[dict[str, Any]]:
    words = query.lower().split()
    wanted = query.strip().lower()
    found = []
    for position, (model, entry) in enumerate(iter_entries()):
        item = entry_dict(model, entry)
        haystack = _haystack(item)
        if not all(word in haystack for word in words):
            continue
        rank = 0 if model == wanted else 1 if wanted and model.startswith(wanted) else 2
        found.append((rank, position, item))
    found.sort(key=lambda row: (row[0], row[1]))
    return [item for _, _, item in found]
