"""What a request's tools and ``think`` mean for one model: what the template is given, which
grammar holds a call to its schema, and how the output is read back (``hearth.reply``).

Every API (Ollama's, OpenAI's, Anthropic's, Responses, the CLI and the Python API) reaches
this through ``Runtime.chat``, so a model's tool calls and reasoning are understood once, the
same way for all of them. A model whose template has no place for tools refuses them, and one
that cannot think refuses ``think``, as Ollama does: silently dropping either would give an
answer that looks right and is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hearth.api.types import ChatRequest, Think, ToolCall, ToolCallFunction
from hearth.errors import InvalidRequest
from hearth.reply import (
    ReplyDelta,
    ReplyStyle,
    call_frame,
    detect_style,
    make_parser,
    supports_tools,
)


@dataclass
class ReplyPlan:
    style: ReplyStyle
    tools: list[dict[str, Any]] | None = None      # what the template is shown
    tool_names: frozenset[str] | None = None       # what the output may call
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    forced: str | None = None                      # "required", or the one function's name
    think: Think = None

    @property
    def keep_special(self) -> bool:
        """Special tokens must stay in the text when the parser reads markers from it."""
        return self.style.thinking is not None or self.tool_names is not None

    def parser(self, prompt_text: str) -> Any:
        return make_parser(self.style, tool_names=self.tool_names, prompt_text=prompt_text,
                           think=self.think, tool_schemas=self._schemas())

    def _schemas(self) -> dict[str, Any]:
        """Each tool's parameter schema, by name: Qwen3-Coder writes arguments as untyped XML
        text, and only the schema says whether "5" is a number or a string."""
        schemas: dict[str, Any] = {}
        for tool in self.tools or []:
            function = tool.get("function", tool) if isinstance(tool, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                parameters = function.get("parameters") or function.get("input_schema")
                if isinstance(parameters, dict):
                    schemas[function["name"]] = parameters
        return schemas

    def tool_grammar(self, token_of: Any) -> dict[str, Any] | None:
        """The grammar that holds calls to the tools' schemas (lazy unless a call is forced)."""
        if self.tool_names is None or self.tools is None:
            return None
        frame = call_frame(self.style)
        if frame is None:
            return None
        from hearth.engine.tool_grammar import tool_call_grammar

        only = self.forced if self.forced not in (None, "required") else None
        return tool_call_grammar(frame, self.tools, only=only, lazy=self.forced is None,
                                 token_of=token_of)


def plan_reply(model_name: str, template: str, *, tools: list[dict[str, Any]] | None,
               tool_choice: Any = None, think: Think = None,
               template_kwargs: dict[str, Any] | None = None) -> ReplyPlan:
    style = detect_style(template)
    kwargs = dict(template_kwargs or {})
    plan = ReplyPlan(style=style, template_kwargs=kwargs, think=think)
    _plan_thinking(plan, model_name, think)
    _plan_tools(plan, model_name, template, tools, tool_choice)
    return plan


def plan_for_chat(model_name: str, template: str, request: ChatRequest) -> ReplyPlan:
    return plan_reply(model_name, template, tools=request.tools, tool_choice=request.tool_choice,
                      think=request.think, template_kwargs=request.chat_template_kwargs)


def _plan_thinking(plan: ReplyPlan, model_name: str, think: Think) -> None:
    if think is None:
        return
    if plan.style.thinking is None:
        if think is False:
            return  # nothing to switch off
        raise InvalidRequest(f"model '{model_name}' does not support thinking")
    # Qwen3-style templates read enable_thinking; gpt-oss reads reasoning_effort.
    plan.template_kwargs.setdefault("enable_thinking", think is not False)
    if isinstance(think, str):
        plan.template_kwargs.setdefault("reasoning_effort", think)


def _plan_tools(plan: ReplyPlan, model_name: str, template: str,
                tools: list[dict[str, Any]] | None, choice: Any) -> None:
    choice = _normal_choice(choice)
    if not tools:
        if choice not in (None, "auto", "none"):
            raise InvalidRequest("tool_choice needs tools")
        return
    if not supports_tools(template):
        raise InvalidRequest(f"model '{model_name}' does not support tools: its chat template "
                             "has no place for them")
    names = frozenset(name for name in (_tool_name(tool) for tool in tools) if name)
    if choice == "none":
        return  # not to call anything, so not shown the tools either
    if choice not in (None, "auto", "required") and choice not in names:
        raise InvalidRequest(f"tool_choice names '{choice}', which is not among the tools")
    plan.tools = tools
    plan.tool_names = names
    plan.forced = None if choice in (None, "auto") else choice


def _normal_choice(choice: Any) -> str | None:
    """"auto", "none", "required", a function name, or None; from any API's spelling."""
    if choice is None or isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else choice.get("name")
        if isinstance(name, str) and name:
            return name
    raise InvalidRequest("tool_choice must be \"auto\", \"none\", \"required\" or name a function")


def _tool_name(tool: Any) -> str | None:
    if not isinstance(tool, dict):
        return None
    function = tool.get("function", tool)
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def wire_calls(delta: ReplyDelta, first_index: int) -> list[ToolCall] | None:
    """The parsed calls as Ollama's tool_calls (with hearth's ids), numbered from ``first_index``."""
    if not delta.tool_calls:
        return None
    return [ToolCall(id=call.id, function=ToolCallFunction(name=call.name, arguments=call.arguments,
                                                            index=first_index + i))
            for i, call in enumerate(delta.tool_calls)]


def special_token_of(vocab: Any) -> Any:
    """``token_of(text)``: the id of ``text`` when it is one special token of this model (so a
    lazy grammar can trigger on the token itself), else None."""

    def token_of(text: str) -> int | None:
        special = vocab.tokenize(text, add_special=False, parse_special=True)
        if len(special) != 1:
            return None
        plain = vocab.tokenize(text, add_special=False, parse_special=False)
        return special[0] if plain != special else None

    return token_of
