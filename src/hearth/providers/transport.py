"""HTTP to one provider's OpenAI-compatible API, with the failures turned into HearthErrors.

- HEARTH_OFFLINE=1: refused before anything is sent (``RemoteDisabled``).
- 401/403: ``ProviderAuthFailed``; 404: ``ModelNotFound``; other 4xx: ``InvalidRequest``.
- 429: waits out Retry-After when it is at most HEARTH_PROVIDER_MAX_WAIT and a retry is left,
  else ``ProviderRateLimited`` (with Retry-After, which the server passes on).
- 5xx and refused or reset connections: bounded retries (HEARTH_PROVIDER_RETRIES) with
  exponential backoff, then ``ProviderError``.
- No answer within the timeout: ``ProviderTimeout``, not retried (it would only wait longer).

Retries happen only before the response starts: a stream that breaks off mid-answer is an
error, never replayed, since part of it has already been shown. The API key goes only into the
Authorization header; every message taken from a provider is redacted before it is raised.
Built on ``http.client`` so that no HTTP library is needed for it.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import math
import random
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from hearth import config
from hearth.errors import (
    HearthError,
    InvalidRequest,
    ModelNotFound,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RemoteDisabled,
)
from hearth.providers.directory import Provider
from hearth.providers.limits import provider_turn
from hearth.version import __version__

log = logging.getLogger("hearth.providers")

Cancelled = Callable[[], bool] | None
MAX_ERROR_BYTES = 64 * 1024
MAX_LINE_BYTES = 8 * 1024 * 1024
RETRIED_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")


class IncompleteStream(ProviderError):
    """The provider closed a stream without its end marker."""


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def provider_message(data: bytes, limit: int = 300) -> str:
    """The provider's own explanation from an error body (OpenAI's shape, or text)."""
    text = data.decode("utf-8", errors="replace")
    message: Any = text
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message") or error.get("msg") or error
        elif isinstance(error, list) and error and isinstance(error[0], dict):
            error = error[0].get("msg") or error[0]
        message = error if error is not None else text
    flat = " ".join(str(message).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def retry_after_seconds(headers: Any) -> int | None:
    """Retry-After (seconds or an HTTP date), or retry-after-ms; None when absent or unreadable."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0, math.ceil(float(millis) / 1000))
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, math.ceil(moment.timestamp() - time.time()))


def _sleep(seconds: float, cancelled: Cancelled) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if cancelled is not None and cancelled():
            raise ProviderError("cancelled while waiting to retry")
        time.sleep(min(left, 0.1))


def _backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2**attempt) + random.uniform(0, 0.25)


