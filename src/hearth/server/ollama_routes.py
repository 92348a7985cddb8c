"""Ollama's API under /api: same paths, field names, NDJSON streaming and nanosecond timings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from hearth.api.streams import join_stream
from hearth.api.types import (
    ChatRequest,
    ChatResponse,
    CopyRequest,
    CreateRequest,
    DeleteRequest,
    DetokenizeRequest,
    DetokenizeResponse,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    GenerateRequest,
    GenerateResponse,
    ListResponse,
    ProcessResponse,
    ProgressResponse,
    PullRequest,
    PushRequest,
    ShowRequest,
    ShowResponse,
    StatusResponse,
    TokenizeRequest,
    TokenizeResponse,
    VersionResponse,
)
from hearth.errors import InvalidRequest
from hearth.runtime import Runtime
from hearth.server.bridge import call_in_thread
from hearth.server.error_shapes import ErrorShape, ollama_error_body
from hearth.server.progress import progress_stream
from hearth.server.responses import ndjson_response, open_stream
from hearth.version import __version__

router = APIRouter()
ERROR_SHAPE = ErrorShape("/api", ollama_error_body)  # {"error": "..."}


def runtime_of(request: Request) -> Runtime:
    return request.app.state.runtime


@router.get("/", response_class=PlainTextResponse, include_in_schema=False)
@router.head("/", include_in_schema=False)
async def root(request: Request) -> Any:
    # A browser gets the web app here; API clients keep Ollama's plain answer.
    from hearth.server.web_routes import app_page, wants_page

    if wants_page(request):
        return app_page(request.method)
    return "hearth is running"


@router.get("/api/version", response_model=VersionResponse)
async def version() -> VersionResponse:
    # ``version`` is read by Ollama's clients as the Ollama release they talk to (Codex's
    # ``--oss`` refuses anything below 0.13.4); hearth's own version goes beside it.
    from hearth.version import OLLAMA_COMPAT_VERSION

    return VersionResponse(version=OLLAMA_COMPAT_VERSION, hearth_version=__version__)


@router.get("/api/tags", response_model=ListResponse)
async def tags(request: Request) -> ListResponse:
    return await call_in_thread(runtime_of(request).list_models)


@router.get("/api/ps", response_model=ProcessResponse)
async def ps(request: Request) -> ProcessResponse:
    return await call_in_thread(runtime_of(request).ps)


@router.post("/api/show", response_model=ShowResponse, response_model_exclude_none=True)
async def show(body: ShowRequest, request: Request) -> ShowResponse:
    return await call_in_thread(runtime_of(request).show, body.model)


async def _generation(request: Request, make, stream: bool):
    metrics = request.app.state.metrics
    first, items, flag = await open_stream(request, make)

    def record(item: Any) -> Any:
        if getattr(item, "done", False):
            metrics.record_generation(item)
        return item

    if stream:
        return ndjson_response(request, first, items, flag, on_item=record)
    try:
        rest = [item async for item in items]
    finally:
        request.app.state.streams.discard(flag)
    final = join_stream([first, *rest])
    record(final)
    return final


@router.post("/api/generate", response_model=GenerateResponse, response_model_exclude_none=True)
async def generate(body: GenerateRequest, request: Request):
    runtime = runtime_of(request)
    return await _generation(request, lambda flag: runtime.generate(body, cancelled=flag), body.stream)


@router.post("/api/chat", response_model=ChatResponse, response_model_exclude_none=True)
async def chat(body: ChatRequest, request: Request):
    runtime = runtime_of(request)
    # Tool calls and thinking are read by the runtime (hearth.reply), the same for every API.
    return await _generation(request, lambda flag: runtime.chat(body, cancelled=flag), body.stream)


@router.post("/api/embed", response_model=EmbedResponse, response_model_exclude_none=True)
async def embed(body: EmbedRequest, request: Request) -> EmbedResponse:
    result = await call_in_thread(runtime_of(request).embed, body)
    request.app.state.metrics.record_prompt_tokens(result.prompt_eval_count or 0)
    return result


@router.post("/api/embeddings", response_model=EmbeddingsResponse)
async def embeddings(body: EmbeddingsRequest, request: Request) -> EmbeddingsResponse:
    result = await call_in_thread(
        runtime_of(request).embed,
        EmbedRequest(model=body.model, input=body.prompt, options=body.options, keep_alive=body.keep_alive),
    )
    return EmbeddingsResponse(embedding=result.embeddings[0] if result.embeddings else [])


@router.post("/api/tokenize", response_model=TokenizeResponse)
async def tokenize(body: TokenizeRequest, request: Request) -> TokenizeResponse:
    tokens = await call_in_thread(runtime_of(request).tokenize, body.model, body.content, body.options,
                                  body.keep_alive)
    return TokenizeResponse(model=body.model, tokens=tokens)


@router.post("/api/detokenize", response_model=DetokenizeResponse)
async def detokenize(body: DetokenizeRequest, request: Request) -> DetokenizeResponse:
    text = await call_in_thread(runtime_of(request).detokenize, body.model, body.tokens, body.options,
                                body.keep_alive)
    return DetokenizeResponse(model=body.model, content=text)


@router.post("/api/pull", response_model=ProgressResponse)
async def pull(body: PullRequest, request: Request):
    from hearth.errors import LicenseNotAccepted
    from hearth.references import is_url, written_like_path
    from hearth.units import parse_rate

    runtime = runtime_of(request)
    # Decided by spelling alone: looking at the disk would tell a caller which files exist.
    if not is_url(body.model) and written_like_path(body.model):
        raise InvalidRequest("pull takes a model name or a URL; to add a file from this machine, "
                             "upload it (POST /api/blobs) and create a model from it")
    max_speed = parse_rate(body.max_speed)

    def work(progress: Any, cancelled: Any) -> Any:
        return runtime.pull(body.model, progress, accept_license=body.accept_license,
                            max_speed=max_speed, cancelled=cancelled, insecure=body.insecure)

    try:
        # No event comes before the license is settled, so a refusal is still a real 403.
        return await progress_stream(request, work, body.stream, cancellable=True)
    except LicenseNotAccepted as exc:
        from hearth.licenses import license_summary

        return JSONResponse({"error": exc.message, "license": license_summary(exc.license_id),
                             "needs_acceptance": True}, status_code=exc.status_code)


@router.post("/api/create", response_model=ProgressResponse)
async def create(body: CreateRequest, request: Request):
    """Sources are store-only: an installed model, or blobs uploaded with POST /api/blobs
    (``files`` / ``adapters``, or ``@sha256:...`` in a modelfile's FROM and ADAPTER). Any path
    on the server is refused, unread and unprobed, by the runtime's create itself."""
    from hearth.modelfile import Sources, check_sources

    runtime = runtime_of(request)
    modelfile = modelfile_from_request(body, runtime)
    check_sources(modelfile, Sources.STORE_ONLY)  # a plain 400 before the stream starts
    return await progress_stream(
        request,
        lambda progress: runtime.create(body.model, modelfile=modelfile, sources=Sources.STORE_ONLY,
                                        progress=progress, source="request", quantize=body.quantize,
                                        allow_requantize=body.allow_requantize),
        body.stream,
    )


def modelfile_from_request(body: CreateRequest, runtime: Runtime) -> Any:
    """The Modelfile a create request describes; uploaded files become ``@sha256:...``
    references (Ollama's spelling), which the runtime resolves in the store."""
    from hearth.modelfile import Modelfile, parse_modelfile
    from hearth.store import validate_digest

    if body.modelfile is not None:
        return parse_modelfile(body.modelfile, source="modelfile")
    source = body.from_
    if body.files:
        ggufs = [(name, digest) for name, digest in body.files.items() if name.lower().endswith(".gguf")]
        if len(ggufs) != 1:
            raise InvalidRequest("files must hold exactly one .gguf model file")
        digest = validate_digest(ggufs[0][1])
        if not runtime.store.blobs.has(digest):
            raise InvalidRequest(f"blob {digest} is not on the server; upload it with POST /api/blobs first")
        source = f"@{digest}"
    if not source:
        raise InvalidRequest("create needs 'from' (a model) or 'files' (an uploaded .gguf)")
    adapters = []
    for filename, digest in (body.adapters or {}).items():
        digest = validate_digest(digest)
        if not runtime.store.blobs.has(digest):
            raise InvalidRequest(f"adapter {filename}: blob {digest} is not on the server; upload it first")
        adapters.append((f"@{digest}", 1.0))
    return Modelfile.from_request_fields(
        source, adapters, parameters=body.parameters, template=body.template, system=body.system,
        license=body.license, messages=[m.model_dump(include={"role", "content"}) for m in body.messages or []])


@router.post("/api/stop", response_model=StatusResponse)
async def stop(body: DeleteRequest, request: Request) -> StatusResponse:
    """hearth extra: unload a model now (after its running requests), like `ollama stop`."""
    await call_in_thread(runtime_of(request).stop, body.model)
    return StatusResponse(status="success")


@router.post("/api/copy")
async def copy(body: CopyRequest, request: Request) -> Response:
    await call_in_thread(runtime_of(request).copy, body.source, body.destination)
    return Response(status_code=200)


@router.delete("/api/delete")
async def delete(body: DeleteRequest, request: Request) -> Response:
    await call_in_thread(runtime_of(request).delete, body.model)
    return Response(status_code=200)


@router.head("/api/blobs/{digest}")
async def blob_exists(digest: str, request: Request) -> Response:
    from hearth.store import validate_digest

    blobs = runtime_of(request).store.blobs
    return Response(status_code=200 if blobs.has(validate_digest(digest)) else 404)


@router.post("/api/blobs/{digest}", status_code=201)
async def blob_upload(digest: str, request: Request) -> Response:
    from hearth.server.uploads import receive_blob

    await receive_blob(request, runtime_of(request).store.blobs, digest)
    return Response(status_code=201)


@router.post("/api/push", response_model=ProgressResponse)
async def push(body: PushRequest, request: Request):
    runtime = runtime_of(request)
    return await progress_stream(
        request,
        lambda progress: runtime.push(body.model, progress, destination=body.destination,
                                      insecure=body.insecure),
        body.stream,
    )
