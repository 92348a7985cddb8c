"""OpenAI's API under /v1 (filled in by the OpenAI translation layer)."""

from fastapi import APIRouter

router = APIRouter()
