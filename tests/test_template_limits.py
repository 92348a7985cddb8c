"""Chat templates render within a time and size budget (prompt/template_limits.py).

Every bomb runs in a child process with its address space capped at 1.5 GB and a wall-clock
timeout, so a regression fails these tests instead of hanging or swapping the machine: the
child reports, per bomb, how it ended, how long it took, and whether the next render worked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jinja2
import jinja2.ext
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hearth.errors import InvalidRequest, TemplateError
from hearth.prompt import template_limits, templates
from hearth.prompt.templates import FALLBACK_CHAT_TEMPLATE, render_chat, validate_template

LIMIT_MESSAGE = r"exceeds \d+ characters|took longer than|number of more than"

BIG = "'x' * 999999"
BIG_LIST = f"{{% set l = [{BIG}] * 1000 %}}"

# (template, what the TemplateError must say)
BOMBS: list[tuple[str, str]] = [
    # repetition and arithmetic
    ("{{ 'ab' * 5000000 }}", LIMIT_MESSAGE),
    ("{{ [1] * 10**9 }}", LIMIT_MESSAGE),
    ("{{ (1, 2, 3) * 999999999 }}", LIMIT_MESSAGE),
    ("{{ ('x' * 999999).encode() * 1000 }}", LIMIT_MESSAGE),
    ("{{ (('x' * 999999)|safe) * 1000 }}", LIMIT_MESSAGE),
    ("{{ 2 ** (10 ** 9) }}", LIMIT_MESSAGE),
    ("{{ (2 ** 64) ** (2 ** 64) }}", LIMIT_MESSAGE),
    ("{% set ns = namespace(x=2) %}{% for i in range(100) %}{% set ns.x = ns.x * ns.x %}"
     "{% endfor %}", LIMIT_MESSAGE),
    # doubling
    ("{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}", LIMIT_MESSAGE),
    ("{% set ns = namespace(s='a') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}", LIMIT_MESSAGE),
    ("{% set ns = namespace(l=[1]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}"
     "{% endfor %}", LIMIT_MESSAGE),
    ("{% set ns = namespace(l=[]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
     "{% endfor %}{{ ns.l }}", LIMIT_MESSAGE),
    ("{% set ns = namespace(l=[]) %}{% for i in range(40) %}{% set ns.l = [ns.l, ns.l] %}"
     "{% endfor %}{{ ns.l | tojson }}", LIMIT_MESSAGE),
    ("{% set ns = namespace(d={}) %}{% for i in range(60) %}{% set ns.d = dict(a=ns.d, b=ns.d) %}"
     "{% endfor %}{{ ns.d }}", LIMIT_MESSAGE),
    ("{% macro f(n) %}{% if n > 0 %}{% set s = f(n - 1) %}{{ s }}{{ s }}{% else %}x{% endif %}"
     "{% endmacro %}{{ f(60) }}", LIMIT_MESSAGE),
    # string methods
    ("{{ 'a'.ljust(10**9) }}", LIMIT_MESSAGE),
    ("{{ 'a'.rjust(999999999) }}", LIMIT_MESSAGE),
    ("{{ 'a'.center(10**9) }}", LIMIT_MESSAGE),
    ("{{ 'a'.zfill(10**9) }}", LIMIT_MESSAGE),
    ("{{ (('x' * 9)|safe).center(10**9) }}", LIMIT_MESSAGE),
    ("{{ ('\\t' * 999999).expandtabs(999999) }}", LIMIT_MESSAGE),
    ("{{ 'x'.replace('', 'y' * 999999) }}{{ ('x' * 1000).replace('', 'y' * 999999) }}",
     LIMIT_MESSAGE),
    ("{{ ('y' * 999999).join(['a'] * 100000) }}", LIMIT_MESSAGE),
    ("{{ ('a' * 999999).translate({97: 'b' * 999999}) }}", LIMIT_MESSAGE),
    ("{{ '{:>999999999}'.format(1) }}", LIMIT_MESSAGE),
    ("{{ '{:>{w}}'.format(1, w=999999999) }}", LIMIT_MESSAGE),
    ("{{ ('{0}' * 100000).format('x' * 999) }}", LIMIT_MESSAGE),
    ("{{ ('{a}' * 100000).format_map({'a': 'x' * 999}) }}", LIMIT_MESSAGE),
    ("{{ '{!r}'.format(['x' * 999999] * 1000) }}", LIMIT_MESSAGE),
    # printf
    ("{{ '%999999999d' % 1 }}", LIMIT_MESSAGE),
    ("{{ '%*d' % (999999999, 1) }}", LIMIT_MESSAGE),
    ("{{ '%.999999999f' % 1.0 }}", LIMIT_MESSAGE),
    ("{{ ('%(a)s' * 100000) % {'a': 'x' * 999999} }}", LIMIT_MESSAGE),
    ("{{ '%999999999d' | format(1) }}", LIMIT_MESSAGE),
    # filters
    ("{{ 'a' | center(10**9) }}", LIMIT_MESSAGE),
    ("{{ 'ab' | indent(999999999) }}", LIMIT_MESSAGE),
    ("{{ ('a\\n' * 500000) | indent('x' * 999999) }}", LIMIT_MESSAGE),
    ("{{ ('a ' * 500000) | wordwrap(1, wrapstring='x' * 999999) }}", LIMIT_MESSAGE),
    ("{{ ('x' * 999999) | replace('', 'y' * 999999) }}", LIMIT_MESSAGE),
    ("{{ range(100000) | map('center', 999999) | join }}", LIMIT_MESSAGE),
    ("{{ range(100000) | map('center', 999999) | list | length }}", LIMIT_MESSAGE),
    ("{{ range(3) | batch(10**9, 'x') | list }}", LIMIT_MESSAGE),
    ("{% set l = [[1]] * 999999 %}{{ l | sum(start=[]) | length }}", LIMIT_MESSAGE),
    ("{{ tools | tojson(indent=999999) }}", LIMIT_MESSAGE),
    ("{{ ['x'] * 1000 | tojson(separators=('y' * 999999, ':')) }}", LIMIT_MESSAGE),
    ("{{ ('<' * 999999) | e | length }}", LIMIT_MESSAGE),
    ("{{ lipsum(n=999999, min=999999, max=999999) }}", LIMIT_MESSAGE),
    # str() of a container that shares one big string many times
    (BIG_LIST + "{{ l }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ l | join }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ l | tojson }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ l | string }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ l | pprint }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ l ~ '' }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ '%s' % (l,) }}", LIMIT_MESSAGE),
    (BIG_LIST + "{{ '{}'.format(l) }}", LIMIT_MESSAGE),
    # many values each under the limit, kept alive together
    ("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}"
     "{% set ns.l = ns.l + [" + BIG + " ~ i] %}{% endfor %}", LIMIT_MESSAGE),
    ("{% set ns = namespace(l=[]) %}{% set big = " + BIG + " %}{% for i in range(100000) %}"
     "{% set ns.l = ns.l + [big[i:]] %}{% endfor %}", LIMIT_MESSAGE),
    ("{% for i in range(100000) %}{% set x = ('x' * 999999).split('x') %}{% endfor %}",
     LIMIT_MESSAGE),
    # buffers: {% set %} blocks, macros, call and filter blocks, blocks called through self
    ("{% set x %}{% for i in range(100000) %}{{ " + BIG + " }}{% endfor %}{% endset %}",
     LIMIT_MESSAGE),
    ("{% set big = " + BIG + " %}{% set x %}{% for i in range(100000) %}{{ big }}{% endfor %}"
     "{% endset %}", LIMIT_MESSAGE),
    ("{% filter upper %}{% for i in range(100000) %}{{ 'x' * 999 }}{% endfor %}{% endfilter %}",
     LIMIT_MESSAGE),
    ("{% macro m() %}{{ caller() }}{{ caller() }}{% endmacro %}{% call m() %}{{ " + BIG + " }}"
     "{% endcall %}", LIMIT_MESSAGE),
    ("{% block b %}{% for i in range(1000) %}" + "y" * 2000 + "{% endfor %}{% endblock %}"
     "{{ self.b() }}", LIMIT_MESSAGE),
    # output as it streams
    ("{% for i in range(100000) %}{% for j in range(100000) %}some output{% endfor %}"
     "{% endfor %}", LIMIT_MESSAGE),
    # time: loops and recursion that build nothing
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
     "took longer than 1 s"),
    ("{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
     "{{ f(40) }}", "took longer than 1 s"),
    ("{% for i in range(100000) %}{% for c in messages[0].content %}{% endfor %}{% endfor %}",
     "took longer than 1 s"),
    # recursion without end stops at Python's own limit
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "RecursionError"),
    # the Go-template check ran a regex with quadratic backtracking, in C, on every render
    ("{{" * 30000, "chat template failed"),
    ("{{ x " * 30000, "chat template failed"),
]

_CHILD = r"""
import json, resource, sys, threading, time
cap = 1536 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
from hearth.errors import TemplateError
from hearth.prompt.templates import FALLBACK_CHAT_TEMPLATE, render_chat
messages = [{"role": "user", "content": "hello " * 1000}]
tools = [{"name": "t", "parameters": {"a": [1, 2]}}]
for template in json.loads(sys.stdin.read()):
    start = time.perf_counter()
    try:
        render_chat(template, messages, tools=tools)
        outcome, message = "rendered", ""
    except TemplateError as exc:
        outcome, message = "TemplateError", str(exc)
    except BaseException as exc:
        outcome, message = type(exc).__name__, str(exc)
    elapsed = time.perf_counter() - start
    after = render_chat(FALLBACK_CHAT_TEMPLATE, [{"role": "user", "content": "hi"}])
    print(json.dumps({
        "outcome": outcome, "message": message[:300], "seconds": elapsed,
        "next_render_works": after == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "threads": threading.active_count(),
    }), flush=True)
