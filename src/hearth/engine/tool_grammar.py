"""Grammars for tool calls, in the layout of the model's own call format.

``reply.frames.call_frame`` says how a family writes a call (the text that opens it, what
wraps the JSON, whether the JSON is ``{"name", "arguments"}``, ``{"name", "parameters"}`` or
a list of those); this module turns that and the request's tools into GBNF whose JSON part
follows each tool's parameter schema. With ``tool_choice`` "auto" the grammar is lazy: the
model writes freely until it opens a call, and from the opener on the call must match a tool
(llama.cpp's lazy grammars, as llama-server uses them). A required or named call is the same
grammar from the first token.

A tool whose schema the converter cannot use (the JSON Schema 2020-12 extras agents send:
``propertyNames``, ``$schema``, formats, ...) keeps its name constrained and takes any
object as arguments, rather than failing the request: the client did nothing wrong.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from hearth.reply import CallFrame

log = logging.getLogger("hearth.tools")

ANY_OBJECT: dict[str, Any] = {"type": "object"}
_ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)
# Whitespace a model may put between the opener, the JSON and the closer: one blank, as the
# families' own examples write it (more only costs tokens, and a small model spins on blanks).
_GAP = '[ \\n]?'
# Calls one reply may hold: a small model under a grammar would otherwise add calls until
# num_predict ends the reply in the middle of one.
MOST_CALLS = 8
_RULE_NAME = re.compile(r"^([A-Za-z0-9-]+) ::=", re.MULTILINE)
# A GBNF body's string literals and character classes, whose text is not rule names.
_LITERAL_OR_CLASS = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]')
_IDENTIFIER = re.compile(r"[A-Za-z0-9-]+")


def tool_call_grammar(frame: CallFrame, tools: list[dict[str, Any]], *, only: str | None = None,
                      lazy: bool = True, token_of: Any = None) -> dict[str, Any] | None:
    """The grammar (in the form ``compile_grammar`` takes) for calls to ``tools``; ``only``
    restricts them to one name. ``token_of(text)`` gives the single token id of a special
    token's text, or None, so a trigger that is one special token triggers by id.
    None when the layout has no JSON grammar (the calls are then only parsed)."""
    key = {"name-arguments": "arguments", "name-parameters": "parameters",
           "mistral-list": "arguments", "mistral-args": "arguments"}.get(frame.layout)
    if key is None:
        return None
    functions = [_function(tool) for tool in tools]
    functions = [f for f in functions if f is not None and (only is None or f[0] == only)]
    if not functions:
        return None
    functions = [(name, _usable(name, key, parameters)) for name, parameters in functions]
    if frame.layout == "mistral-args":
        rules = _named_args_rules(functions, frame.arguments_prefix)
        one = f'{_literal(frame.opener)} tool-call'
        root = f'root ::= {one} ({_GAP} {one}){{0,{MOST_CALLS - 1}}}'
    else:
        rules = _rules_for(functions, key, frame.layout)
        one = f'{_literal(frame.opener)} {_GAP} tool-call' if frame.opener else 'tool-call'
        if frame.closer:
            one += f' {_GAP} {_literal(frame.closer)}'
            root = f'root ::= {one} ({_GAP} {one}){{0,{MOST_CALLS - 1}}}'
        else:
            root = f'root ::= {one}'
    grammar = {"gbnf": root + "\n" + rules}
    if lazy:
        token = token_of(frame.trigger) if token_of is not None else None
        grammar["tokens"] = [token] if token is not None else []
        grammar["patterns"] = [] if token is not None else [re.escape(frame.trigger)]
    return grammar


def _function(tool: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        return None
    parameters = function.get("parameters") or ANY_OBJECT
    return name, parameters if isinstance(parameters, dict) else ANY_OBJECT


def _call_schema(name: str, key: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"name": {"const": name}, key: parameters},
            "required": ["name", key]}


def _usable(name: str, key: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The tool's parameter schema, or any object when the checks or the converter refuse it."""
    try:
        _converted(_call_schema(name, key, parameters))
    except Exception as exc:  # InvalidRequest from the checks, anything from the converter
        log.warning("tool '%s': its parameter schema cannot be a grammar (%s); its arguments "
                    "are left free", name, exc)
        return ANY_OBJECT
    return parameters


def _body(alternatives: list[dict[str, Any]], layout: str) -> dict[str, Any]:
    body = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
    if layout == "mistral-list":
        body = {"type": "array", "items": body, "minItems": 1, "maxItems": MOST_CALLS}
    return body


def _named_args_rules(functions: list[tuple[str, dict[str, Any]]], args_marker: str) -> str:
    """``tool-call ::= "NAME" "[ARGS]" ARGS | ...``: each name bound to its own schema, so each
    tool's rules are converted alone and renamed apart (the converter names rules after
    properties, and two tools may share one)."""
    alternatives, rules = [], []
    for number, (name, parameters) in enumerate(functions):
        try:
            text = _converted(parameters)
        except Exception:  # passed within the call schema, refused alone: leave it free
            text = _converted(ANY_OBJECT)
        text = _renamed(text, f"t{number}-")
        alternatives.append(f'{_literal(name)} {_literal(args_marker)} t{number}-tool-call')
        rules.append(text)
    return "tool-call ::= " + " | ".join(alternatives) + "\n" + "\n".join(rules)


def _renamed(gbnf: str, prefix: str) -> str:
    """Every rule of ``gbnf`` (definitions and references) with ``prefix`` before its name;
    string literals and character classes are left as they are."""
    names = set(_RULE_NAME.findall(gbnf))
    out = []
    for line in gbnf.splitlines():
        head, sep, body = line.partition(" ::= ")
        if not sep:
            out.append(line)
            continue
        pieces, at = [], 0
        for match in _LITERAL_OR_CLASS.finditer(body):
            pieces.append(_rename_names(body[at:match.start()], names, prefix))
            pieces.append(match.group(0))
            at = match.end()
        pieces.append(_rename_names(body[at:], names, prefix))
        out.append(prefix + head + sep + "".join(pieces))
    return "\n".join(out)


def _rename_names(code: str, names: set[str], prefix: str) -> str:
    return _IDENTIFIER.sub(lambda m: prefix + m.group(0) if m.group(0) in names else m.group(0), code)


def _rules_for(functions: list[tuple[str, dict[str, Any]]], key: str, layout: str) -> str:
    try:
        return _converted(_body([_call_schema(name, key, p) for name, p in functions], layout))
    except Exception as exc:  # each tool passed alone; together they can still be too much
        log.warning("tool schemas together cannot be a grammar (%s); only the names are held", exc)
    return _converted(_body([_call_schema(name, key, ANY_OBJECT) for name, _ in functions], layout))


def _converted(schema: dict[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    from hearth.engine.gbnf_check import check_grammar
    from hearth.engine.schema_check import check_schema

    check_schema(schema, "tools")
    text = json_schema_to_gbnf(json.dumps(schema))
    text = _ROOT_RULE.sub("tool-call ::=", text, count=1)
    check_grammar("root ::= tool-call\n" + text, "tools")
    return text


def _literal(text: str) -> str:
    return json.dumps(text)  # a GBNF string literal is written as a JSON string
