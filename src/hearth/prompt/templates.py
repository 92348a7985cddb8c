"""Render a model's chat template (a GGUF's ``tokenizer.chat_template``) into a prompt.

A chat template ships inside a downloaded model file, so it is untrusted input: it runs in
jinja2's ``ImmutableSandboxedEnvironment`` with the same settings and helpers Hugging Face's
``apply_chat_template`` gives it, so real templates render as their authors intended, and within
the time and size budget of ``template_limits``. Anything that goes wrong in a template,
including a blocked escape attempt or an overrun, is a ``TemplateError``.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.ext import Extension

from hearth.errors import TemplateError
from hearth.prompt import template_limits

# ChatML, the format of SmolLM2, Qwen and many fine-tunes; used when a model has no template.
FALLBACK_CHAT_TEMPLATE = (
    "{%- for message in messages %}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '')"
    " + '<|im_end|>\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "{{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

# Go templates reach fields with a leading dot (`.Prompt`, `range .Messages`); Jinja never does.
# Two passes, not one pattern: `{{[^}]*?\.X` retried from every `{{` is quadratic, and 20k
# unclosed `{{` took 40 s in C, where no deadline can stop it.
_ACTION_RE = re.compile(r"\{\{[^}]*")
_GO_FIELD_RE = re.compile(r"(?<![\w\])'\"])\.[A-Z]")


class _Sandbox(template_limits.BoundedSandbox):
    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        # jinja2 returns an Undefined here, which prints as "" and lets the template carry on;
        # an escape attempt should stop the render instead.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


class _GenerationTag(Extension):
    """``{% generation %}...{% endgeneration %}``: Hugging Face marks assistant text with it
    for training masks; for inference it only renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> list[nodes.Node]:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _raise_exception(message: Any) -> None:
    raise TemplateError(f"chat template: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # jinja2's own tojson escapes <, >, & and ' for HTML; a prompt needs the plain JSON.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _make_environment() -> _Sandbox:
    env = _Sandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols, _GenerationTag],
        filters={"tojson": _tojson},
    )
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


_ENVIRONMENT = _make_environment()


@functools.lru_cache(maxsize=64)
def _compile(template: str) -> jinja2.Template:
    return _ENVIRONMENT.from_string(template)


def _check_not_go_template(template: str) -> None:
    if any(_GO_FIELD_RE.search(action[0]) for action in _ACTION_RE.finditer(template)):
        raise TemplateError(
            "this looks like an Ollama (Go) template ({{ .Prompt }}, {{ range .Messages }}); "
            "hearth expects a Jinja chat template, like a GGUF's tokenizer.chat_template"
        )


def _failure(exc: Exception) -> TemplateError:
    if isinstance(exc, TemplateSyntaxError):
        return TemplateError(f"chat template failed: syntax error on line {exc.lineno}: {exc}")
    return TemplateError(f"chat template failed: {type(exc).__name__}: {exc}")


def _compile_and_parse(template: str) -> nodes.Template:
    _compile(template)
    return _ENVIRONMENT.parse(template)


def _render(template: str, context: dict) -> str:
    return _compile(template).render(context)


def validate_template(template: str) -> None:
    """Check that a template compiles and reaches for no private attributes, without rendering
    it: a model is refused when it is created, not the first time someone chats with it."""
    _check_not_go_template(template)
    try:
        tree = template_limits.bounded(_compile_and_parse, template)
    except TemplateError:
        raise
    except Exception as exc:
        raise _failure(exc) from exc
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(name, str) and name.startswith("_"):
            raise TemplateError(
                f"chat template line {node.lineno} reaches for '{name}', which the sandbox forbids"
            )


def render_chat(
    template: str,
    messages: list[dict],
    *,
    add_generation_prompt: bool = True,
    bos_token: str = "",
    eos_token: str = "",
    tools: list[dict] | None = None,
    extra: dict | None = None,
) -> str:
    """The prompt text for ``messages``, as the model's template lays it out."""
    _check_not_go_template(template)
    context = dict(extra or {})
    context.update(
        messages=messages,
        add_generation_prompt=add_generation_prompt,
        bos_token=bos_token,
        eos_token=eos_token,
        tools=tools,
    )
    try:
        return template_limits.bounded(_render, template, context)
    except TemplateError:
        raise
    except Exception as exc:
        raise _failure(exc) from exc