"""


def _run_in_child(templates_: list[str], timeout: float = 240) -> list[dict[str, Any] | None]:
    env = {**os.environ, "HEARTH_TEMPLATE_TIMEOUT": "1"}
    env.pop("HEARTH_TEMPLATE_MAX_CHARS", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD], input=json.dumps(templates_), capture_output=True,
            text=True, timeout=timeout, env=env,
        )
        out, err = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:  # a bomb hung: what came before still counts
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = "timed out"
    results: list[dict[str, Any] | None] = [json.loads(line) for line in out.splitlines()]
    if len(results) < len(templates_):
        print(f"child ended early: {err[-2000:]}")
    return results + [None] * (len(templates_) - len(results))


@pytest.fixture(scope="module")
def bomb_results() -> list[dict[str, Any] | None]:
    return _run_in_child([template for template, _ in BOMBS])


@pytest.mark.parametrize("index", range(len(BOMBS)), ids=[b[0][:60] for b in BOMBS])
def test_bomb_is_refused_quickly_and_the_process_stays_healthy(
    index: int, bomb_results: list[dict[str, Any] | None]
) -> None:
    import re

    template, expected = BOMBS[index]
    result = bomb_results[index]
    assert result is not None, "the child died or hung on this bomb (see captured output)"
    assert result["outcome"] == "TemplateError", result
    assert re.search(expected, result["message"]), result
    assert result["seconds"] < 10, result
    assert result["next_render_works"], result
    # The main thread and the one watchdog, however many renders overran.
    assert result["threads"] <= 2, result


# --- in this process ---------------------------------------------------------------------------

SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


@pytest.mark.timeout(60)
def test_deadline_message_setting_and_recovery(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_TEMPLATE_TIMEOUT", "0.3")
    render_chat(FALLBACK_CHAT_TEMPLATE, [])
    threads = threading.active_count()
    for _ in range(3):
        start = time.monotonic()
        with pytest.raises(TemplateError, match=r"^chat template took longer than 0.3 s to render$"):
            render_chat(SLOW, [])
        assert time.monotonic() - start < 5
        assert render_chat(FALLBACK_CHAT_TEMPLATE, [{"role": "user", "content": "x"}]).startswith(
            "<|im_start|>user\nx"
        )
    assert threading.active_count() == threads
    # Nothing left armed: pure Python work past the old deadlines is not interrupted.
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        sum(range(1000))


@pytest.mark.timeout(60)
def test_deadline_applies_in_worker_threads_and_spares_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEARTH_TEMPLATE_TIMEOUT", "0.5")
    with ThreadPoolExecutor(max_workers=2) as pool:
        slow = pool.submit(render_chat, SLOW, [])
        fast = [
            pool.submit(render_chat, FALLBACK_CHAT_TEMPLATE, [{"role": "user", "content": str(i)}])
            for i in range(50)
        ]
        assert [f.result() for f in fast] == [
            f"<|im_start|>user\n{i}<|im_end|>\n<|im_start|>assistant\n" for i in range(50)
        ]
        with pytest.raises(TemplateError, match="took longer than 0.5 s"):
            slow.result()


def test_default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_TEMPLATE_TIMEOUT", raising=False)
    monkeypatch.delenv("HEARTH_TEMPLATE_MAX_CHARS", raising=False)
    budget = template_limits.Budget.from_environment()
    assert (budget.seconds, budget.max_chars) == (2.0, 1_000_000)
    assert len(render_chat("{{ 'x' * 1000000 }}", [])) == 1_000_000
    with pytest.raises(TemplateError, match=r"output exceeds 1000000 characters"):
        render_chat("{{ 'x' * 1000001 }}", [])
    with pytest.raises(TemplateError, match=r"^chat template output exceeds 1000000 characters$"):
        render_chat("{{ 'x' * 600000 }}{{ 'y' * 600000 }}", [])


def test_max_chars_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_TEMPLATE_MAX_CHARS", "50")
    assert render_chat("{{ 'x' * 50 }}", []) == "x" * 50
    for template in ["{{ 'x' * 51 }}", "x" * 51, "{% for m in messages %}{{ m.content }}{% endfor %}"]:
        with pytest.raises(TemplateError, match="exceeds 50 characters"):
            render_chat(template, [{"content": "y" * 30}, {"content": "z" * 30}])
    monkeypatch.setenv("HEARTH_TEMPLATE_MAX_CHARS", "5000")
    assert len(render_chat("{{ 'x' * 5000 }}", [])) == 5000


@pytest.mark.parametrize(
    ("env", "value"),
    [("HEARTH_TEMPLATE_TIMEOUT", "soon"), ("HEARTH_TEMPLATE_TIMEOUT", "0"),
     ("HEARTH_TEMPLATE_MAX_CHARS", "-1"), ("HEARTH_TEMPLATE_MAX_CHARS", "1e6")],
)
def test_bad_settings_are_explained(monkeypatch: pytest.MonkeyPatch, env: str, value: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(InvalidRequest, match=env):
        render_chat("ok", [])


def test_validate_template_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_TEMPLATE_MAX_CHARS", "1000")
    start = time.monotonic()
    with pytest.raises(TemplateError):
        validate_template("{{" * 30000)
    assert time.monotonic() - start < 10
    # A constant folded at compile time is measured like any other value.
    with pytest.raises(TemplateError, match="exceeds 1000 characters"):
        render_chat("{{ 'a' | center(5000) }}", [])


# --- real templates render exactly as the plain sandbox renders them ----------------------------


def _reference_environment() -> ImmutableSandboxedEnvironment:
    """What templates.py used before the limits: the same settings, no budget."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[jinja2.ext.loopcontrols, templates._GenerationTag],
    )
    env.filters["tojson"] = templates._tojson
    env.globals["raise_exception"] = templates._raise_exception
    env.globals["strftime_now"] = templates._strftime_now
    return env


