"""The HTTP transport to a running ``hearth serve``: one connection per request over
``http.client`` (to keep the CLI's start fast), the API key header, JSON answers and NDJSON
streams, and the server's error answers turned back into hearth errors."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

from hearth import config
from hearth.errors import HearthError, LicenseNotAccepted, ModelNotFound

PROBE_TIMEOUT = 0.5


class ServerReportedError(HearthError):
    """An error the server reported; keeps its status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status


class ServerGone(HearthError):
    status_code = 503


class ServerTransport:
    """A connection to one hearth server: requests, JSON answers, NDJSON streams, and its
    error answers turned back into hearth errors."""

    def __init__(self, address: str | None = None, api_key: str | None = None, timeout: float = 600) -> None:
        self.address = address or config.host()
        host, _, port = self.address.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        self.port = int(port)
        self.api_key = config.api_key() if api_key is None else api_key
        self.timeout = timeout

    @classmethod
    def if_running(cls):  # type: ignore[no-untyped-def]
        """A client when a hearth server answers at HEARTH_HOST, else None."""
        try:
            client = cls(timeout=PROBE_TIMEOUT)
            status, _ = client._request("GET", "/api/version")
        except (OSError, ValueError, http.client.HTTPException):
            return None
        if status != 200:
            return None
        client.timeout = 600
        return client

    # -- transport ------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "hearth-cli"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        headers.update(extra or {})
        return headers

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        connection = self._connection()
        try:
            data = None if body is None else json.dumps(body).encode()
            connection.request(method, path, body=data, headers=self._headers())
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        try:
            status, data = self._request(method, path, body)
        except (OSError, http.client.HTTPException) as exc:
            raise ServerGone(f"the hearth server at {self.address} did not answer: {exc}") from exc
        if status >= 400:
            raise self._error(status, data, body)
        return json.loads(data) if data.strip() else {}

    @staticmethod
    def _error(status: int, data: bytes, body: Any = None) -> HearthError:
        parsed: Any = None
        try:
            parsed = json.loads(data)
            message = parsed.get("error") or f"HTTP {status}"
        except (ValueError, AttributeError):
            message = data.decode(errors="replace").strip() or f"HTTP {status}"
        if isinstance(message, dict):
            message = message.get("message", str(message))
        if status == 403 and isinstance(parsed, dict) and parsed.get("needs_acceptance"):
            license_info = parsed.get("license") if isinstance(parsed.get("license"), dict) else {}
            return LicenseNotAccepted(message, license_id=license_info.get("id"))
        if status == 404 and isinstance(body, dict) and "model" in body:
            return ModelNotFound(body["model"]) if "not found" in message else ServerReportedError(status, message)
        return ServerReportedError(status, message)

    def _stream(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        connection = self._connection()
        try:
            try:
                connection.request("POST", path, body=json.dumps(body).encode(), headers=self._headers())
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise ServerGone(f"the hearth server at {self.address} did not answer: {exc}") from exc
            if response.status >= 400:
                raise self._error(response.status, response.read(), body)
            finished = False
            try:
                for line in response:
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if "error" in item:
                        raise ServerReportedError(500, item["error"])
                    finished = is_final(item)
                    yield item
            except (OSError, ValueError, http.client.HTTPException) as exc:
                raise ServerGone(f"the connection to the hearth server at {self.address} broke "
                                 f"mid-answer: {exc}") from exc
            if not finished:
                # A server that dies mid-stream just closes the connection: without its last
                # message ("done" or "success") the work did not finish, whatever came before.
                raise ServerGone(f"the hearth server at {self.address} stopped before finishing "
                                 f"{path} (the stream ended without its last message)")
        finally:
            # Closing mid-stream (Ctrl+C) tells the server to stop generating.
            connection.close()


def is_final(item: dict[str, Any]) -> bool:
    """The last message of a stream: ``done`` (generation) or ``success`` (pull, create, push)."""
    return item.get("done") is True or item.get("status") == "success"
