"""POST /api/blobs/:digest: a client uploads a file (a GGUF) before creating a model from it.

The body is streamed into the blob writer; the digest in the URL is validated before it
becomes a path, and the bytes must hash to it or nothing is stored.
"""

from __future__ import annotations

import asyncio

from fastapi import Request

from hearth.store import BlobStore, validate_digest


async def receive_blob(request: Request, blobs: BlobStore, digest: str) -> str:
    expected = validate_digest(digest)
    if blobs.has(expected):
        # Drain the body so the connection stays usable; the blob is already here.
        async for _ in request.stream():
            pass
        return expected
    writer = blobs.writer(expected)
    with writer:
        async for chunk in request.stream():
            if chunk:
                await asyncio.to_thread(writer.write, chunk)
        return await asyncio.to_thread(writer.commit)
