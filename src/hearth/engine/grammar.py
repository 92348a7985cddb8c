"""Constrained output: Ollama's ``format`` ("json" or a JSON schema) as a llama.cpp grammar.

A schema is checked twice before its grammar leaves the server: schema_check.py refuses what
llama-cpp-python's converter cannot turn into a usable grammar, naming the part; gbnf_check.py
then reads the grammar the way llama.cpp will. llama.cpp parses it only in the runner, where a
grammar it cannot use kills the process (see gbnf_check.py), so both answer with a 400 here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hearth.errors import InvalidRequest


def grammar_for_format(fmt: str | dict[str, Any] | None) -> str | None:
    """GBNF grammar text for the format, or None for free text. Text (not a compiled grammar)
    so it can travel to a runner process."""
    if fmt is None or fmt == "":
        return None
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    if fmt == "json":
        return JSON_GBNF
    if isinstance(fmt, dict):
        from hearth.engine.gbnf_check import check_grammar
        from hearth.engine.schema_check import check_schema

        check_schema(fmt, "format")
        try:
            text = json_schema_to_gbnf(json.dumps(fmt))
        except KeyError as exc:  # a $ref the converter did not register while resolving
            raise InvalidRequest(f"format: unsupported JSON schema: the converter could not "
                                 f"resolve {exc}") from exc
        except Exception as exc:  # the converter raises plain exceptions for bad schemas
            raise InvalidRequest(f"format: unsupported JSON schema: {exc}") from exc
        check_grammar(text, "format")  # a schema llama.cpp cannot use is the client's error, found now
        compile_grammar(text)
        return text
    raise InvalidRequest("format must be \"json\" or a JSON schema object")


@dataclass(frozen=True)
class LazyGrammar:
    """A grammar that waits: sampling is free until the output matches one of ``patterns``
    (regular expressions, searched in the text so far; the grammar applies from the first
    capture group, else the match) or a token of ``tokens`` is sampled. Tool calls use it so
    that text streams freely and only a call, once opened, is held to its schema."""

    grammar: Any  # a compiled LlamaGrammar
    patterns: tuple[str, ...]
    tokens: tuple[int, ...]


def compile_grammar(spec: str | dict[str, Any] | None) -> Any:
    """GBNF text as a LlamaGrammar; a lazy grammar (``{"gbnf", "patterns", "tokens"}``, the form
    that travels to a runner) as a ``LazyGrammar``."""
    if spec is None:
        return None
    from llama_cpp.llama_grammar import LlamaGrammar

    text = spec["gbnf"] if isinstance(spec, dict) else spec
    try:
        grammar = LlamaGrammar.from_string(text, verbose=False)
    except Exception as exc:
        raise InvalidRequest(f"format: llama.cpp cannot use this grammar: {exc}") from exc
    if isinstance(spec, dict) and (spec.get("patterns") or spec.get("tokens")):
        return LazyGrammar(grammar, tuple(spec.get("patterns") or ()), tuple(spec.get("tokens") or ()))
    return grammar
