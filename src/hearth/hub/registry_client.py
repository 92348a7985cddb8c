"""The OCI / Docker registry v2 HTTP protocol, as Ollama's registry speaks it.

One ``RegistryClient`` per repository. It answers the registry's bearer-token challenge
(``WWW-Authenticate: Bearer realm=...,service=...,scope=...``) by asking the token service
(anonymously, or with the user's ``docker login`` for that host: registry_credentials.py) and
retrying once, and keeps the token for the next calls; a Basic challenge is answered with the
``docker login`` directly. Credentials are sent only to the registry's own host: registries
redirect blob reads and uploads to storage hosts (S3, CDNs) that must not see them, so they
go in an "unredirected" header that urllib drops on redirects.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any

from hearth.errors import DownloadFailed, HearthError
from hearth.names import ModelName

# Ollama's own names for its registry; ``ollama.com/library/llama3`` is pulled from here.
OLLAMA_REGISTRY = "registry.ollama.ai"
OLLAMA_ALIASES = frozenset({"ollama.com", "www.ollama.com", OLLAMA_REGISTRY})
# Hosts that are not registries: hearth's own default and Hugging Face (served by hub/ sources).
NOT_REGISTRIES = frozenset({"hearth.local", "hf.co", "huggingface.co", "www.huggingface.co"})

MANIFEST_ACCEPT = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
])
MAX_MANIFEST_BYTES = 4 << 20
MAX_ERROR_BYTES = 64 << 10
TIMEOUT = 60.0

_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))')


def is_registry_host(host: str) -> bool:
    """A host part that names a registry: has a dot or a port, or is localhost (Docker's rule),
    so a provider's short name like ``openrouter/meta-llama/x`` is never taken for one."""
    host = host.lower()
    if host in NOT_REGISTRIES:
        return False
    return "." in host or ":" in host or host == "localhost"


def is_loopback(hostname: str) -> bool:
    return hostname in ("localhost", "::1") or hostname.startswith("127.")


@dataclass(frozen=True)
class RegistryRef:
    """Where a model name lives on a registry: base URL, repository path and tag."""

    host: str
    repository: str
    tag: str
    scheme: str

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def hostname(self) -> str:
        return self.host.rsplit(":", 1)[0] if ":" in self.host else self.host

    def manifest_url(self, reference: str | None = None) -> str:
        return f"{self.base_url}/v2/{self.repository}/manifests/{reference or self.tag}"

    def blob_url(self, digest: str) -> str:
        # Callers pass validated digests only (``validate_digest``) before a URL is built.
        return f"{self.base_url}/v2/{self.repository}/blobs/{digest}"

    def uploads_url(self) -> str:
        return f"{self.base_url}/v2/{self.repository}/blobs/uploads/"

    def __str__(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"


def registry_ref(name: ModelName, *, insecure: bool = False) -> RegistryRef:
    """https by default; plain http for loopback hosts or when the user said ``--insecure``."""
    host = OLLAMA_REGISTRY if name.host in OLLAMA_ALIASES else name.host
    hostname = host.rsplit(":", 1)[0] if ":" in host else host
    scheme = "http" if insecure or is_loopback(hostname) else "https"
    return RegistryRef(host, f"{name.namespace}/{name.model}", name.tag, scheme)


@dataclass
class RegistryResponse:
    status: int
    headers: Message
    body: bytes
    url: str

    def header(self, key: str) -> str:
        return self.headers.get(key, "") if self.headers is not None else ""


def registry_message(body: bytes) -> str:
    """The first message of a registry error body (``{"errors": [{"code", "message"}]}``)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", errors="replace").strip()
        return text.splitlines()[0][:200] if text else ""
    if isinstance(data, dict):
        errors = data.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            return str(first.get("message") or first.get("code") or "")[:200]
        if isinstance(data.get("error"), str):
            return data["error"][:200]
    return ""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {key.lower(): quoted if quoted or not bare else bare
              for key, quoted, bare in _CHALLENGE_PARAM.findall(rest)}
    return scheme.lower(), params


class _NoRedirectForHead(urllib.request.HTTPRedirectHandler):
    """A HEAD answered with a redirect already says the blob exists; following it would ask a
    storage host whose signed URL is only good for GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        if req.get_method() == "HEAD":
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class RegistryClient:
    def __init__(self, ref: RegistryRef, *, error: type[HearthError] = DownloadFailed,
                 action: str = "pull", timeout: float = TIMEOUT) -> None:
        self.ref = ref
        self.error = error
        self.action = action
        self.timeout = timeout
        self.token: str | None = None
        self.basic: str | None = None  # base64 user:password, once a Basic challenge asked for it
        self._opener = urllib.request.build_opener(_NoRedirectForHead())

    def _authorization(self) -> str | None:
        if self.token:
            return f"Bearer {self.token}"
        return f"Basic {self.basic}" if self.basic else None

    def auth_headers(self) -> dict[str, str]:
        """Headers for a blob download done elsewhere (hub/transfer.py drops them on a
        redirect to another host)."""
        authorization = self._authorization()
        return {"Authorization": authorization} if authorization else {}

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             data: Any = None, limit: int = MAX_ERROR_BYTES) -> RegistryResponse:
        """One request, with one retry after a bearer challenge. Never raises for an HTTP status;
        ``limit`` caps how much of the body is read (error and manifest bodies only)."""
        for attempt in range(2):
            response = self._send_once(method, url, headers or {}, data, limit)
            if response.status != 401 or attempt == 1:
                return response
            self._answer_challenge(response)
            if hasattr(data, "seek"):
                data.seek(0)
        return response

    def _send_once(self, method: str, url: str, headers: dict[str, str], data: Any,
                   limit: int) -> RegistryResponse:
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        request.add_header("User-Agent", "hearth")
        authorization = self._authorization()
        if authorization and urllib.parse.urlsplit(url).netloc == self.ref.host:
            request.add_unredirected_header("Authorization", authorization)
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(limit) if method != "HEAD" else b""
                return RegistryResponse(answer.status, answer.headers, body, answer.geturl())
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(MAX_ERROR_BYTES) if method != "HEAD" else b""
            return RegistryResponse(exc.code, exc.headers, body, url)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise self.error(f"cannot reach the registry at {self.ref.base_url}: {reason}") from exc

    def _answer_challenge(self, response: RegistryResponse) -> None:
        from hearth.hub.registry_credentials import basic_credentials, login_hint

        scheme, params = parse_challenge(response.header("WWW-Authenticate"))
        if scheme == "basic":
            if self.basic is not None:
                raise self.error(f"the registry at {self.ref.host} refused the user name and password "
                                 f"of your docker login; {login_hint(self.ref.host)}")
            self.basic = basic_credentials(self.ref.host)
            if self.basic is None:
                raise self.error(f"the registry at {self.ref.host} asks for a user name and password; "
                                 f"{login_hint(self.ref.host)}")
            return
        if scheme != "bearer" or not params.get("realm"):
            detail = registry_message(response.body) or "no usable authentication challenge"
            raise self.error(f"the registry at {self.ref.host} refused access to "
                             f"{self.ref.repository}: {detail}")
        self.token = self._fetch_token(params)

    def _fetch_token(self, params: dict[str, str]) -> str:
        realm = params["realm"]
        if urllib.parse.urlsplit(realm).scheme not in ("http", "https"):
            raise self.error(f"the registry at {self.ref.host} named an invalid token service: {realm}")
        scope = params.get("scope") or f"repository:{self.ref.repository}:{self.action}"
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        separator = "&" if "?" in realm else "?"
        request = urllib.request.Request(realm + separator + urllib.parse.urlencode(query),
                                         headers={"User-Agent": "hearth"})
        from hearth.hub.registry_credentials import basic_credentials

        # With a docker login for this registry the token service learns who is asking (and
        # grants private repositories and pushes); without one the token is anonymous.
        login = basic_credentials(self.ref.host)
        if login:
            request.add_unredirected_header("Authorization", f"Basic {login}")
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                body = answer.read(MAX_ERROR_BYTES)
        except urllib.error.HTTPError as exc:
            with exc:
                detail = registry_message(exc.read(MAX_ERROR_BYTES)) or f"HTTP {exc.code}"
            from hearth.hub.registry_credentials import login_hint

            hint = f"; {login_hint(self.ref.host)}" if exc.code in (401, 403) else ""
            raise self.error(f"the token service of {self.ref.host} refused a token for "
                             f"{scope}: {detail}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise self.error(f"cannot reach the token service {realm}: "
                             f"{getattr(exc, 'reason', exc)}") from exc
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            data = None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise self.error(f"the token service of {self.ref.host} sent no token")
        return token

    def failure(self, what: str, response: RegistryResponse) -> HearthError:
        detail = registry_message(response.body)
        suffix = f": {detail}" if detail else ""
        return self.error(f"{what} failed at {self.ref.host} (HTTP {response.status}){suffix}")
