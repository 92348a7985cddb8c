"""Turning what a model wrote into a call, or deciding that it is not one.

Every family ends in the same check: the name must be one of the request's functions and the
arguments a JSON object (or a JSON string holding one, which some models write). Anything else
is not a call, and the reader that found it hands the text back as content.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hearth.api.tool_arguments import arguments_object
from hearth.reply.delta import ParsedCall
from hearth.reply.ids import is_mistral_id, new_call_id
from hearth.reply.json_span import json_values
from hearth.reply.style import ReplyStyle


@dataclass(frozen=True)
class CallMaker:
    """The request's side of a call: which names exist, the style (for ids), and each
    function's parameter schema where the caller gave it (Qwen3-Coder's XML needs the types)."""

    names: frozenset[str]
    style: ReplyStyle
    schemas: Mapping[str, Mapping[str, Any]] | None = None

    def call(self, name: Any, arguments: Any, call_id: Any = None) -> ParsedCall | None:
        if not isinstance(name, str) or name not in self.names:
            return None
        decoded = _arguments(arguments)
        if decoded is None:
            return None
        # Mistral models write their own 9-character ids; the next turn must send them back.
        if not (self.style.tools == "mistral" and is_mistral_id(call_id)):
            call_id = new_call_id(self.style)
        return ParsedCall(name=name, arguments=decoded, id=call_id)

    def from_object(self, item: Any) -> ParsedCall | None:
        """``{"name": N, "arguments"|"parameters": A}``, also wrapped as OpenAI writes it
        (``{"type": "function", "function": {...}}``)."""
        if not isinstance(item, dict):
            return None
        call_id = item.get("id")
        if isinstance(item.get("function"), dict):
            item = item["function"]
        arguments = item["arguments"] if "arguments" in item else item.get("parameters")
        return self.call(item.get("name"), arguments, call_id)

    def from_value(self, value: Any) -> list[ParsedCall] | None:
        """An object or a list of objects, all of them calls; else None."""
        items = value if isinstance(value, list) else [value]
        calls = [self.from_object(item) for item in items]
        if not calls or any(call is None for call in calls):
            return None
        return [call for call in calls if call is not None]

    def from_text(self, text: str) -> list[ParsedCall] | None:
        """JSON text holding one or more calls (objects or lists of them); else None."""
        values = json_values(text)
        if values is None:
            return None
        calls: list[ParsedCall] = []
        for value in values:
            found = self.from_value(value)
            if found is None:
                return None
            calls += found
        return calls

    def parameter_type(self, function: str, parameter: str) -> Any:
        """The JSON Schema ``type`` of one parameter, when the caller said."""
        schema = (self.schemas or {}).get(function) or {}
        properties = schema.get("properties") if isinstance(schema, Mapping) else None
        if not isinstance(properties, Mapping):
            return None
        spec = properties.get(parameter)
        return spec.get("type") if isinstance(spec, Mapping) else None


def _arguments(value: Any) -> dict[str, Any] | None:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        decoded = arguments_object(value)
        inner = loads_or_none(value) if decoded is None else None
        # Some models quote the whole object once more: "{\"city\": \"Paris\"}".
        return arguments_object(inner) if isinstance(inner, str) else decoded
    return None


def loads_or_none(text: str) -> Any:
    """The JSON value of ``text``, or a marker object when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return NOT_JSON


NOT_JSON = object()
