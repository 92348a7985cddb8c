"""Which output format a model writes, read from its chat template.

A template shows the model its own conventions: the tags it thinks in, the marker that opens a
tool call, the layout of a call. The same markers decide how the reply is read back, so the
template (and, where a template leaves it out, the vocabulary's special tokens) is enough to
choose a parser without a table of model names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Thinking = Literal["tags", "harmony"]
ToolFormat = Literal["hermes", "qwen3-coder", "llama3", "mistral", "harmony", "json"]


@dataclass(frozen=True)
class ReplyStyle:
    """How a model's reply is laid out: its reasoning (``thinking``) and its tool calls."""

    thinking: Thinking | None = None
    tools: ToolFormat | None = None
    think_open: str = "<think>"
    think_close: str = "</think>"
    # Mistral's newer templates (v11 on: Mistral Small 3.2, Devstral, Magistral) write a call
    # as ``[TOOL_CALLS]NAME[ARGS]{...}`` instead of a JSON list.
    named_args: bool = False


# Harmony (gpt-oss) frames every message with these; Llama 3's "<|start_header_id|>" does not
# match "<|start|>".
_HARMONY = ("<|channel|>", "<|start|>")
# Markers in the template's literal text, in the order they are told apart: Qwen3-Coder writes
# "<function=" inside the "<tool_call>" that Hermes and Qwen2.5/3 also use.
_TOOL_MARKERS: tuple[tuple[str, ToolFormat], ...] = (
    ("<tool_call>", "hermes"),
    ("[TOOL_CALLS]", "mistral"),
    ("<|python_tag|>", "llama3"),
)
_JINJA_CODE = re.compile(r"\{%-?(.*?)-?%\}|\{\{-?(.*?)-?\}\}", re.DOTALL)
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)
# The variable itself, not an attribute (``message.tools``) or a longer name (``tools_json``).
_TOOLS_VARIABLE = re.compile(r"(?<![\w.])tools\b")


def supports_tools(template: str | None) -> bool:
    """Whether the template uses the ``tools`` variable (in its code, not its literal text:
    "<tools></tools>" in a system prompt does not count)."""
    if not template:
        return False
    for match in _JINJA_CODE.finditer(template):
        code = _STRING_LITERAL.sub("''", match.group(1) or match.group(2) or "")
        if _TOOLS_VARIABLE.search(code):
            return True
    return False


def supports_thinking(style: ReplyStyle) -> bool:
    return style.thinking is not None


def detect_style(template: str | None, special_tokens: Iterable[str] = ()) -> ReplyStyle:
    """The reply style the template teaches; ``ReplyStyle()`` (plain text) when it teaches none."""
    text = template or ""
    if any(marker in text for marker in _HARMONY):
        return ReplyStyle(thinking="harmony", tools="harmony" if supports_tools(text) else None)
    tools = _tool_format(text, frozenset(special_tokens))
    return ReplyStyle(thinking=_thinking(text), tools=tools,
                      named_args=tools == "mistral" and "[ARGS]" in text, **_think_tags(text))


def _thinking(text: str) -> Thinking | None:
    markers = ("<think>", "[THINK]", "enable_thinking", "reasoning_content")
    return "tags" if any(marker in text for marker in markers) else None


def _think_tags(text: str) -> dict[str, str]:
    # Magistral thinks in [THINK]...[/THINK]; everyone else in <think>...</think>.
    if "[THINK]" in text and "<think>" not in text:
        return {"think_open": "[THINK]", "think_close": "[/THINK]"}
    return {}


def _tool_format(text: str, specials: frozenset[str]) -> ToolFormat | None:
    if not supports_tools(text):
        return None  # the model is never shown tools, so no reply of it holds a call
    for marker, family in _TOOL_MARKERS:
        if marker in text:
            if family == "hermes" and "<function=" in text:
                return "qwen3-coder"
            return family
    # Llama 3.x templates name the tool role "ipython" and ask for {"name", "parameters"}.
    if "ipython" in text or '"parameters"' in text:
        return "llama3"
    for marker, family in _TOOL_MARKERS:
        if marker in specials:
            return family
    return "json"
