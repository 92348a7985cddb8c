"""Hugging Face repositories: which GGUF file a name means, its size, sha256 and license.

``hf.co/OWNER/REPO[:QUANT]`` and ``https://huggingface.co/OWNER/REPO[/blob|resolve/REV/FILE]``
are looked up with ``huggingface_hub`` (one ``model_info`` call with file metadata gives the
files, their LFS sha256 and sizes, the commit and the card's license). The file itself is
fetched by ``hub/transfer.py`` from the URL ``hf_hub_url`` names, so resume, progress and
verification are the same as for every other source. HF_ENDPOINT and HF_TOKEN are read at
call time (huggingface_hub reads HF_ENDPOINT once, at import).
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from dataclasses import dataclass, field

from hearth.errors import DownloadFailed, InvalidRequest, ModelNotFound
from hearth.hub import quants
from hearth.names import ModelName
from hearth.quantization import DEFAULT_QUANT

DEFAULT_ENDPOINT = "https://huggingface.co"
SHORT_HOSTS = ("hf.co", "huggingface.co")
LICENSE_FILES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "LICENSE.TXT")
MAX_LICENSE_BYTES = 1 << 20


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token() -> str | None:
    value = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if value:
        return value.strip()
    try:  # a token saved by `hf auth login`
        from huggingface_hub.utils._auth import _get_token_from_file

        return _get_token_from_file()
    except Exception:  # noqa: BLE001 - no saved token is the normal case
        return None


def auth_headers() -> dict[str, str]:
    value = token()
    return {"Authorization": f"Bearer {value}"} if value else {}


@dataclass(frozen=True)
class HFReference:
    """What the user asked for: a repository, and maybe a quantization or one file in it."""

    repo_id: str  # as typed (the Hub's ids keep their case)
    quant: str | None = None
    filename: str | None = None
    revision: str | None = None

    def local_name(self, chosen_file: str | None = None) -> ModelName:
        owner, repo = self.repo_id.split("/", 1)
        tag = self.quant or (quants.quant_of(chosen_file) if self.filename and chosen_file else None)
        return ModelName.parse(f"hf.co/{owner}/{repo}:{(tag or 'latest').lower()}")


def _hf_hosts() -> set[str]:
    hosts = {"huggingface.co", "www.huggingface.co", "hf.co"}
    hosts.add(urllib.parse.urlsplit(endpoint()).netloc.lower())
    return hosts


def parse_reference(text: str) -> HFReference | None:
    """An ``HFReference`` for Hugging Face names and URLs, None for anything else."""
    text = text.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        parts = urllib.parse.urlsplit(text)
        if parts.netloc.lower() not in _hf_hosts():
            return None
        base_path = urllib.parse.urlsplit(endpoint()).path.rstrip("/")
        path = parts.path[len(base_path):] if base_path and parts.path.startswith(base_path) else parts.path
        segments = [urllib.parse.unquote(s) for s in path.strip("/").split("/") if s]
        if len(segments) < 2 or segments[0] in ("api", "datasets", "spaces"):
            raise InvalidRequest(f"'{text}' is not a Hugging Face model repository URL "
                                 "(expected https://huggingface.co/OWNER/REPO)")
        repo_id = f"{segments[0]}/{segments[1]}"
        _check_repo_id(repo_id, text)
        rest = segments[2:]
        if not rest:
            return HFReference(repo_id)
        if rest[0] in ("blob", "resolve", "tree") and len(rest) >= 2:
            filename = "/".join(rest[2:]) or None
            if rest[0] != "tree" and not filename:
                raise InvalidRequest(f"'{text}' names no file")
            return HFReference(repo_id, filename=filename, revision=rest[1])
        raise InvalidRequest(f"'{text}' is not a Hugging Face model repository URL")
    for host in SHORT_HOSTS:
        if lowered.startswith(host + "/"):
            rest = text[len(host) + 1:]
            quant = None
            if ":" in rest:
                rest, quant = rest.rsplit(":", 1)
                if not quant:
                    raise InvalidRequest(f"'{text}': empty quantization after ':'")
            _check_repo_id(rest, text)
            if quant and quant.lower() == "latest":
                quant = None
            return HFReference(rest, quant=quant.upper() if quant else None)
    return None


def _check_repo_id(repo_id: str, text: str) -> None:
    # The name rules of ModelName apply: the repository becomes part of a store path.
    owner, _, repo = repo_id.partition("/")
    if not owner or not repo or "/" in repo or not ModelName.is_valid(f"hf.co/{owner}/{repo}"):
        raise InvalidRequest(f"'{text}' is not a valid Hugging Face repository (expected OWNER/REPO)")


@dataclass
class HFFile:
    path: str
    size: int | None
    sha256: str | None

    @property
    def digest(self) -> str | None:
        return f"sha256:{self.sha256}" if self.sha256 else None


@dataclass
class HFRepo:
    repo_id: str
    revision: str
    files: list[HFFile]
    license_id: str | None = None
    context_length: int | None = None
    gated: bool = False
    extra: dict = field(default_factory=dict)

    def file(self, path: str) -> HFFile | None:
        return next((f for f in self.files if f.path == path), None)

    def url(self, path: str) -> str:
        from huggingface_hub import hf_hub_url

        return hf_hub_url(self.repo_id, path, revision=self.revision, endpoint=endpoint())

    def license_file(self) -> HFFile | None:
        for name in LICENSE_FILES:
            found = self.file(name)
            if found and (found.size or 0) <= MAX_LICENSE_BYTES:
                return found
        return None


def repo_info(repo_id: str, revision: str | None = None) -> HFRepo:
    """Files (with LFS sha256 and size), commit and license of a model repository."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi(endpoint=endpoint(), token=token() or False)
    where = f"hf.co/{repo_id}"
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except GatedRepoError:
        raise DownloadFailed(f"{where} is gated: accept its terms on the Hugging Face website, then "
                             "set HF_TOKEN to a token of that account") from None
    except RepositoryNotFoundError:
        raise ModelNotFound(where, "Hugging Face has no such repository (a private one needs "
                                   "HF_TOKEN)") from None
    except RevisionNotFoundError:
        raise ModelNotFound(where, f"the repository has no revision '{revision}'") from None
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DownloadFailed(f"Hugging Face ({endpoint()}) answered HTTP {status} for {where}") from None
    except (OSError, ValueError, *_transport_errors()) as exc:
        raise DownloadFailed(f"cannot reach Hugging Face at {endpoint()}: {_short(exc)}") from None
    files = []
    for sibling in info.siblings or []:
        lfs = sibling.lfs
        size = lfs.size if lfs else sibling.size
        files.append(HFFile(sibling.rfilename, size, lfs.sha256 if lfs else None))
    gguf_meta = info.gguf if isinstance(info.gguf, dict) else {}
    context = gguf_meta.get("context_length")
    return HFRepo(
        repo_id=info.id or repo_id,
        revision=info.sha or revision or "main",
        files=files,
        license_id=declared_license(info),
        context_length=context if isinstance(context, int) and context > 0 else None,
        gated=bool(info.gated),
    )


