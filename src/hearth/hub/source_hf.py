"""Plans for Hugging Face pulls: the chosen GGUF (and the repository's LICENSE file, when it
has one) fetched through ``hub/transfer.py`` with HF_TOKEN sent as a bearer token."""

from __future__ import annotations

from hearth.hub import huggingface as hf
from hearth.hub.plan import FetchContext, PullPlan, blob_bytes_present, save_pulled
from hearth.names import ModelName
from hearth.store import Layer, MediaType, ModelStore, StoredModel


def hf_plan(store: ModelStore, reference: hf.HFReference) -> PullPlan:
    repo = hf.repo_info(reference.repo_id, reference.revision)
    chosen = hf.choose_gguf(repo, reference)
    name = reference.local_name(chosen.path)
    plan = PullPlan(
        name=name,
        source=f"hf:{repo.repo_id}/{chosen.path}@{repo.revision}",
        size=chosen.size,
        license_id=repo.license_id,
        context_length=repo.context_length,
        fetch=lambda ctx: fetch_hf_file(ctx, plan, repo, chosen),
        stored_bytes=blob_bytes_present(store, chosen.digest),
        details={"file": chosen.path, "revision": repo.revision},
        named_from_file=reference.filename is not None,
    )
    return plan


def fetch_hf_file(ctx: FetchContext, plan: PullPlan, repo: hf.HFRepo, chosen: hf.HFFile,
                  parameters: dict | None = None) -> StoredModel:
    from hearth.hub.transfer import download_to_blob

    headers = hf.auth_headers()
    status = f"pulling {chosen.sha256[:12]}" if chosen.sha256 else f"pulling {chosen.path[-40:]}"
    digest, size = download_to_blob(ctx.store, repo.url(chosen.path), expected_digest=chosen.digest,
                                    size=chosen.size, headers=headers, progress=ctx.progress,
                                    status=status, max_speed=ctx.max_speed, cancelled=ctx.cancelled)
    layers = [Layer(MediaType.MODEL, digest, size)]
    license_file = repo.license_file()
    if license_file is not None:
        text_digest, text_size = download_to_blob(
            ctx.store, repo.url(license_file.path), expected_digest=license_file.digest,
            size=license_file.size, headers=headers, progress=ctx.progress,
            status=f"pulling {license_file.path}", cancelled=ctx.cancelled)
        layers.append(Layer(MediaType.LICENSE, text_digest, text_size))
    return save_pulled(ctx, plan, layers, parameters)


def catalog_hf_plan(store: ModelStore, name: ModelName, source: dict, *, size: int | None,
                    license_id: str | None, context_length: int | None,
                    parameters: dict | None) -> PullPlan:
    """A catalog tag whose weights live in a Hugging Face repository (``type = "hf"``)."""
    from hearth.errors import InvalidRequest

    try:
        repo_id, path = source["repo"], source["file"]
    except KeyError as exc:
        raise InvalidRequest(f"catalog source of '{name}' is missing {exc}") from None
    revision = source.get("revision")
    sha256 = source.get("sha256")

    def fetch(ctx: FetchContext) -> StoredModel:
        if sha256:
            repo = hf.HFRepo(repo_id, revision or "main", [hf.HFFile(path, size, sha256)])
        else:
            repo = hf.repo_info(repo_id, revision)
        chosen = repo.file(path)
        if chosen is None:
            from hearth.errors import ModelNotFound

            raise ModelNotFound(name, f"hf.co/{repo_id} has no file {path}")
        return fetch_hf_file(ctx, plan, repo, chosen, parameters)

    plan = PullPlan(name=name, source=f"hf:{repo_id}/{path}", size=size, license_id=license_id,
                    context_length=context_length, fetch=fetch,
                    stored_bytes=blob_bytes_present(store, f"sha256:{sha256}" if sha256 else None))
    return plan
