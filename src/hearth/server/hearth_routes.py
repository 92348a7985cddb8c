"""hearth's own JSON routes under ``/api/hearth/``: what the web app needs and Ollama's API does
not say. Catalog search, license summaries and hardware fit come from ``hearth.catalog.search``,
``hearth.licenses`` and ``hearth.fit``; remote models from ``hearth.providers``; the system
check from ``hearth.doctor``.

They sit behind the same guard as every other route (Host header, API key).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query, Request

from hearth.api.hearth_types import (
    CatalogEntryInfo,
    CatalogSearchResponse,
    FitInfo,
    InstalledModelInfo,
    InstalledModelsResponse,
    LicenseSummary,
    RemoteModelInfo,
    RemoteModelsResponse,
    RemoteProviderInfo,
)
from hearth.errors import HearthError, InvalidModelName, ModelNotFound
from hearth.runtime import Runtime
from hearth.server.bridge import call_in_thread
from hearth.server.error_shapes import ErrorShape, ollama_error_body

router = APIRouter(prefix="/api/hearth", tags=["hearth"])
ERROR_SHAPE = ErrorShape("/api/hearth", ollama_error_body)  # {"error": "..."}

CONTEXT = Query(None, ge=16, le=1 << 20, description="context length to size the KV cache for")


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


# -- catalog ----------------------------------------------------------------------------------


@router.get("/catalog", response_model=CatalogSearchResponse)
async def catalog(request: Request, q: str = Query("", max_length=200, description="search text"),
                  ) -> CatalogSearchResponse:
    """Catalog entries matching ``q`` (all of them when empty), each with its license summary
    and, per tag, whether it fits this machine and whether it is installed."""
    return await call_in_thread(search_with_facts, runtime_of(request), q)


def search_with_facts(runtime: Runtime, query: str) -> CatalogSearchResponse:
    from hearth.licenses import license_summary
    from hearth.runtime.catalog_facts import search_catalog

    entries = []
    for found in search_catalog(query):
        entry = dict(found)
        entry["license_summary"] = license_summary(found.get("license") or None)
        entry["tags"] = [tag_facts(runtime, found["model"], dict(tag)) for tag in found.get("tags", [])]
        entries.append(CatalogEntryInfo.model_validate(entry))
    return CatalogSearchResponse(query=query, entries=entries)


def tag_facts(runtime: Runtime, model: str, tag: dict[str, Any]) -> dict[str, Any]:
    from hearth.catalog.entries import find_tag
    from hearth.fit import fit_catalog_tag
    from hearth.names import ModelName

    try:
        name = ModelName.parse(f"{model}:{tag['tag']}")
    except (InvalidModelName, KeyError):
        return tag
    catalog_tag = find_tag(name)
    if catalog_tag is not None:
        tag["fit"] = fit_catalog_tag(catalog_tag).as_dict()
    tag["installed"] = runtime.store.exists(name)
    if tag.get("license"):
        from hearth.licenses import license_summary

        tag["license_summary"] = license_summary(tag["license"])
    return tag


# -- installed models -------------------------------------------------------------------------


@router.get("/models", response_model=InstalledModelsResponse)
async def installed_models(request: Request, ctx: int | None = CONTEXT) -> InstalledModelsResponse:
    """Every installed model with its architecture, parameter count, context length, license
    summary and fit. A model whose facts cannot be read is listed with ``error``."""
    return await call_in_thread(describe_installed, runtime_of(request), ctx)


def describe_installed(runtime: Runtime, ctx: int | None) -> InstalledModelsResponse:
    return InstalledModelsResponse(models=[model_facts(runtime, model, ctx) for model in runtime.store.list()])


def model_facts(runtime: Runtime, model: Any, ctx: int | None) -> InstalledModelInfo:
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
        facts.license_id = license_id_of(runtime.store, model)
        facts.license = LicenseSummary.model_validate(license_summary(facts.license_id))
        facts.fit = FitInfo.model_validate(fit_stored_model(runtime.store, model, ctx).as_dict())
    except HearthError as exc:
        facts.error = exc.message
    return facts


# -- license and fit of one model -------------------------------------------------------------


@router.get("/license", response_model=LicenseSummary)
async def license_of(request: Request, model: str = Query(..., max_length=500)) -> LicenseSummary:
    """The license summary of an installed model, else of a catalog model by that name."""
    return await call_in_thread(find_license, runtime_of(request), model)


def find_license(runtime: Runtime, name: str) -> LicenseSummary:
    from hearth.licenses import license_id_of, license_summary

    if runtime.store.exists(name):
        license_id = license_id_of(runtime.store, runtime.store.get(name))
    else:
        license_id = catalog_tag_of(name).license or None
    return LicenseSummary.model_validate(license_summary(license_id))


@router.get("/fit", response_model=FitInfo)
async def fit(request: Request, model: str = Query(..., max_length=500), ctx: int | None = CONTEXT) -> FitInfo:
    """Whether an installed model, else a catalog model by that name, fits this machine."""
    return await call_in_thread(find_fit, runtime_of(request), model, ctx)


def find_fit(runtime: Runtime, name: str, ctx: int | None) -> FitInfo:
    from hearth.fit import fit_catalog_tag, fit_stored_model

    if runtime.store.exists(name):
        report = fit_stored_model(runtime.store, runtime.store.get(name), ctx)
    else:
        report = fit_catalog_tag(catalog_tag_of(name), ctx)
    return FitInfo.model_validate(report.as_dict())


def catalog_tag_of(name: str) -> Any:
    from hearth.catalog.entries import find_tag
    from hearth.names import ModelName

    tag = find_tag(ModelName.parse(name))
    if tag is None:
        raise ModelNotFound(name, "it is neither installed nor in the catalog")
    return tag


# -- remote models ----------------------------------------------------------------------------


@router.get("/remote", response_model=RemoteModelsResponse)
async def remote_models(request: Request, listing: bool = Query(
        True, alias="list", description="ask each provider that has its key for its models")) -> RemoteModelsResponse:
    """Remote providers, whether each can be called (its key is set), and their models: the
    names providers.toml allows, plus what each provider lists when ``list`` is true. Nothing
    is asked of any provider when HEARTH_OFFLINE=1."""
    from hearth import config
    from hearth.providers.directory import load_providers

    offline = config.offline()
    remote = runtime_of(request).remote
    providers = sorted(load_providers().values(), key=lambda p: p.name)
    infos = [provider_info(provider) for provider in providers]
    if listing and not offline:
        await asyncio.gather(*(fill_listing(remote, info) for info in infos if info.ready))
    return RemoteModelsResponse(offline=offline, providers=infos)


def provider_info(provider: Any) -> RemoteProviderInfo:
    ready = bool(provider.key()) or not provider.needs_key
    models = [RemoteModelInfo(name=f"{provider.name}/{model}", provider=provider.name)
              for model in provider.models if not set("*?[") & set(model)] if ready else []
    return RemoteProviderInfo(name=provider.name, endpoint=provider.endpoint, ready=ready,
                              key_env=provider.api_key_env or None, models=models)


async def fill_listing(remote: Any, info: RemoteProviderInfo) -> None:
    try:
        listed = await call_in_thread(remote.list_remote, info.name)
    except HearthError as exc:
        info.error = exc.message
        return
    # What the provider says about a model replaces the bare allow-list entry.
    by_name = {model.name: model for model in info.models}
    for entry in listed:
        by_name[entry.name] = RemoteModelInfo(name=entry.name, provider=info.name, owned_by=entry.owned_by,
                                              context_length=entry.context_length, weights=entry.weights,
                                              license=entry.license)
    info.models = sorted(by_name.values(), key=lambda model: model.name.lower())


# -- doctor -----------------------------------------------------------------------------------


@router.get("/doctor")
async def doctor() -> dict[str, Any]:
    """What ``hearth doctor --json`` prints: versions, the engine build, CPU, memory,
    HEARTH_HOME, the server, a test decode in a child process, and each problem with its fix."""
    from hearth.doctor import examine

    return await call_in_thread(examine)
