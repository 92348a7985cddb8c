"""Constrained output: Ollama's ``format`` ("json" or a JSON schema) as a llama.cpp grammar."""

from __future__ import annotations

import json
from typing import Any

from hearth.errors import InvalidRequest


def grammar_for_format(fmt: str | dict[str, Any] | None) -> Any:
    """A ``LlamaGrammar`` for the format, or None for free text."""
    if fmt is None or fmt == "":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if fmt == "json":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    if isinstance(fmt, dict):
        try:
            return LlamaGrammar.from_json_schema(json.dumps(fmt), verbose=False)
        except Exception as exc:  # the converter raises plain exceptions for bad schemas
            raise InvalidRequest(f"format: unsupported JSON schema: {exc}") from exc
    raise InvalidRequest("format must be \"json\" or a JSON schema object")
