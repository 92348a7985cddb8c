"""Qwen3-Coder's XML calls, the body of its ``<tool_call>``::

    <function=get_weather>
    <parameter=city>
    Paris
    </parameter>
    </function>

Values are bare text. A parameter the schema calls a string stays text; any other value is
read as JSON where it is JSON (numbers, booleans, objects, lists) and kept as text otherwise,
which is what a schema-less reader can do.
"""

from __future__ import annotations

import re
from typing import Any

from hearth.reply.call_items import NOT_JSON, CallMaker, loads_or_none
from hearth.reply.delta import ParsedCall

_FUNCTION = re.compile(r"\s*<function=([^>\n]+)>(.*?)</function>\s*", re.DOTALL)
_PARAMETER = re.compile(r"\s*<parameter=([^>\n]+)>(.*?)</parameter>\s*", re.DOTALL)


def xml_calls(body: str, maker: CallMaker) -> list[ParsedCall] | None:
    """The calls in the body, or None unless the body is nothing but well-formed functions."""
    calls: list[ParsedCall] = []
    position = 0
    while position < len(body):
        match = _FUNCTION.match(body, position)
        if match is None:
            return None
        name = match.group(1).strip()
        arguments = _parameters(match.group(2), name, maker)
        call = maker.call(name, arguments) if arguments is not None else None
        if call is None:
            return None
        calls.append(call)
        position = match.end()
    return calls or None


def _parameters(inner: str, function: str, maker: CallMaker) -> dict[str, Any] | None:
    arguments: dict[str, Any] = {}
    position = 0
    while inner[position:].strip():
        match = _PARAMETER.match(inner, position)
        if match is None:
            return None
        name = match.group(1).strip()
        arguments[name] = _value(_unpad(match.group(2)), maker.parameter_type(function, name))
        position = match.end()
    return arguments


def _unpad(text: str) -> str:
    # The format puts the value on its own line: one newline each side is layout.
    text = text[1:] if text.startswith("\n") else text
    return text[:-1] if text.endswith("\n") else text


def _value(text: str, declared: Any) -> Any:
    if declared == "string" or (isinstance(declared, list) and "string" in declared):
        return text
    value = loads_or_none(text)
    return text if value is NOT_JSON else value
