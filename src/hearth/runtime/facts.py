"""What hearth says about a model before and after it is installed: license, fit and shape.
One place for ``hearth license``, ``hearth fit``, ``hearth search`` and the server's
``/api/hearth/*`` routes, so the terminal and the web app never tell two stories.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hearth.api.hearth_types import (
    CatalogEntryInfo,
    CatalogSearchResponse,
    FitInfo,
    InstalledModelInfo,
    InstalledModelsResponse,
    LicenseSummary,
)
from hearth.errors import HearthError, InvalidModelName, ModelNotFound
from hearth.names import ModelName
from hearth.store import ModelStore, StoredModel

# -- the catalog --------------------------------------------------------------------------------


def search_catalog(query: str) -> list[dict[str, Any]]:
    """Catalog entries matching ``query`` (``catalog.search``), with the provider routes that
    reach the closed ones (a provider question: ``providers.closed_models``)."""
    from hearth.catalog import catalog_entry
    from hearth.catalog.search import match_catalog
    from hearth.providers.closed_models import provider_hint

    found = match_catalog(query)
    for item in found:
        if item["weights"] == "closed":
            entry = catalog_entry(item["model"])
            item["provider_hint"] = provider_hint(entry) if entry else ""
    return found


def search_hugging_face(query: str, *, limit: int = 10) -> Any:
    """The quick, skippable Hugging Face search that ``hearth search`` adds below the catalog."""
    from hearth.catalog.hub_search import search_hugging_face as search

    return search(query, limit=limit)


def search_with_facts(store: ModelStore, query: str) -> CatalogSearchResponse:
    """The search with each entry's license summary and, per tag, fit and whether it is
    installed (the web app's Discover page)."""
    from hearth.licenses import license_summary

    entries = []
    for found in search_catalog(query):
        entry = dict(found)
        entry["license_summary"] = license_summary(found.get("license") or None)
        entry["tags"] = [_tag_facts(store, found["model"], dict(tag)) for tag in found.get("tags", [])]
        entries.append(CatalogEntryInfo.model_validate(entry))
    return CatalogSearchResponse(query=query, entries=entries)


def _tag_facts(store: ModelStore, model: str, tag: dict[str, Any]) -> dict[str, Any]:
    from hearth.catalog.entries import find_tag
    from hearth.fit import fit_catalog_tag
    from hearth.licenses import license_summary

    try:
        name = ModelName.parse(f"{model}:{tag['tag']}")
    except (InvalidModelName, KeyError):
        return tag
    catalog_tag = find_tag(name)
    if catalog_tag is not None:
        tag["fit"] = fit_catalog_tag(catalog_tag).as_dict()
    tag["installed"] = store.exists(name)
    if tag.get("license"):
        tag["license_summary"] = license_summary(tag["license"])
    return tag


def catalog_tag_of(name: str) -> Any:
    from hearth.catalog.entries import find_tag

    tag = find_tag(ModelName.parse(name))
    if tag is None:
        raise ModelNotFound(name, "it is neither installed nor in the catalog")
    return tag


# -- installed models -----------------------------------------------------------------------------


def installed_models(store: ModelStore, ctx: int | None) -> InstalledModelsResponse:
    return InstalledModelsResponse(models=[_installed_facts(store, model, ctx) for model in store.list()])


def _installed_facts(store: ModelStore, model: StoredModel, ctx: int | None) -> InstalledModelInfo:
    from hearth.fit import fit_stored_model
    from hearth.gguf import read_gguf
    from hearth.licenses import license_id_of, license_summary

    facts = InstalledModelInfo(name=model.name.short, size=model.size)
    try:
        info = read_gguf(model.model_path)
        facts.architecture = info.architecture
        facts.parameter_count = info.parameter_count
        facts.parameter_size = info.parameter_size
        facts.quantization = info.quantization
        facts.context_length = info.context_length
        facts.license_id = license_id_of(store, model)
        facts.license = LicenseSummary.model_validate(license_summary(facts.license_id))
        facts.fit = FitInfo.model_validate(fit_stored_model(store, model, ctx).as_dict())
    except HearthError as exc:
        facts.error = exc.message
    return facts


# -- licenses -------------------------------------------------------------------------------------


def describe_license(store: ModelStore, target: str) -> dict[str, Any]:
    """What ``target`` is and its license: an installed model first, then a catalog model,
    then a license id (``hearth license``)."""
    from hearth.catalog import catalog_entry, find_tag
    from hearth.licenses import license_summary, lookup, resolve_license

    parsed = None
    with contextlib.suppress(HearthError):  # a license id such as "CC BY-NC 4.0" is no model name
        parsed = ModelName.parse(target)
    if parsed is not None:
        if store.exists(parsed):
            model = store.get(parsed)
            resolved = resolve_license(store, model)
            return {"subject": model.name.short, "kind": "installed model", "origin": resolved.origin,
                    "license": license_summary(resolved.license_id)}
        tag = find_tag(parsed)
        if tag is not None:
            return {"subject": f"{tag.model}:{tag.tag}", "kind": "catalog model", "origin": "catalog",
                    "license": license_summary(tag.license)}
        entry = catalog_entry(parsed)
        if entry is not None:
            kind = "closed catalog model" if entry.get("weights") == "closed" else "catalog model"
            return {"subject": parsed.model, "kind": kind, "origin": "catalog",
                    "license": license_summary(str(entry.get("license", "")))}
    if lookup(target) is not None:
        return {"subject": target, "kind": "license id", "origin": "", "license": license_summary(target)}
    raise ModelNotFound(target, "it is not installed, not in the catalog, and not a license id hearth knows")


def model_license(store: ModelStore, name: str) -> LicenseSummary:
    """The license summary of an installed model, else of a catalog model by that name."""
    from hearth.licenses import license_id_of, license_summary

    if store.exists(name):
        license_id = license_id_of(store, store.get(name))
    else:
        license_id = catalog_tag_of(name).license or None
    return LicenseSummary.model_validate(license_summary(license_id))


def badge(license_id: str | None) -> str:
    from hearth.licenses import badge as license_badge

    return license_badge(license_id)


# -- fit ------------------------------------------------------------------------------------------


def model_fit(store: ModelStore, name: str, ctx: int | None) -> FitInfo:
    """Whether an installed model, else a catalog model by that name, fits this machine."""
    from hearth.fit import fit_catalog_tag, fit_stored_model

    if store.exists(name):
        report = fit_stored_model(store, store.get(name), ctx)
    else:
        report = fit_catalog_tag(catalog_tag_of(name), ctx)
    return FitInfo.model_validate(report.as_dict())


def fit_answer(store: ModelStore, text: str, ctx: int | None, *, catalog: bool = False,
               n_parallel: int = 1) -> Any:
    """``hearth fit TEXT``: a file, an installed model, a catalog model (every tag) or a size."""
    from hearth.fit.target import fit_target

    return fit_target(store, text, ctx, catalog=catalog, n_parallel=n_parallel)


def fit_thresholds() -> tuple[float, float]:
    """(fits, tight): the shares of free memory below which a model fits, or fits tightly."""
    from hearth.fit import FITS_FRACTION, TIGHT_FRACTION

    return FITS_FRACTION, TIGHT_FRACTION
