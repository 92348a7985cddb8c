"""Plain sources: an http(s) URL of a .gguf file, and a GGUF file on this machine.

A URL's model is named after its file: ``https://host/x/Foo-7B-Q4_K_M.gguf`` becomes
``foo-7b:q4_k_m`` (the quantization, when the file name has one, is the tag; otherwise
``latest``). A local file is imported the way ``hearth create NAME --from FILE`` does, under
the same kind of name.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from hearth.api.types import ProgressResponse
from hearth.errors import DownloadFailed, InvalidRequest
from hearth.hub import quants
from hearth.hub.plan import FetchContext, PullPlan, save_pulled
from hearth.names import ModelName
from hearth.store import Layer, MediaType, StoredModel


def name_from_filename(filename: str) -> ModelName:
    """``Foo-7B-Instruct-Q4_K_M.gguf`` -> ``foo-7b-instruct:q4_k_m``."""
    stem = filename.rsplit("/", 1)[-1]
    if stem.lower().endswith(".gguf"):
        stem = stem[:-5]
    quant = quants.quant_of(filename)
    base = quants.strip_quant(stem) if quant else stem
    base = re.sub(r"[^a-z0-9._-]+", "-", base.lower())
    base = re.sub(r"\.{2,}", ".", base).strip("-._")[:80].rstrip("-._") or "model"
    return ModelName.parse(f"{base}:{(quant or 'latest').lower()}")


def url_plan(url: str) -> PullPlan:
    from hearth.hub.http_fetch import display_url, probe_size

    path = urllib.parse.urlsplit(url).path
    filename = urllib.parse.unquote(path.rsplit("/", 1)[-1])
    if not filename.lower().endswith(".gguf"):
        raise InvalidRequest(f"{display_url(url)} does not name a .gguf file; hearth pulls GGUF "
                             "models (download other files yourself and use 'hearth create')")
    if quants.split_parts(filename):
        raise InvalidRequest(f"{filename} is one part of a split GGUF; hearth pulls single-file "
                             "GGUFs only (merge the parts with llama-gguf-split --merge first)")
    from hearth.hub.gguf_peek import peek_remote

    name = name_from_filename(filename)
    size = probe_size(url)
    # The URL states no license; the file's header usually does (one small ranged request).
    header = peek_remote(url)
    if header.not_gguf:
        raise InvalidRequest(f"{display_url(url)} is not a GGUF file (its first bytes are not a "
                             "GGUF header); nothing was downloaded")
    plan = PullPlan(name=name, source=f"url:{display_url(url)}", size=size,
                    license_id=header.license_id, context_length=header.context_length,
                    fetch=lambda ctx: fetch_url(ctx, plan, url, None), named_from_file=True)
    return plan


def fetch_url(ctx: FetchContext, plan: PullPlan, url: str, digest: str | None,
              headers: dict[str, str] | None = None, parameters: dict | None = None) -> StoredModel:
    from hearth.hub.transfer import download_to_blob

    status = f"pulling {digest[7:19]}" if digest else f"pulling {url.rsplit('/', 1)[-1][:40]}"
    got, size = download_to_blob(ctx.store, url, expected_digest=digest, size=plan.size,
                                 headers=headers, progress=ctx.progress, status=status,
                                 max_speed=ctx.max_speed, cancelled=ctx.cancelled)
    return save_pulled(ctx, plan, [Layer(MediaType.MODEL, got, size)], parameters)


def local_plan(text: str) -> PullPlan:
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise InvalidRequest(f"{text}: no such file (a local model must be a .gguf file)")
    from hearth.gguf import read_gguf

    info = read_gguf(path)  # a bad file is refused before anything is copied
    name = name_from_filename(path.name)
    plan = PullPlan(name=name, source=f"file:{path.resolve()}", size=path.stat().st_size,
                    license_id=info.license, context_length=info.context_length or None,
                    fetch=lambda ctx: import_local(ctx, plan, path), downloads=False,
                    named_from_file=True)
    return plan


def import_local(ctx: FetchContext, plan: PullPlan, path: Path) -> StoredModel:
    from hearth.store.importer import import_model_file

    status = f"copying {path.name}"
    total = plan.size
    done = 0

    def on_bytes(count: int) -> None:
        nonlocal done
        done += count
        ctx.progress(ProgressResponse(status=status, total=total, completed=done))

    try:
        layer, _info = import_model_file(ctx.store, path, on_bytes=on_bytes)
    except OSError as exc:
        raise DownloadFailed(f"cannot read {path}: {exc.strerror}") from exc
    return save_pulled(ctx, plan, [layer])