def _transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP client's connection errors, which are not OSErrors: huggingface_hub 1.x uses
    httpx, 2.x httpx2 (0.x used requests, whose errors are OSErrors)."""
    import importlib

    found: list[type[Exception]] = []
    for module in ("httpx", "httpx2"):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(importlib.import_module(module).HTTPError)
    return tuple(found)


def declared_license(info: object) -> str | None:
    """The repository's license id: the card's ``license`` (its ``license_name`` when that is
    "other"), else a ``license:xxx`` tag."""
    card = getattr(info, "card_data", None)
    license_id = None
    if card is not None:
        value = card.get("license") if hasattr(card, "get") else getattr(card, "license", None)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str) and value:
            license_id = value
        if license_id == "other":
            name = card.get("license_name") if hasattr(card, "get") else None
            if isinstance(name, str) and name:
                license_id = name
    if not license_id:
        for tag in getattr(info, "tags", None) or []:
            if isinstance(tag, str) and tag.startswith("license:"):
                license_id = tag[len("license:"):]
                break
    return license_id or None


def choose_gguf(repo: HFRepo, reference: HFReference) -> HFFile:
    """The one GGUF file a reference means (refusing split files and ambiguity clearly)."""
    where = f"hf.co/{repo.repo_id}"
    if reference.filename:
        found = repo.file(reference.filename)
        if found is None:
            raise ModelNotFound(f"{where}/{reference.filename}", "the repository has no such file")
        if not found.path.lower().endswith(".gguf"):
            raise InvalidRequest(f"{found.path} in {where} is not a GGUF file")
        _refuse_split(found, where)
        return found
    ggufs = [f for f in repo.files if f.path.lower().endswith(".gguf")
             and not f.path.rsplit("/", 1)[-1].lower().startswith("mmproj")]
    if not ggufs:
        raise ModelNotFound(where, "the repository has no GGUF files (hearth runs GGUF models)")
    by_quant: dict[str, list[HFFile]] = {}
    for file in ggufs:
        quant = quants.quant_of(file.path)
        if quant:
            by_quant.setdefault(quant, []).append(file)
    available = quants.sort_quants(list(by_quant))
    if reference.quant:
        wanted = reference.quant.upper()
        if wanted not in by_quant:
            listed = ", ".join(available) or "none named in the file names"
            raise ModelNotFound(f"{where}:{reference.quant}",
                                f"the repository has these quantizations: {listed}")
        chosen = wanted
    elif available:
        chosen = quants.closest(DEFAULT_QUANT, available)  # type: ignore[assignment]
    else:
        if len(ggufs) > 1:
            names = ", ".join(f.path for f in ggufs[:10])
            raise InvalidRequest(f"{where} has several GGUF files without a quantization in their "
                                 f"names ({names}); pull one by its URL")
        _refuse_split(ggufs[0], where)
        return ggufs[0]
    candidates = sorted(by_quant[chosen], key=lambda f: (quants.split_parts(f.path) is not None,
                                                         len(f.path), f.path))
    _refuse_split(candidates[0], where)
    return candidates[0]


def _refuse_split(file: HFFile, where: str) -> None:
    parts = quants.split_parts(file.path)
    if parts:
        raise InvalidRequest(f"{file.path} in {where} is split into {parts} files; hearth pulls "
                             "single-file GGUFs only (merge them with llama-gguf-split --merge, then "
                             "'hearth create NAME --from FILE.gguf')")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
