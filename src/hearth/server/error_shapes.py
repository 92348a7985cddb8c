"""What an error body looks like, per API. Each router module declares the path prefix it
serves and the body shape its clients parse (``ERROR_SHAPE``); ``create_app`` collects them, and
every error (a route's, the guard's, a 404 under the prefix) takes the shape of the longest
prefix that matches, Ollama's ``{"error": "..."}`` elsewhere. A new API (Anthropic's, say) brings
its own shape instead of inheriting OpenAI's from the ``/v1`` it lives under.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ErrorBody = Callable[..., dict[str, Any]]  # (status, message, code=None, details=None)


def ollama_error_body(status: int, message: str, code: str | None = None,
                      details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": message, **(details or {})}


def openai_error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "invalid_request_error",
        429: "rate_limit_error",
        503: "server_busy_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def openai_error_body(status: int, message: str, code: str | None = None,
                      details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": openai_error_type(status), "param": None, "code": code,
                      **(details or {})}}


ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",  # Anthropic's own is 529; hearth's busy queue answers 503
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return ANTHROPIC_ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_body(status: int, message: str, code: str | None = None,
                         details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Anthropic's ``{"type": "error", "error": {"type", "message"}}``. A prompt over the
    context window says so in Anthropic's own words: Claude Code reads "prompt is too long"
    to know it should compact the conversation."""
    details = details or {}
    if code == "context_length_exceeded" and {"prompt_tokens", "context_length"} <= details.keys():
        message = f"prompt is too long: {details['prompt_tokens']} tokens > {details['context_length']} maximum"
    return {"type": "error", "error": {"type": anthropic_error_type(status), "message": message}}


@dataclass(frozen=True)
class ErrorShape:
    prefix: str  # "/v1": the paths this shape answers for (the prefix itself and below it)
    body: ErrorBody

    def covers(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix.rstrip("/") + "/")


class ErrorShapes:
    def __init__(self, shapes: list[ErrorShape]) -> None:
        self.shapes = sorted(shapes, key=lambda shape: len(shape.prefix), reverse=True)

    def body(self, path: str, status: int, message: str, code: str | None = None,
             details: dict[str, Any] | None = None) -> dict[str, Any]:
        for shape in self.shapes:
            if shape.covers(path):
                return shape.body(status, message, code, details)
        return ollama_error_body(status, message, code, details)


def shapes_of(app: Any) -> ErrorShapes:
    """The app's table (``create_app`` sets it); Ollama's shape for an app without one."""
    return getattr(getattr(app, "state", None), "error_shapes", None) or ErrorShapes([])
