"""Bounded retries and cancellation for downloads: a run of attempts that bring no new byte
ends the download with a message that says how far it got; a cancel keeps what arrived."""

from __future__ import annotations

import time
from collections.abc import Callable

from hearth.errors import DownloadFailed
from hearth.hub.http_fetch import display_url, is_retryable

RETRIES = 5  # attempts in a row that bring no new byte
RETRY_DELAY = 0.5  # doubled after each such attempt

Cancelled = Callable[[], bool] | None


class DownloadCancelled(DownloadFailed):
    """The caller stopped the download (client gone, Ctrl+C); what arrived is kept."""


class Retries:
    """Bounded retries: RETRIES attempts in a row without a new byte end the download."""

    def __init__(self, url: str, cancelled: Cancelled) -> None:
        self.url, self.cancelled = url, cancelled
        self.failures = 0
        self.progress_mark = -1

    def failed(self, exc: BaseException, done: int, total: int | None) -> None:
        if not is_retryable(exc):
            raise exc
        if done > self.progress_mark:
            self.progress_mark, self.failures = done, 0
        self.failures += 1
        if self.failures > RETRIES:
            of = f" of {total}" if total else ""
            raise DownloadFailed(
                f"download of {display_url(self.url)} stopped at {done}{of} bytes after "
                f"{RETRIES + 1} attempts ({reason(exc)}); pull again to resume") from None
        deadline = time.monotonic() + RETRY_DELAY * 2 ** (self.failures - 1)
        while time.monotonic() < deadline:
            check_cancelled(self.cancelled)
            time.sleep(0.05)


def reason(exc: BaseException) -> str:
    if isinstance(exc, DownloadFailed):
        return exc.message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def check_cancelled(cancelled: Cancelled) -> None:
    if cancelled and cancelled():
        raise DownloadCancelled("download cancelled; what arrived is kept, pull again to resume")
