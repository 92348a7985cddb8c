"""A small registry v2 server on loopback for the answers a real registry will not give:
manifests with hostile digests, blobs that are missing or hold the wrong bytes, a bearer-token
challenge with its token service, Basic auth, and blobs redirected to a second "storage" server.

    with FakeRegistry() as fake:
        fake.add_model("ns/tiny", "v1", gguf_bytes, license_text="Apache-2.0")
        fake.manifests[("ns/bad", "v1")] = b"..."      # any bytes, served as the manifest
        fake.blobs[digest] = b"wrong bytes"             # served for that digest
        fake.requests                                   # (method, path, headers) that arrived
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self, *, token: str | None = None, basic_auth: bool = False) -> None:
        self.token = token
        self.basic_auth = basic_auth
        self.manifests: dict[tuple[str, str], bytes] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.token_requests: list[dict[str, str]] = []
        self.redirect_blobs_to: FakeRegistry | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake.handle(self, body=True)

            def do_HEAD(self) -> None:  # noqa: N802
                fake.handle(self, body=False)

            def do_POST(self) -> None:  # noqa: N802
                fake.handle(self, body=True)

            def do_PUT(self) -> None:  # noqa: N802
                fake.handle(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def __enter__(self) -> FakeRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- content --------------------------------------------------------------------------

    def add_blob(self, data: bytes) -> dict[str, Any]:
        digest = digest_of(data)
        self.blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    def add_model(self, repository: str, tag: str, weights: bytes, *, license_text: str | None = None,
                  config: dict[str, Any] | None = None,
                  extra_layers: list[tuple[str, bytes]] = ()) -> dict[str, Any]:
        """An Ollama-style manifest (config, model layer, optional license layer); returns it."""
        config_bytes = json.dumps(config or {"model_format": "gguf", "model_family": "llama",
                                             "os": "linux", "architecture": "amd64"}).encode()
        layers = [{"mediaType": "application/vnd.ollama.image.model", **self.add_blob(weights)}]
        if license_text is not None:
            layers.append({"mediaType": "application/vnd.ollama.image.license",
                           **self.add_blob(license_text.encode())})
        layers += [{"mediaType": media_type, **self.add_blob(data)} for media_type, data in extra_layers]
        manifest = {"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                    "config": {"mediaType": CONFIG_TYPE, **self.add_blob(config_bytes)},
                    "layers": layers}
        self.manifests[(repository, tag)] = json.dumps(manifest).encode()
        return manifest

    def blob_gets(self, digest: str) -> int:
        return sum(1 for method, path, _ in self.requests if method == "GET" and path.endswith(digest))

    # -- serving --------------------------------------------------------------------------

    def handle(self, request: BaseHTTPRequestHandler, body: bool) -> None:
        parts = urllib.parse.urlsplit(request.path)
        with self._lock:
            self.requests.append((request.command, parts.path, dict(request.headers.items())))
        if parts.path == "/token":
            query = dict(urllib.parse.parse_qsl(parts.query))
            self.token_requests.append(query)
            self._send(request, 200, json.dumps({"token": self.token}).encode(), body,
                       {"Content-Type": "application/json"})
            return
        if parts.path.startswith("/storage/"):
            self._serve_blob(request, parts.path[len("/storage/"):], body)
            return
        if not self._authorized(request, parts.path, body):
            return
        if parts.path == "/v2/":
            self._send(request, 200, b"{}", body)
            return
        repository, kind, reference = self._route(parts.path)
        if kind == "manifests" and (repository, reference) in self.manifests:
            self._send(request, 200, self.manifests[(repository, reference)], body,
                       {"Content-Type": MANIFEST_TYPE})
        elif kind == "blobs" and self.redirect_blobs_to is not None and reference in self.blobs:
            self._send(request, 307, b"", body,
                       {"Location": f"{self.redirect_blobs_to.url}/storage/{reference}"})
        elif kind == "blobs":
            self._serve_blob(request, reference, body)
        else:
            self._error(request, 404, "MANIFEST_UNKNOWN", "manifest unknown", body)

    @staticmethod
    def _route(path: str) -> tuple[str, str, str]:
        # /v2/<ns>/<model>/<manifests|blobs>/<reference>
        pieces = path[len("/v2/"):].split("/") if path.startswith("/v2/") else []
        if len(pieces) >= 4:
            return "/".join(pieces[:-2]), pieces[-2], pieces[-1]
        return "", "", ""

    def _serve_blob(self, request: BaseHTTPRequestHandler, digest: str, body: bool) -> None:
        data = self.blobs.get(digest)
        if data is None:
            self._error(request, 404, "BLOB_UNKNOWN", "blob unknown to registry", body)
        else:
            self._send(request, 200, data, body, {"Content-Type": "application/octet-stream"})

    def _authorized(self, request: BaseHTTPRequestHandler, path: str, body: bool) -> bool:
        if self.basic_auth:
            self._error(request, 401, "UNAUTHORIZED", "authentication required", body,
                        {"WWW-Authenticate": 'Basic realm="fake"'})
            return False
        if self.token is None or request.headers.get("Authorization") == f"Bearer {self.token}":
            return True
        repository = self._route(path)[0] or "ns/model"
        challenge = (f'Bearer realm="{self.url}/token",service="fake-registry",'
                     f'scope="repository:{repository}:pull"')
        self._error(request, 401, "UNAUTHORIZED", "authentication required", body,
                    {"WWW-Authenticate": challenge})
        return False

    def _error(self, request: BaseHTTPRequestHandler, status: int, code: str, message: str, body: bool,
               headers: dict[str, str] | None = None) -> None:
        data = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._send(request, status, data, body, {"Content-Type": "application/json", **(headers or {})})

    @staticmethod
    def _send(request: BaseHTTPRequestHandler, status: int, data: bytes, body: bool,
              headers: dict[str, str] | None = None) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        if length:
            request.rfile.read(length)
        request.send_response(status)
        for key, value in (headers or {}).items():
            request.send_header(key, value)
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if body:
            request.wfile.write(data)
