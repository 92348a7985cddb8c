"""The FastAPI application: routes, error handlers, metrics and the safety middleware."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from hearth import config
from hearth.errors import HearthError
from hearth.runtime import Runtime
from hearth.server.bridge import StreamRegistry
from hearth.server.error_shapes import ErrorShapes
from hearth.server.guard import Guard
from hearth.server.metrics import Metrics
from hearth.server.responses import error_response, hearth_error_response
from hearth.version import __version__

log = logging.getLogger("hearth.server")

LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?$"


def validation_message(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "invalid request"
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"invalid JSON in request body: {first.get('ctx', {}).get('error', first.get('msg'))}"
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = first.get("msg", "invalid value")
    return f"invalid request: {where}: {message}" if where else f"invalid request: {message}"


def create_app(runtime: Runtime | None = None, bind_host: str = "127.0.0.1") -> Any:
    from hearth.server import (
        anthropic_routes,
        hearth_routes,
        ollama_routes,
        openai_routes,
        responses_routes,
        web_routes,
    )

    # Ollama clients (and curl users) often send JSON without a JSON content type.
    app = FastAPI(title="hearth", version=__version__, strict_content_type=False,
                  description="Ollama- and OpenAI-compatible API for local models.")
    app.state.runtime = runtime or Runtime()
    app.state.streams = StreamRegistry()
    app.state.metrics = Metrics()
    # Each API answers errors in its own clients' shape (error_shapes.py).
    app.state.error_shapes = ErrorShapes([ollama_routes.ERROR_SHAPE, openai_routes.ERROR_SHAPE,
                                          anthropic_routes.ERROR_SHAPE, responses_routes.ERROR_SHAPE,
                                          hearth_routes.ERROR_SHAPE, web_routes.ERROR_SHAPE])

    @app.exception_handler(HearthError)
    async def on_hearth_error(request: Request, exc: HearthError):
        return hearth_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        return error_response(request, 400, validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return error_response(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(request, 500, f"internal error: {type(exc).__name__}; see the server log")

    @app.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
    async def metrics(request: Request) -> str:
        runtime: Runtime = request.app.state.runtime
        loaded = [(slot.name, slot.size) for slot in runtime.scheduler.slots()]
        return request.app.state.metrics.render(runtime.scheduler.waiting, loaded,
                                                len(request.app.state.streams))

    app.include_router(ollama_routes.router)
    app.include_router(openai_routes.router)
    app.include_router(anthropic_routes.router)
    app.include_router(responses_routes.router)
    app.include_router(hearth_routes.router)
    app.include_router(web_routes.router)

    # Order matters: the guard (host, key, size) sees a request before CORS answers it.
    app.add_middleware(CORSMiddleware, allow_origins=config.origins(), allow_origin_regex=LOCAL_ORIGINS,
                       allow_methods=["*"], allow_headers=["*"], allow_credentials=False)
    app.add_middleware(Guard, bind_host=bind_host)
    app.add_middleware(RequestCounter, metrics=app.state.metrics)
    return app


class RequestCounter:
    """Counts requests by route template and status. Plain ASGI: Starlette's
    ``@app.middleware("http")`` would add a task and a queue to every streamed chunk."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.record_request(scope["method"], template, status)
            log.debug("%s %s %s %.1fms", scope["method"], scope["path"], status,
                      (time.perf_counter() - started) * 1000)
