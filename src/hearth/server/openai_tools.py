"""Tool calling for the OpenAI layer: schemas that force a call, and finding calls in free text.

Local models write tool calls as text. With ``tool_choice`` "required" or a named function the
output is constrained by a JSON schema (a llama.cpp grammar), so it always parses. With "auto"
the model writes what it likes, and a reply that is nothing but a call (bare JSON, inside
``<tool_call>`` tags as Qwen and Hermes models write them, or in a ```json fence) naming a
given tool becomes a tool call; anything else stays ordinary content.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from hearth.api.openai_types import FunctionCall, NamedToolChoice, Tool, ToolCallOut
from hearth.api.tool_arguments import arguments_object, read_arguments
from hearth.errors import InvalidRequest

ANY_OBJECT: dict[str, Any] = {"type": "object"}

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|$)", re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclass
class ToolPlan:
    """How a request's tools shape generation and how its output is read back."""

    tools: list[dict[str, Any]] | None = None  # passed to the chat template
    format: dict[str, Any] | None = None       # forces the output when a call is required
    forced_name: str | None = None             # the output is this function's arguments
    forced_any: bool = False                   # the output is {"name": ..., "arguments": ...}
    names: frozenset[str] = frozenset()        # what "auto" may call

    @property
    def active(self) -> bool:
        return self.forced_name is not None or self.forced_any or bool(self.names)


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def plan_tools(tools: list[Tool] | None, choice: str | NamedToolChoice | None) -> ToolPlan:
    if not tools:
        if isinstance(choice, NamedToolChoice) or choice == "required":
            raise InvalidRequest("tool_choice needs tools")
        return ToolPlan()
    by_name = {tool.function.name: tool for tool in tools}
    dumped = [tool.model_dump(exclude_none=True) for tool in tools]
    if choice == "none":
        # The model is not to call anything, so it is not shown the tools either.
        return ToolPlan()
    if isinstance(choice, NamedToolChoice):
        name = choice.function.name
        if name not in by_name:
            raise InvalidRequest(f"tool_choice names '{name}', which is not among the tools")
        return ToolPlan(tools=dumped, format=_parameters(by_name[name]), forced_name=name)
    if choice == "required":
        if len(by_name) == 1:
            name = next(iter(by_name))
            return ToolPlan(tools=dumped, format=_parameters(by_name[name]), forced_name=name)
        alternatives = [
            {"type": "object",
             "properties": {"name": {"const": name}, "arguments": _parameters(tool)},
             "required": ["name", "arguments"]}
            for name, tool in by_name.items()
        ]
        return ToolPlan(tools=dumped, format={"anyOf": alternatives}, forced_any=True)
    return ToolPlan(tools=dumped, names=frozenset(by_name))


def _parameters(tool: Tool) -> dict[str, Any]:
    params = tool.function.parameters
    return params if params else ANY_OBJECT


def tool_call(name: str, arguments: Any) -> ToolCallOut:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCallOut(id=new_call_id(), function=FunctionCall(name=name, arguments=text))


def read_output(plan: ToolPlan, text: str) -> tuple[str | None, list[ToolCallOut]]:
    """The reply as (content, tool calls)."""
    if plan.forced_name is not None:
        return None, [tool_call(plan.forced_name, _normalized(text))]
    if plan.forced_any:
        found = _calls_in(text.strip(), None)
        if found:
            return None, found
        # Cut short (max_tokens): report what was written rather than lose it.
        return text, []
    if plan.names:
        return find_tool_calls(text, plan.names)
    return text, []


def _normalized(text: str) -> str:
    try:
        return json.dumps(json.loads(text))
    except ValueError:
        return text.strip()  # cut short by max_tokens; OpenAI hands it back as it is


def find_tool_calls(text: str, names: frozenset[str]) -> tuple[str | None, list[ToolCallOut]]:
    """Calls in free text; ``(text, [])`` when it is not (only) calls of the given tools."""
    for pattern in (_TAGGED, _FENCED):
        blocks = pattern.findall(text)
        if blocks:
            calls: list[ToolCallOut] = []
            for block in blocks:
                found = _calls_in(block.strip(), names)
                if not found:
                    return text, []
                calls += found
            rest = pattern.sub("", text).strip()
            return rest or None, calls
    calls = _calls_in(text.strip(), names)
    return (None, calls) if calls else (text, [])


def _calls_in(payload: str, names: frozenset[str] | None) -> list[ToolCallOut]:
    """Every call in a payload of JSON objects (or lists of them); [] unless all are calls."""
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    position = 0
    while position < len(payload):
        try:
            value, end = decoder.raw_decode(payload, position)
        except ValueError:
            return []
        objects += value if isinstance(value, list) else [value]
        position = end
        while position < len(payload) and payload[position] in " \t\r\n,;":
            position += 1
    calls = []
    for item in objects:
        call = _as_call(item, names)
        if call is None:
            return []
        calls.append(call)
    return calls


def _as_call(item: Any, names: frozenset[str] | None) -> ToolCallOut | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict):  # {"type": "function", "function": {...}}
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or (names is not None and name not in names):
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = arguments_object(arguments)
    if not isinstance(arguments, dict):
        return None
    return tool_call(name, arguments)


def arguments_dict(call_name: str, arguments: str) -> dict[str, Any]:
    """An assistant message's tool-call arguments (a JSON string) as the dict templates expect."""
    try:
        value = read_arguments(arguments)
    except ValueError as exc:
        raise InvalidRequest(f"tool call '{call_name}': arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest(f"tool call '{call_name}': arguments must be a JSON object")
    return value
