"""hearth's own JSON routes under ``/api/hearth/``: what the web app needs and Ollama's API does
not say. Catalog search, license summaries and hardware fit come from ``hearth.runtime.facts``
(the same answers the CLI prints); remote models from ``hearth.providers``; the system check
from ``hearth.doctor``.

They sit behind the same guard as every other route (Host header, API key).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Query, Request

from hearth.api.hearth_types import (
    CatalogSearchResponse,
    FitInfo,
    InstalledModelsResponse,
    LicenseSummary,
    RemoteModelInfo,
    RemoteModelsResponse,
    RemoteProviderInfo,
)
from hearth.errors import HearthError
from hearth.runtime import Runtime, facts
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
    return await call_in_thread(facts.search_with_facts, runtime_of(request).store, q)


# -- installed models -------------------------------------------------------------------------


@router.get("/models", response_model=InstalledModelsResponse)
async def installed_models(request: Request, ctx: int | None = CONTEXT) -> InstalledModelsResponse:
    """Every installed model with its architecture, parameter count, context length, license
    summary and fit. A model whose facts cannot be read is listed with ``error``."""
    return await call_in_thread(facts.installed_models, runtime_of(request).store, ctx)


# -- license and fit of one model -------------------------------------------------------------


@router.get("/license", response_model=LicenseSummary)
async def license_of(request: Request, model: str = Query(..., max_length=500)) -> LicenseSummary:
    """The license summary of an installed model, else of a catalog model by that name."""
    return await call_in_thread(facts.model_license, runtime_of(request).store, model)


@router.get("/fit", response_model=FitInfo)
async def fit(request: Request, model: str = Query(..., max_length=500), ctx: int | None = CONTEXT) -> FitInfo:
    """Whether an installed model, else a catalog model by that name, fits this machine, and
    its predicted decode and prompt tokens/s here (``decode_tokens_per_second``,
    ``prompt_tokens_per_second``, ``speed_basis``: how, or why none)."""
    return await call_in_thread(facts.model_fit, runtime_of(request).store, model, ctx)


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


# The check starts a test decode beside live requests: one at a time per server, and a fresh
# answer at most every DOCTOR_REUSE_SECONDS unless asked (a page reload gets the last one).
DOCTOR_REUSE_SECONDS = 30.0


@router.get("/doctor")
async def doctor(request: Request, fresh: bool = Query(
        False, description="run the check again, not the last answer")) -> dict[str, Any]:
    """What ``hearth doctor --json`` prints: versions, the engine build, CPU, memory,
    HEARTH_HOME, the server, a test decode in a child process, and each problem with its fix."""
    from hearth.doctor import examine

    state = request.app.state
    if not hasattr(state, "doctor_lock"):
        state.doctor_lock, state.doctor_last = asyncio.Lock(), None
    async with state.doctor_lock:
        last = state.doctor_last
        if fresh or last is None or time.monotonic() - last[0] > DOCTOR_REUSE_SECONDS:
            state.doctor_last = last = (time.monotonic(), await call_in_thread(examine))
        return last[1]