REFERENCE = _reference_environment()


def _reference(template: str, messages: list[dict], **kwargs: Any) -> str:
    context = {"add_generation_prompt": True, "bos_token": "", "eos_token": "", "tools": None}
    context.update(kwargs, messages=messages)
    return REFERENCE.from_string(template).render(context)


SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Meta's Llama 3.1 template (tools in the first user message, tool calls as JSON), with a
# namespace pass like Qwen's templates make to find the last user turn.
LLAMA31_TOOLS_TEMPLATE = """\
{{- bos_token }}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- set ns = namespace(last_user=-1, tool_turns=0) %}
{%- for message in messages %}
    {%- if message.role == 'user' %}{% set ns.last_user = loop.index0 %}{% endif %}
    {%- if message.role == 'tool' %}{% set ns.tool_turns = ns.tool_turns + 1 %}{% endif %}
{%- endfor %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's none!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
    {%- if loop.index0 == ns.last_user %}{{- '' }}{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "required": ["city"], "properties": {
            "city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}},
]
TOOL_CONVERSATION = [
    {"role": "system", "content": "  You are helpful.  "},
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
    {"role": "tool", "content": "18 C, sunny"},
    {"role": "assistant", "content": "18 C and sunny."},
    {"role": "user", "content": "And tomorrow? ☀️"},
]
LONG_CONVERSATION = [{"role": "system", "content": "Be brief."}] + [
    {"role": "user" if i % 2 == 0 else "assistant", "content": f"message {i} " * 20}
    for i in range(200)
]


@pytest.mark.parametrize(
    ("template", "messages", "kwargs"),
    [
        (FALLBACK_CHAT_TEMPLATE, TOOL_CONVERSATION, {}),
        (FALLBACK_CHAT_TEMPLATE, LONG_CONVERSATION, {}),
        (SMOLLM2_TEMPLATE, LONG_CONVERSATION[1:], {}),
        (LLAMA31_TOOLS_TEMPLATE, TOOL_CONVERSATION, {"tools": TOOLS, "bos_token": "<|bot|>"}),
        (LLAMA31_TOOLS_TEMPLATE, LONG_CONVERSATION, {"tools": TOOLS}),
        (LLAMA31_TOOLS_TEMPLATE, LONG_CONVERSATION, {}),
    ],
    ids=["chatml-tools", "chatml-200", "smollm2-200", "llama31-tools", "llama31-200", "llama31-none"],
)
def test_real_templates_render_as_before(template: str, messages: list, kwargs: dict) -> None:
    assert render_chat(template, messages, **kwargs) == _reference(template, messages, **kwargs)


def test_a_prompt_near_the_limit_still_renders() -> None:
    one_big = [{"role": "user", "content": "word " * 190_000}]
    many = [{"role": "user", "content": "é" * 4000} for _ in range(200)]
    for messages in (one_big, many):
        for template in (FALLBACK_CHAT_TEMPLATE, LLAMA31_TOOLS_TEMPLATE):
            assert render_chat(template, messages) == _reference(template, messages)


# Small uses of every operation the budget intercepts: each must mean what it meant before.
SEMANTICS = [
    "{{ 1 + 2 + 3 }} {{ [1] + [2] + [3] }} {{ (1,) + (2,) }} {{ 1.5 + 2 }} {{ 'a' + 'b' + 'c' }}",
    "{{ ('<'|safe) + '<' + 'x' }} {{ '<' + ('<'|safe) }} {{ 'a' * 3 }} {{ 3 * 'a' }} {{ [0] * 2 }}",
    "{{ 2 ** 10 }} {{ 2 ** -1 }} {{ 2 ** 0.5 }} {{ 7 % 3 }} {{ 7 * 6 }} {{ -3 ** 2 }}",
    "{{ '%s-%05d-%.2f-%x-%r-%c-%%' % ('a', 42, 3.14159, 255, 'q', 65) }}",
    "{{ '%(a)s/%(b)s' % {'a': 1, 'b': [2]} }} {{ '%s' % 'x' }} {{ '%-*s|' % (5, 'ab') }}",
    "{{ 'ab' ~ 1 ~ none ~ [1, 'x'] ~ {'k': (1, 2)} }} {{ messages[0].content[1:3] }}",
    "{{ messages[::-1] | map(attribute='role') | join(',') }} {{ 'abcdef'[::2] }}",
    "{{ 'ab'.center(6, '*') }}{{ 'ab'.ljust(4, '.') }}{{ 'ab'.rjust(4) }}{{ '7'.zfill(3) }}",
    "{{ 'a\\tb'.expandtabs(4) }}{{ 'aXbX'.replace('X', '--') }}{{ 'ab'.replace('', '.', 2) }}",
    "{{ '-'.join(['a', 'b']) }}{{ '-'.join(messages | map(attribute='role')) }}",
    "{{ 'abc'.translate({97: 'AA', 98: none}) }} {{ 'x'.split('x') }} {{ 'A B'.lower() }}",
    "{{ '{} {:>5} {:.2f} {name!r}'.format('a', 'b', 1.23456, name='n') }}{{ '{0}{0}'.format(1) }}",
    "{{ '{a[0]} {b}'.format_map({'a': [1], 'b': 2}) }} {{ ('{}'|safe).format('<') }}",
    "{{ 'ab' | center(8) }}|{{ 'a\\nb' | indent(2, first=true) }}|{{ 'a\\n\\nb' | indent('> ', blank=true) }}",
    "{{ 'the quick brown fox jumps' | wordwrap(10) }}|{{ '%s=%d' | format('x', 3) }}",
    "{{ [1, 2, 3] | join('+') }}{{ tools | join(',', attribute='name') }}{{ 'abc' | join('.') }}",
    "{{ 'aXb' | replace('X', 'yy') }}{{ 'hello world foo' | truncate(9, leeway=0) }}",
    "{{ tools | tojson }}{{ tools | tojson(indent=2) }}{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
    "{{ tools | pprint }}{{ range(5) | batch(2, 0) | list }}{{ range(5) | slice(2) | list }}",
    "{{ [[1], [2, 3]] | sum(start=[]) }}{{ [1, 2] | sum }}{{ tools | sum(attribute='n', start=1) }}",
    "{{ {'a': '<b>', 'c': none} | xmlattr }}{{ 'x <y>' | e }}{{ 'see https://a.io' | urlize }}",
    "{{ [3, 1, 2] | sort | list }}{{ 'abc' | list }}{{ 'a b c' | wordcount }}{{ '  x ' | trim }}",
    "{% set ns = namespace(s='', l=[]) %}{% for m in messages %}{% set ns.s = ns.s ~ m.role %}"
    "{% set ns.l = ns.l + [loop.index] %}{% endfor %}{{ ns.s }}{{ ns.l }}{{ ns }}",
    "{% macro greet(name) %}hi {{ name }}{{ caller() if caller is defined }}{% endmacro %}"
    "{{ greet('a') }}{% call greet('b') %}!{% endcall %}",
    "{% set block_value %}{% for m in messages %}[{{ m.role }}]{% endfor %}{% endset %}"
    "{{ block_value }}{% filter upper %}up{{ 'per' }}{% endfilter %}",
    "{% block head %}H{{ messages | length }}{% endblock %}{{ self.head() }}",
    "{% autoescape true %}{{ '<' ~ 'x' }}{{ '<' }}{% endautoescape %}{{ '<' ~ 'x' }}",
    "{{ messages }}{{ tools }}{{ (1, 'a') }}{{ none }}{{ true }}{{ 1.0 }}{{ range(3) }}",
    "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}",
    "{{ dict(a=1, b=[2]) | dictsort }}{{ messages | groupby('role') | map('first') | list }}",
    "{% for k, v in {'a': 1}.items() %}{{ k }}={{ v }}{% endfor %}{{ cycler('a', 'b').next() }}",
]


@pytest.mark.parametrize("template", SEMANTICS)
def test_intercepted_operations_keep_their_meaning(template: str) -> None:
    messages = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "yo"}]
    tools = [{"name": "a", "n": 2}, {"name": "b", "n": 3}]
    assert render_chat(template, messages, tools=tools) == _reference(template, messages, tools=tools)


def test_errors_inside_templates_are_unchanged() -> None:
    for template in ["{{ 'a' + 1 }}", "{{ 'a' * 'b' }}", "{{ '%d' % 'x' }}", "{{ nothing + 1 }}"]:
        with pytest.raises(TemplateError, match="chat template failed") as ours:
            render_chat(template, [])
        with pytest.raises(Exception) as theirs:  # noqa: B017, PT011
            _reference(template, [])
        assert str(ours.value).endswith(str(theirs.value))
