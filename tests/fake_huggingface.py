"""A small stand-in for the Hugging Face Hub on loopback ports, speaking the routes
``huggingface_hub`` and hearth use:

- ``GET /api/models/{owner}/{repo}[/revision/{rev}]`` (``?blobs=true`` adds sizes and LFS
  sha256): model info with siblings, cardData, tags, gguf, sha.
- ``GET|HEAD /{owner}/{repo}/resolve/{rev}/{path}``: small files directly; LFS files as a 302
  to a separate "CDN" server (another port, so a bearer token must not follow), with
  X-Repo-Commit, ETag, X-Linked-Etag and X-Linked-Size as the Hub sends them.

Errors carry ``X-Error-Code`` (RepoNotFound, GatedRepo, RevisionNotFound) like the Hub's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from tests.file_server import FileServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    card: dict = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    gguf: dict | None = None
    private: bool = False
    gated: bool = False
    #: Files whose advertised LFS sha256 is deliberately wrong.
    lie_about: set[str] = field(default_factory=set)

    @staticmethod
    def is_lfs(path: str) -> bool:
        return path.endswith(".gguf")


class FakeHub:
    def __init__(self, token: str | None = None) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.token = token
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.cdn = FileServer()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                hub.handle(self)

            def do_HEAD(self) -> None:  # noqa: N802
                hub.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add_repo(self, repo_id: str, repo: FakeRepo) -> None:
        self.repos[repo_id.lower()] = repo
        for path, data in repo.files.items():
            if repo.is_lfs(path):
                self.cdn.add(f"/cdn/{hashlib.sha256(data).hexdigest()}", data)

    def cdn_gets(self) -> int:
        return sum(1 for method, *_ in self.cdn.requests if method == "GET")

    # -- answering ---------------------------------------------------------------------------

    def _send(self, request: BaseHTTPRequestHandler, status: int, body: bytes = b"",
              headers: dict[str, str] | None = None) -> None:
        request.send_response(status)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)

    def _error(self, request: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
        self._send(request, status, json.dumps({"error": message}).encode(),
                   {"Content-Type": "application/json", "X-Error-Code": code})

    def _authorized(self, request: BaseHTTPRequestHandler) -> bool:
        return self.token is not None and request.headers.get("Authorization") == f"Bearer {self.token}"

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        self.requests.append((request.command, parts.path, dict(request.headers.items())))
        segments = [unquote(s) for s in parts.path.strip("/").split("/")]
        if segments[:2] == ["api", "models"] and len(segments) >= 4:
            repo_id = f"{segments[2]}/{segments[3]}"
            revision = segments[5] if len(segments) >= 6 and segments[4] == "revision" else "main"
            self._model_info(request, repo_id, revision, "blobs=true" in parts.query)
            return
        if len(segments) >= 5 and segments[2] == "resolve":
            repo_id = f"{segments[0]}/{segments[1]}"
            self._resolve(request, repo_id, segments[3], "/".join(segments[4:]))
            return
        self._error(request, 404, "EntryNotFound", "no such route")

    def _repo(self, request: BaseHTTPRequestHandler, repo_id: str) -> FakeRepo | None:
        repo = self.repos.get(repo_id.lower())
        if repo is None or (repo.private and not self._authorized(request)):
            self._error(request, 401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _model_info(self, request: BaseHTTPRequestHandler, repo_id: str, revision: str, blobs: bool) -> None:
        repo = self._repo(request, repo_id)
        if repo is None:
            return
        if revision not in ("main", COMMIT):
            self._error(request, 404, "RevisionNotFound", "Invalid rev id")
            return
        siblings = []
        for path, data in repo.files.items():
            sibling: dict = {"rfilename": path}
            if blobs:
                sibling["size"] = len(data)
                sibling["blobId"] = hashlib.sha1(data).hexdigest()
                if repo.is_lfs(path):
                    sha = hashlib.sha256(data).hexdigest()
                    if path in repo.lie_about:
                        sha = hashlib.sha256(b"something else").hexdigest()
                    sibling["lfs"] = {"size": len(data), "sha256": sha, "pointerSize": 134}
            siblings.append(sibling)
        info = {"_id": "x", "id": repo_id, "sha": COMMIT, "private": repo.private,
                "gated": "manual" if repo.gated else False, "tags": ["gguf", *repo.tags],
                "cardData": repo.card, "siblings": siblings, "library_name": "gguf"}
        if repo.gguf is not None:
            info["gguf"] = repo.gguf
        self._send(request, 200, json.dumps(info).encode(), {"Content-Type": "application/json"})

    def _resolve(self, request: BaseHTTPRequestHandler, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(request, repo_id)
        if repo is None:
            return
        if repo.gated and not self._authorized(request):
            self._error(request, 403, "GatedRepo", "Access to this model is restricted")
            return
        data = repo.files.get(path)
        if data is None:
            self._error(request, 404, "EntryNotFound", "Entry not found")
            return
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
        if repo.is_lfs(path):
            sha = hashlib.sha256(data).hexdigest()
            cdn_port = self.cdn.server.server_address[1]
            headers.update({"X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                            "Location": f"http://localhost:{cdn_port}/cdn/{sha}"})
            self._send(request, 302, b"", headers)
            return
        self._send(request, 200, data, headers)


@contextmanager
def fake_hub(token: str | None = None) -> Iterator[FakeHub]:
    hub = FakeHub(token)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (hub.server, hub.cdn.server)]
    for thread in threads:
        thread.start()
    try:
        yield hub
    finally:
        for server in (hub.server, hub.cdn.server):
            server.shutdown()
            server.server_close()
