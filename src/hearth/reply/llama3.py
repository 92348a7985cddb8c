"""Llama 3.x calls: ``{"name": ..., "parameters": {...}}`` as the reply (JSON tool calling),
the same after ``<|python_tag|>``, and the built-in tools' ``<|python_tag|>NAME.call(k=v)``.
Llama 3.2 separates several calls with ``;``."""

from __future__ import annotations

import ast
from typing import Any

from hearth.reply.call_items import CallMaker
from hearth.reply.call_stage import BLANKS, CallReader, Read, earliest, literal_opener
from hearth.reply.delta import ParsedCall
from hearth.reply.json_calls import JsonFormat, value_calls
from hearth.reply.json_span import JsonSpan, skip_blanks

PYTHON_TAG = "<|python_tag|>"
_CODE_ENDS = ("\n", "<|eom_id|>", "<|eot_id|>")


class Llama3Format:
    separators = BLANKS + ";"

    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker
        self._json = JsonFormat(maker, lists=True, fences=False)

    def find(self, text: str) -> tuple[int, CallReader | None]:
        at, opened = literal_opener(text, PYTHON_TAG)
        tagged = (at, PythonTagReader(self._maker) if opened else None)
        return earliest(tagged, self._json.find(text))


class PythonTagReader:
    def __init__(self, maker: CallMaker) -> None:
        self._maker = maker
        self._span: JsonSpan | None = None

    def read(self, text: str, final: bool) -> Read | None:
        start = skip_blanks(text, len(PYTHON_TAG))
        if start == len(text):
            return Read(len(text), None) if final else None
        if text[start] in "{[":
            self._span = self._span or JsonSpan(start)
            end = self._span.end(text)
            if end is None:
                return Read(len(text), None) if final else None
            return Read(end, value_calls(self._maker, text[start:end]))
        ends = [at for at in (text.find(mark, start) for mark in _CODE_ENDS) if at >= 0]
        if not ends and not final:
            return None
        end = min(ends) if ends else len(text)
        call = builtin_call(text[start:end], self._maker)
        return Read(end, [call] if call else None)


def builtin_call(code: str, maker: CallMaker) -> ParsedCall | None:
    """``brave_search.call(query="...")`` (or ``name(k=v)``): keyword arguments of literal
    values only; the code is parsed, never run."""
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    node = tree.body
    if not isinstance(node, ast.Call) or node.args:
        return None
    function = node.func
    if isinstance(function, ast.Attribute) and function.attr == "call":
        function = function.value
    if not isinstance(function, ast.Name):
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None:
            return None
        try:
            arguments[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            return None
    return maker.call(function.id, arguments)
