"""Opening HTTP(S) downloads: ranges, redirects, proxies, and errors a user can act on.

Standard library only (urllib), so pulling needs no extra dependency. Redirects keep the
Authorization header only while they stay on the same host: a Hugging Face token must not
travel to the CDN a file is redirected to. URLs in messages lose their query string, which
often carries a signature.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPResponse

from hearth.errors import DownloadFailed

TIMEOUT_SECONDS = 30.0
USER_AGENT = "hearth"
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


def display_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rsplit("@", 1)[-1], parts.path, "", ""))


class HTTPDownloadFailed(DownloadFailed):
    """An answer with an HTTP error status (kept so callers can add their own hint)."""

    def __init__(self, message: str, http_status: int) -> None:
        super().__init__(message)
        self.http_status = http_status


class _SameHostAuthRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            old_host = urllib.parse.urlsplit(req.full_url).netloc
            if urllib.parse.urlsplit(new.full_url).netloc != old_host:
                for header in list(new.headers):
                    if header.lower() == "authorization":
                        del new.headers[header]
        return new


_opener = urllib.request.build_opener(_SameHostAuthRedirects())


@dataclass
class Opened:
    """A response positioned at byte ``start`` of a file of ``total`` bytes (None: unknown)."""

    response: HTTPResponse
    start: int
    total: int | None
    ranged: bool  # the server honoured our Range header
    etag: str | None
    last_modified: str | None

    def close(self) -> None:
        self.response.close()


def open_range(
    url: str,
    headers: dict[str, str] | None = None,
    *,
    start: int = 0,
    end: int | None = None,
    if_range: str | None = None,
    timeout: float | None = None,
) -> Opened:
    """GET ``url`` from byte ``start`` (to ``end`` inclusive). Raises ``HTTPDownloadFailed`` for
    an error status and ``OSError`` for connection trouble (the caller decides on retries)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})
    request.add_header("Range", f"bytes={start}-{'' if end is None else end}")
    request.add_header("Accept-Encoding", "identity")
    if if_range and start > 0:
        request.add_header("If-Range", if_range)
    try:
        response = _opener.open(request, timeout=timeout or TIMEOUT_SECONDS)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise _status_error(url, exc.code, exc.reason) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OSError):
            raise exc.reason from None
        raise DownloadFailed(f"cannot download {display_url(url)}: {exc.reason}") from None
    except ValueError as exc:
        raise DownloadFailed(f"cannot download '{display_url(url)}': {exc}") from None
    etag = response.headers.get("ETag")
    last_modified = response.headers.get("Last-Modified")
    if response.status == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if not match or int(match.group(1)) != start:
            response.close()
            raise DownloadFailed(f"{display_url(url)} answered a range request with a wrong Content-Range")
        total = None if match.group(3) == "*" else int(match.group(3))
        return Opened(response, start, total, True, etag, last_modified)
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    return Opened(response, 0, total, False, etag, last_modified)


def _status_error(url: str, status: int, reason: object) -> HTTPDownloadFailed:
    shown = display_url(url)
    if status == 404:
        return HTTPDownloadFailed(f"{shown} was not found (HTTP 404)", status)
    if status in (401, 403):
        return HTTPDownloadFailed(f"{shown}: access denied (HTTP {status}); the file may need a "
                                  "token or an accepted license", status)
    if status == 416:
        return HTTPDownloadFailed(f"{shown}: the requested range is not available (HTTP 416)", status)
    return HTTPDownloadFailed(f"{shown}: the server answered HTTP {status} {reason}".rstrip(), status)


def is_retryable(exc: BaseException) -> bool:
    """Dropped connections, timeouts and server-side failures may pass; other answers will not."""
    if isinstance(exc, HTTPDownloadFailed):
        return exc.http_status >= 500 or exc.http_status in (408, 429)
    return isinstance(exc, (OSError, http.client.HTTPException))


def probe_size(url: str, headers: dict[str, str] | None = None) -> int | None:
    """The size a HEAD request reports, before anything is downloaded. A missing file is an
    error now; a server that refuses HEAD (signed URLs often do) just leaves the size unknown."""
    request = urllib.request.Request(url, method="HEAD",
                                     headers={"User-Agent": USER_AGENT, **(headers or {})})
    request.add_header("Accept-Encoding", "identity")
    try:
        with _opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            return int(length) if length and length.isdigit() else None
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 404, 410):
            raise _status_error(url, exc.code, exc.reason) from None
        return None
    except urllib.error.URLError as exc:
        raise DownloadFailed(f"cannot reach {display_url(url)}: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise DownloadFailed(f"cannot reach {display_url(url)}: {exc}") from None
