"""Safe defaults for every request, as one ASGI middleware in front of the app.

- Host header: only loopback names and addresses, the address the server is bound to, and
  HEARTH_ALLOWED_HOSTS; anything else is 403. This defeats DNS rebinding, where a web page on
  evil.example resolves its own name to 127.0.0.1 to reach this server from the browser.
- API key: with HEARTH_API_KEY set, every route except ``GET /``, ``GET /api/version`` and the
  web app's static files (``GET /app/...``, public code with no data in it; a browser cannot
  send the key before the app has loaded) needs ``Authorization: Bearer KEY`` or, as Anthropic's
  SDKs send it, ``x-api-key: KEY`` (401 otherwise).
  CORS preflights pass, as browsers send them without credentials.
- Body size: over HEARTH_MAX_REQUEST_BYTES is 413, whether announced by Content-Length or
  discovered while reading a chunked body. Blob uploads stream to disk and are exempt.
- Body text: a JSON string holding a lone UTF-16 surrogate is 400 (``body_check.py``), before
  any route could choke on it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from hearth import config
from hearth.server.error_shapes import shapes_of

OPEN_ROUTES = {("GET", "/"), ("HEAD", "/"), ("GET", "/api/version")}
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def host_name(header: str) -> str:
    """The host part of a Host header: ``[::1]:11435`` -> ``::1``, ``Example:80`` -> ``example``."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    if header.count(":") == 1:
        return header.split(":", 1)[0]
    return header


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def key_given(headers: dict[str, str], key: str) -> bool:
    """``Authorization: Bearer KEY`` (OpenAI's and Ollama's clients, Claude Code), or
    ``x-api-key: KEY`` (Anthropic's SDKs); either one right is enough."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    given = [value for value in (bearer, headers.get("x-api-key", "").strip()) if value]
    return any(hmac.compare_digest(value.encode(), key.encode()) for value in given)


class Guard:
    def __init__(self, app: Any, bind_host: str = "127.0.0.1") -> None:
        self.app = app
        self.bind_host = host_name(bind_host)

    def host_allowed(self, header: str | None) -> bool:
        if not header:
            return False
        name = host_name(header)
        if is_loopback(name):
            return True
        if self.bind_host not in ("0.0.0.0", "::", "") and name == self.bind_host:
            return True
        for allowed in config.allowed_hosts():
            allowed = allowed.lower()
            if allowed == "*" or name == allowed or (allowed.startswith(".") and name.endswith(allowed)):
                return True
        return False

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path, method = scope["path"], scope["method"]
        if not self.host_allowed(headers.get("host")):
            await reject(send, scope, 403, "host not allowed: add it to HEARTH_ALLOWED_HOSTS to reach "
                                          "this server by that name")
            return
        key = config.api_key()
        is_preflight = method == "OPTIONS" and "access-control-request-method" in headers
        is_app_file = method in ("GET", "HEAD") and path.startswith("/app/")
        needs_key = key and (method, path) not in OPEN_ROUTES and not is_preflight and not is_app_file
        if needs_key and not key_given(headers, key):
            await reject(send, scope, 401, "missing or wrong API key: send 'Authorization: Bearer "
                                          "<HEARTH_API_KEY>' (or 'x-api-key: <HEARTH_API_KEY>')",
                         {"www-authenticate": "Bearer"})
            return
        if path.startswith("/api/blobs/"):
            await self.app(scope, receive, send)
            return
        limit = config.max_request_bytes()
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await reject(send, scope, 413, f"request body too large: {declared} bytes, limit {limit} "
                                          "(HEARTH_MAX_REQUEST_BYTES)")
            return
        if method in ("POST", "PUT", "PATCH", "DELETE") and "json" not in headers.get("content-type", ""):
            # Ollama reads every body as JSON whatever the content type (curl -d sends a form type).
            scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k.lower() != b"content-type"]
                         + [(b"content-type", b"application/json")])
        await self._limited(scope, receive, send, path, limit)

    async def _limited(self, scope: dict, receive: Any, send: Any, path: str, limit: int) -> None:
        """Pass the body through while counting it; past the limit answer 413 ourselves and
        tell the app the client left, dropping whatever the app then tries to send. The body is
        held until its end (the app reads it whole anyway) so its text can be checked first."""
        from hearth.server.body_check import lone_surrogate_path

        received = 0
        rejected = False
        parts: list[bytes] = []

        async def limited_receive() -> dict:
            nonlocal received, rejected
            while True:
                message = await receive()
                if message["type"] != "http.request" or rejected:
                    return message
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    rejected = True
                    await reject(send, scope, 413, f"request body too large: over {limit} bytes "
                                                  "(HEARTH_MAX_REQUEST_BYTES)")
                    return {"type": "http.disconnect"}
                parts.append(chunk)
                if message.get("more_body", False):
                    continue
                body = b"".join(parts)
                parts.clear()
                where = lone_surrogate_path(body)
                if where is not None:
                    rejected = True
                    await reject(send, scope, 400, f"invalid text in request body at {where}: a lone "
                                                  "UTF-16 surrogate (like \\ud800) is not valid Unicode")
                    return {"type": "http.disconnect"}
                return {"type": "http.request", "body": body, "more_body": False}

        async def guarded_send(message: dict) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


async def reject(send: Any, scope: dict, status: int, message: str,
                 extra: dict[str, str] | None = None) -> None:
    data = json.dumps(shapes_of(scope.get("app")).body(scope.get("path", ""), status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