def _proxy_for(scheme: str, host: str) -> str | None:
    import urllib.request

    if host in ("localhost", "127.0.0.1", "::1") or host.startswith("127."):
        return None
    proxy = urllib.request.getproxies_environment().get(scheme)
    if not proxy or urllib.request.proxy_bypass_environment(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class Transport:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name
        self.timeout = provider.timeout_seconds()
        parts = urlsplit(provider.base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.proxy = _proxy_for(self.scheme, self.host)

    # -- connections ----------------------------------------------------------------------

    def _connection(self) -> tuple[http.client.HTTPConnection, str, dict[str, str]]:
        """A connection, the request-target prefix, and headers a proxy needs."""
        extra: dict[str, str] = {}
        if self.proxy is None:
            if self.scheme == "https":
                return (http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                    context=ssl.create_default_context()), "", extra)
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout), "", extra
        proxy = urlsplit(self.proxy)
        if proxy.username:
            token = base64.b64encode(f"{unquote(proxy.username)}:{unquote(proxy.password or '')}".encode())
            extra["Proxy-Authorization"] = "Basic " + token.decode()
        proxy_port = proxy.port or 80
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(proxy.hostname or "", proxy_port, timeout=self.timeout,
                                                     context=ssl.create_default_context())
            connection.set_tunnel(self.host, self.port, headers=extra)
            return connection, "", {}
        connection = http.client.HTTPConnection(proxy.hostname or "", proxy_port, timeout=self.timeout)
        return connection, f"http://{self.host}:{self.port}", extra

    def _headers(self, key: str, stream: bool) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": f"hearth/{__version__}",
                   "Accept": "text/event-stream" if stream else "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _key(self) -> str:
        key = self.provider.key()
        if not key and self.provider.needs_key:
            where = self.provider.api_key_env or "api_key_env"
            raise ProviderAuthFailed(f"{self.name} needs an API key: set {where} (or api_key_env / "
                                     f"api_key in [providers.{self.name}] of providers.toml)")
        return key

    # -- requests -------------------------------------------------------------------------

    def _open(self, method: str, route: str, body: Any, *, stream: bool, model: str | None,
              cancelled: Cancelled) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send the request, retrying what is worth retrying; the response has a 2xx status."""
        if config.offline():
            raise RemoteDisabled(f"refusing to call {self.name} ({self.provider.endpoint}): "
                                 "HEARTH_OFFLINE=1 forbids remote calls; nothing was sent")
        key = self._key()
        payload = None if body is None else json.dumps(body).encode()
        retries, max_wait = config.provider_retries(), config.provider_max_wait()
        attempt = 0
        while True:
            connection, prefix, proxy_headers = self._connection()
            headers = self._headers(key, stream) | proxy_headers
            log.info("remote call: %s %s /%s", self.name, method, route)
            try:
                connection.request(method, f"{prefix}{self.base_path}/{route}", body=payload, headers=headers)
                response = connection.getresponse()
            except TimeoutError:
                connection.close()
                raise ProviderTimeout(f"{self.name} did not answer within {self.timeout:g}s "
                                      f"({self.provider.endpoint})") from None
            except ssl.SSLError as exc:
                connection.close()
                raise ProviderError(f"secure connection to {self.host} failed: "
                                    f"{redact(str(exc.reason or exc), key)}") from None
            except socket.gaierror:
                connection.close()
                raise ProviderError(f"cannot reach {self.name}: the name {self.host} does not resolve") from None
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                if attempt < retries:
                    _sleep(_backoff(attempt), cancelled)
                    attempt += 1
                    continue
                reason = redact(str(exc) or type(exc).__name__, key)
                raise ProviderError(f"cannot reach {self.name} at {self.provider.endpoint} after "
                                    f"{attempt + 1} attempt(s): {reason}") from None
            if response.status < 400:
                return connection, response
            try:
                data = response.read(MAX_ERROR_BYTES)
            except (OSError, http.client.HTTPException):
                data = b""
            finally:
                connection.close()
            wait = retry_after_seconds(response.headers)
            retried = response.status in RETRIED_STATUSES or response.status >= 500
            if retried and attempt < retries and (wait is None or wait <= max_wait):
                _sleep(wait if wait is not None else _backoff(attempt), cancelled)
                attempt += 1
                continue
            raise self._error(response.status, redact(provider_message(data), key), wait, attempt, model)

    def _error(self, status: int, message: str, wait: int | None, attempt: int,
               model: str | None) -> HearthError:
        said = f": {message}" if message else ""
        if status in (401, 403):
            source = self.provider.key_source or "a key"
            return ProviderAuthFailed(f"{self.name} refused the API key (HTTP {status}){said}; "
                                      f"check {source}")
        if status == 404 and model is not None:
            return ModelNotFound(f"{self.name}/{model}", f"{self.name} answered 404{said}; "
                                 f"see `hearth list --remote {self.name}`")
        if status == 429:
            when = f"; retry after {wait}s" if wait is not None else ""
            return ProviderRateLimited(f"{self.name} rate limit reached (HTTP 429){said}{when}", wait)
        if status >= 500 or status in RETRIED_STATUSES:
            return ProviderError(f"{self.name} failed with HTTP {status} after {attempt + 1} "
                                 f"attempt(s){said}")
        if 400 <= status < 500:
            return InvalidRequest(f"{self.name} refused the request (HTTP {status}){said}")
        return ProviderError(f"{self.name} answered HTTP {status}{said}")

    def _read_json(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> Any:
        try:
            data = response.read()
        except TimeoutError:
            raise ProviderTimeout(f"{self.name} stopped sending its answer for {self.timeout:g}s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderError(f"{self.name} dropped the connection: {type(exc).__name__}") from None
        finally:
            connection.close()
        try:
            return json.loads(data)
        except ValueError:
            raise ProviderError(f"{self.name} answered with something that is not JSON") from None

    def get_json(self, route: str, cancelled: Cancelled = None) -> Any:
        with provider_turn(self.name, self.provider.concurrency(), self.timeout, cancelled):
            connection, response = self._open("GET", route, None, stream=False, model=None,
                                              cancelled=cancelled)
            return self._read_json(connection, response)

    def post_json(self, route: str, body: Any, model: str | None = None, cancelled: Cancelled = None) -> Any:
        with provider_turn(self.name, self.provider.concurrency(), self.timeout, cancelled):
            connection, response = self._open("POST", route, body, stream=False, model=model,
                                              cancelled=cancelled)
            return self._read_json(connection, response)

    def post_events(self, route: str, body: Any, model: str | None = None,
                    cancelled: Cancelled = None) -> Iterator[dict[str, Any]]:
        """The server-sent events of a streamed answer, as parsed JSON objects.

        Ends at ``data: [DONE]``; a stream that ends without it raises ``IncompleteStream``.
        Closing the iterator closes the connection, which tells the provider to stop.
        """
        with provider_turn(self.name, self.provider.concurrency(), self.timeout, cancelled):
            connection, response = self._open("POST", route, body, stream=True, model=model,
                                              cancelled=cancelled)
            try:
                yield from self._events(response, cancelled)
            finally:
                connection.close()

    def _events(self, response: http.client.HTTPResponse, cancelled: Cancelled) -> Iterator[dict[str, Any]]:
        if response.headers.get("content-type", "").startswith("application/json"):
            # A provider that ignored "stream": the whole answer in one object.
            yield self._read_json_body(response)
            return
        data: list[bytes] = []
        while True:
            if cancelled is not None and cancelled():
                return
            try:
                line = response.readline(MAX_LINE_BYTES)
            except TimeoutError:
                raise ProviderTimeout(f"{self.name} sent nothing for {self.timeout:g}s in the middle "
                                      "of the answer") from None
            except (OSError, http.client.HTTPException) as exc:
                raise IncompleteStream(f"{self.name} dropped the connection in the middle of the "
                                       f"answer ({type(exc).__name__})") from None
            ended = not line
            line = line.rstrip(b"\r\n")
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
                continue
            # A blank line ends an event; so does the end of the stream.
            if data and not line:
                text = b"\n".join(data).decode("utf-8", errors="replace")
                data = []
                if text.strip() == "[DONE]":
                    return
                yield self._event(text)
            # Anything else is a comment (": keep-alive"), an event:/id: field or a blank line.
            if ended:
                raise IncompleteStream(f"{self.name} closed the connection before the answer was complete")

    def _event(self, text: str) -> dict[str, Any]:
        try:
            event = json.loads(text)
        except ValueError:
            raise ProviderError(f"{self.name} sent an event that is not JSON") from None
        if not isinstance(event, dict):
            raise ProviderError(f"{self.name} sent an event that is not a JSON object")
        if "error" in event and not event.get("choices"):
            message = redact(provider_message(json.dumps(event).encode()), self.provider.key())
            raise ProviderError(f"{self.name} reported an error in the middle of the answer: {message}")
        return event

    def _read_json_body(self, response: http.client.HTTPResponse) -> dict[str, Any]:
        try:
            value = json.loads(response.read())
        except (ValueError, OSError, http.client.HTTPException):
            raise ProviderError(f"{self.name} answered with something that is not JSON") from None
        if not isinstance(value, dict):
            raise ProviderError(f"{self.name} answered with something that is not a JSON object")
        return value
