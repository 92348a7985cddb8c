"""``hearth pull``: resolve a name to a source, check it may and can be pulled, then fetch it.

Order, for every source: plan (size, license id, context length; small requests only) ->
license confirmation (``hearth.licenses.confirm_before_pull``) -> fit warning
(``hearth.fit.pull_warning``) -> free disk space -> download -> manifest last. No progress
event is sent before the license is settled, so the server can still answer 403 with the
license instead of starting a stream. Two pulls of the same name at once (threads or
processes) download once: the second waits on a lock and takes the first one's model.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable

from hearth import config
from hearth.api.types import ProgressFn, ProgressResponse, no_progress
from hearth.errors import DownloadFailed, InvalidRequest, ModelNotFound, StoreError
from hearth.hub.plan import FetchContext, PullPlan
from hearth.names import ModelName
from hearth.references import is_url, looks_like_path
from hearth.store import ModelStore, StoredModel
from hearth.units import human_size

DISK_MARGIN_BYTES = 16 << 20


def pull_model(
    store: ModelStore,
    name_or_ref: str | ModelName,
    progress: ProgressFn = no_progress,
    *,
    accept_license: bool = False,
    ask: Callable[[str], bool] | None = None,
    max_speed: float | None = None,
    cancelled: Callable[[], bool] | None = None,
    insecure: bool = False,
) -> StoredModel:
    plan = plan_pull(store, name_or_ref, insecure=insecure)
    confirm_plan(plan, accept_license=accept_license, ask=ask)
    return run_plan(store, plan, progress, max_speed=max_speed, cancelled=cancelled)


def plan_pull(store: ModelStore, name_or_ref: str | ModelName, *, insecure: bool = False) -> PullPlan:
    """Which source a name means, and what pulling it would fetch (no large download)."""
    from hearth.hub import huggingface, source_files

    if isinstance(name_or_ref, ModelName):
        text, name = name_or_ref.full, name_or_ref
    else:
        text, name = name_or_ref.strip(), None
    if name is None:
        reference = huggingface.parse_reference(text)
        if reference is not None:
            return _remote(lambda: _hf_plan(store, reference), text)
        if is_url(text):
            return _remote(lambda: source_files.url_plan(text), text)
        if "://" in text:
            scheme = text.split("://", 1)[0]
            raise InvalidRequest(f"cannot pull '{text}': {scheme}:// URLs are not supported; "
                                 "use an http(s) URL, a file path or a model name")
        if looks_like_path(text):
            return source_files.local_plan(text)
        name = ModelName.parse(text)
    if name.host in huggingface.SHORT_HOSTS:
        reference = huggingface.parse_reference(f"hf.co/{name.namespace}/{name.model}:{name.tag}")
        return _remote(lambda: _hf_plan(store, reference), text)  # type: ignore[arg-type]
    if _is_registry_name(name):
        return _remote(lambda: _registry_plan(store, name, insecure), text)
    from hearth.catalog import find_tag

    tag = find_tag(name)
    if tag is None:
        from hearth.catalog.entries import catalog_entry, tags_of

        if catalog_entry(name) is not None:
            raise ModelNotFound(name, f"the catalog's {name.model} has the tags "
                                      f"{', '.join(tags_of(name.model))} (see 'hearth search {name.model}')")
        raise ModelNotFound(name, "it is not in hearth's catalog; pull hf.co/OWNER/REPO, a URL of a "
                                  ".gguf file, or create it with 'hearth create NAME --from FILE.gguf'")
    from hearth.hub.source_catalog import catalog_plan

    return _remote(lambda: catalog_plan(store, name, tag), text)


def pullable_name(name: ModelName) -> bool:
    """Names outside the catalog that a pull can still resolve (Hugging Face, registries)."""
    from hearth.hub import huggingface

    return name.host in huggingface.SHORT_HOSTS or _is_registry_name(name)


def _remote(make: Callable[[], PullPlan], text: str) -> PullPlan:
    if config.offline():
        raise DownloadFailed(f"cannot pull '{text}': downloads are disabled (HEARTH_OFFLINE=1)")
    return make()


def _hf_plan(store: ModelStore, reference) -> PullPlan:  # type: ignore[no-untyped-def]
    from hearth.hub.source_hf import hf_plan

    return hf_plan(store, reference)


def _is_registry_name(name: ModelName) -> bool:
    from hearth.hub.registry import is_registry_name

    return is_registry_name(name)


def _registry_plan(store: ModelStore, name: ModelName, insecure: bool) -> PullPlan:
    from hearth.hub.registry import fetch_registry_model

    # Only the manifest and small blobs: the plan's events are not shown (nothing is settled yet).
    found = fetch_registry_model(store, name, no_progress, plan_only=True, insecure=insecure)
    stored = sum(layer.size for layer in found.manifest.layers if store.blobs.has(layer.digest))

    def fetch(ctx: FetchContext) -> StoredModel:
        return fetch_registry_model(ctx.store, name, ctx.progress, max_speed=ctx.max_speed,
                                    cancelled=ctx.cancelled, insecure=insecure, plan=found)

    return PullPlan(name=name, source=f"registry:{found.ref}", size=found.size,
                    license_id=found.license_id, context_length=found.context_length, fetch=fetch,
                    stored_bytes=stored)


def confirm_plan(plan: PullPlan, *, accept_license: bool = False,
                 ask: Callable[[str], bool] | None = None) -> None:
    """The license policy and acceptance (raises ``LicenseNotAccepted``/``LicenseBlocked``)."""
    from hearth import licenses

    if plan.downloads:
        licenses.confirm_before_pull(plan.name.short, plan.license_id, accept_license=accept_license,
                                     ask=ask)
    else:
        # Your own file needs no acceptance prompt, but the policy still applies.
        licenses.check_policy(plan.license_id, action="pull")


def run_plan(store: ModelStore, plan: PullPlan, progress: ProgressFn = no_progress, *,
             max_speed: float | None = None, cancelled: Callable[[], bool] | None = None) -> StoredModel:
    from hearth.hub import locks

    check_disk(store, plan)  # before the first event: over HTTP it is still a real error status
    progress(ProgressResponse(status="pulling manifest"))
    if plan.downloads:
        from hearth.catalog.license_terms import badge

        # What the license allows, before any weight arrives (`hearth license` has the terms).
        progress(ProgressResponse(status=f"license: {badge(plan.license_id)}"))
    if plan.size:
        from hearth.fit import pull_warning

        warning = pull_warning(plan.size, plan.context_length)
        if warning:
            progress(ProgressResponse(status=f"warning: {warning}{_smaller_choice(plan.name)}"))
    key = hashlib.sha256(plan.name.full.encode()).hexdigest()[:32]

    def waiting() -> None:
        progress(ProgressResponse(status=f"waiting for another pull of {plan.name.short}"))

    ctx = FetchContext(store, progress, max_speed, cancelled)
    with locks.exclusive(store.home / "tmp" / f"pull-{key}.lock", cancelled=cancelled,
                         on_wait=waiting) as lock:
        if lock.note == "saved" and store.exists(plan.name):
            progress(ProgressResponse(status="success"))
            return store.get(plan.name)
        model = plan.fetch(ctx)
        lock.leave_note("saved")
    return model


def _smaller_choice(name: ModelName) -> str:
    """For a catalog model, the best of its tags and quantizations that does fit here."""
    from hearth.catalog import find_tag
    from hearth.fit import recommend_tag

    if find_tag(name) is None:
        return ""
    best = recommend_tag(name.full)
    if best is None:
        return "; no size of this model fits this machine"
    if best.tag == name.tag:
        return ""
    return f"; {best.model}:{best.tag} ({best.quantization}) fits"


def check_disk(store: ModelStore, plan: PullPlan) -> None:
    needed = plan.disk_needed
    if not needed:
        return
    folder = store.home
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed + DISK_MARGIN_BYTES:
        raise StoreError(f"not enough disk space to pull {plan.name.short}: it needs "
                         f"{human_size(needed + DISK_MARGIN_BYTES)} in {store.home}, {human_size(free)} is free")

