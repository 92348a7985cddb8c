"""Choosing the reply style from a chat template: small templates carrying each family's
markers, written from the families' published formats."""

from __future__ import annotations

import re

import pytest

from hearth.reply import (
    ReplyStyle,
    call_frame,
    detect_style,
    make_parser,
    new_call_id,
    prompt_opens_thinking,
    supports_thinking,
    supports_tools,
)
from tests.family_templates import HERMES_TOOLS

CHATML = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

GPT_OSS = (
    "{% for m in messages %}<|start|>{{ m.role }}<|channel|>final<|message|>{{ m.content }}"
    "<|end|>{% endfor %}{% if tools %}<|start|>developer<|message|># Tools\nnamespace functions "
    "{% for t in tools %}type {{ t.function.name }} = () => any;{% endfor %}<|end|>{% endif %}"
    "<|start|>assistant"
)
QWEN3 = (
    "{% if tools %}<|im_start|>system\n<tools>{% for tool in tools %}\n{{ tool | tojson }}"
    "{% endfor %}\n</tools>\nReturn <tool_call>\n{\"name\": <function-name>, \"arguments\": "
    "<args-json-object>}\n</tool_call><|im_end|>\n{% endif %}"
    "{% for m in messages %}{% if m.reasoning_content %}<think>\n{{ m.reasoning_content }}\n"
    "</think>\n\n{% endif %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n{% if enable_thinking is defined and enable_thinking is false %}"
    "<think>\n\n</think>\n\n{% endif %}"
)
QWEN3_CODER = (
    "{% if tools %}<|im_start|>system\n# Tools\n<tools>{% for tool in tools %}<function>"
    "<name>{{ tool.function.name }}</name></function>{% endfor %}</tools>\n"
    "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n"
    "</parameter>\n</function>\n</tool_call><|im_end|>\n{% endif %}" + CHATML
)
MISTRAL = (
    "{% for m in messages %}{% if loop.last and tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}"
    "[/AVAILABLE_TOOLS]{% endif %}{% if m.role == 'user' %}[INST]{{ m.content }}[/INST]"
    "{% elif m.tool_calls %}[TOOL_CALLS]{{ m.tool_calls | tojson }}{{ eos_token }}"
    "{% else %}{{ m.content }}{{ eos_token }}{% endif %}{% endfor %}"
)
MISTRAL_WITHOUT_MARKER = (
    "{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}"
    "{% for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}"
)
MAGISTRAL = "{% for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}[THINK]"
LLAMA31 = (
    "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
    "{% if m.role == 'ipython' %}{{ m.content | tojson }}{% elif m.tool_calls %}"
    "<|python_tag|>{{ m.tool_calls[0].function | tojson }}{% else %}{{ m.content }}{% endif %}"
    "<|eot_id|>{% endfor %}{% if tools %}{% for t in tools %}{{ t | tojson }}{% endfor %}"
    "{% endif %}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
LLAMA32 = (
    "{% if tools %}<|start_header_id|>system<|end_header_id|>\n\nRespond in the format "
    "{\"name\": function name, \"parameters\": dictionary of argument name and its value}."
    "{% for t in tools %}{{ t | tojson }}{% endfor %}<|eot_id|>{% endif %}"
    "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}"
    "<|eot_id|>{% endfor %}<|start_header_id|>assistant<|end_header_id|>\n\n"
)
DEEPSEEK_R1 = (
    "{% for m in messages %}{% if m.role == 'user' %}<｜User｜>{{ m.content }}"
    "{% else %}{% set c = m.content.split('</think>')[-1] %}<｜Assistant｜>{{ c }}"
    "<｜end▁of▁sentence｜>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<｜Assistant｜><think>\n{% endif %}"
)
GENERIC_TOOLS = ("{% if tools %}System: you can use these functions: {{ tools | tojson }}"
                 "{% endif %}" + CHATML)


@pytest.mark.parametrize(("template", "specials", "expected"), [
    pytest.param(GPT_OSS, (), ReplyStyle(thinking="harmony", tools="harmony"), id="gpt-oss"),
    pytest.param(QWEN3, (), ReplyStyle(thinking="tags", tools="hermes"), id="qwen3"),
    pytest.param(QWEN3_CODER, (), ReplyStyle(tools="qwen3-coder"), id="qwen3-coder"),
    pytest.param(HERMES_TOOLS, (), ReplyStyle(tools="hermes"), id="hermes"),
    pytest.param(MISTRAL, (), ReplyStyle(tools="mistral"), id="mistral"),
    pytest.param(MISTRAL_WITHOUT_MARKER, ("[INST]", "[TOOL_CALLS]"), ReplyStyle(tools="mistral"),
                 id="mistral-marker-only-in-vocabulary"),
    pytest.param(MAGISTRAL, (), ReplyStyle(thinking="tags", think_open="[THINK]",
                                           think_close="[/THINK]"), id="magistral"),
    pytest.param(LLAMA31, (), ReplyStyle(tools="llama3"), id="llama3.1"),
    pytest.param(LLAMA32, (), ReplyStyle(tools="llama3"), id="llama3.2"),
    pytest.param(DEEPSEEK_R1, (), ReplyStyle(thinking="tags"), id="deepseek-r1"),
    pytest.param(GENERIC_TOOLS, (), ReplyStyle(tools="json"), id="tools-without-a-marker"),
    pytest.param(GENERIC_TOOLS, ("<|python_tag|>",), ReplyStyle(tools="llama3"),
                 id="tools-with-the-marker-in-the-vocabulary"),
    pytest.param(CHATML, ("<tool_call>",), ReplyStyle(), id="chatml-without-tools"),
    pytest.param(None, (), ReplyStyle(), id="no-template"),
])
def test_detect_style(template, specials, expected):
    assert detect_style(template, specials) == expected


@pytest.mark.parametrize(("template", "expected"), [
    ("{% if tools %}x{% endif %}", True),
    ("{%- for tool in tools -%}{{ tool }}{%- endfor -%}", True),
    ("{{ tools | tojson }}", True),
    ("{% set ns = namespace(x=tools is defined) %}", True),
    ("You have <tools></tools> tags.", False),  # literal text, not the variable
    ("{{ '<tools>' }}{{ message.tools }}", False),  # a string and an attribute
    ("{% if tools_json %}{% endif %}", False),
    ("", False),
    (None, False),
])
def test_supports_tools_reads_the_variable_not_the_text(template, expected):
    assert supports_tools(template) is expected


def test_supports_thinking():
    assert supports_thinking(detect_style(QWEN3))
    assert supports_thinking(detect_style(GPT_OSS))
    assert not supports_thinking(detect_style(HERMES_TOOLS))


@pytest.mark.parametrize(("style", "prompt", "expected"), [
    (ReplyStyle(thinking="tags"), "<｜Assistant｜><think>\n", True),
    (ReplyStyle(thinking="tags"), "<|im_start|>assistant\n<think>\n\n</think>\n\n", False),
    (ReplyStyle(thinking="tags"), "<|im_start|>user\n<think> in a question<|im_end|>", False),
    (ReplyStyle(thinking="harmony"), "<|start|>assistant<|channel|>analysis<|message|>", True),
    (ReplyStyle(thinking="harmony"), "<|start|>assistant", False),
    (ReplyStyle(), "<think>\n", False),
])
def test_prompt_opens_thinking(style, prompt, expected):
    assert prompt_opens_thinking(style, prompt) is expected


def test_a_detected_style_reads_the_templates_own_call():
    style = detect_style(QWEN3)
    parser = make_parser(style, tool_names=frozenset({"get_weather"}),
                         prompt_text="<|im_start|>assistant\n")
    text = ('<think>\nok\n</think>\n\n<tool_call>\n{"name": "get_weather", "arguments": '
            '{"city": "Paris"}}\n</tool_call>')
    delta = parser.feed(text)
    calls = delta.tool_calls + parser.finish().tool_calls
    assert delta.thinking == "ok"
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Paris"})]


@pytest.mark.parametrize(("tools", "pattern"), [
    ("mistral", r"[A-Za-z0-9]{9}"),
    ("hermes", r"call_[0-9a-f]{24}"),
    ("harmony", r"call_[0-9a-f]{24}"),
    (None, r"call_[0-9a-f]{24}"),
])
def test_call_ids_have_the_shape_the_family_accepts(tools, pattern):
    ids = {new_call_id(ReplyStyle(tools=tools)) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(pattern, call_id) for call_id in ids)


@pytest.mark.parametrize(("tools", "trigger", "opener", "closer", "layout"), [
    ("hermes", "<tool_call>", "<tool_call>\n", "\n</tool_call>", "name-arguments"),
    ("mistral", "[TOOL_CALLS]", "[TOOL_CALLS]", "", "mistral-list"),
    ("llama3", "<|python_tag|>", "<|python_tag|>", "", "name-parameters"),
    ("json", '{"name"', "", "", "name-arguments"),
    ("harmony", "to=functions.", "<|channel|>commentary to=functions.", "<|call|>", "harmony"),
])
def test_call_frames(tools, trigger, opener, closer, layout):
    frame = call_frame(ReplyStyle(tools=tools))
    assert (frame.trigger, frame.opener, frame.closer, frame.layout) == (
        trigger, opener, closer, layout)
    assert frame.triggers[0] == trigger
    assert frame.opener.startswith(trigger) or not frame.opener or layout == "harmony"


@pytest.mark.parametrize("tools", ["qwen3-coder", None])
def test_no_frame_where_a_json_grammar_does_not_fit(tools):
    assert call_frame(ReplyStyle(tools=tools)) is None


FRAME_WRITES = {
    "name-arguments": '{{"name": "get_weather", "arguments": {args}}}',
    "name-parameters": '{{"name": "get_weather", "parameters": {args}}}',
    "mistral-list": '[{{"name": "get_weather", "arguments": {args}}}]',
}


@pytest.mark.parametrize("tools", ["hermes", "mistral", "llama3", "json", "harmony"])
def test_a_call_written_in_its_frame_is_read_back_as_that_call(tools):
    # What a grammar built from the frame makes the model write is what the parser reads.
    style = ReplyStyle(tools=tools, thinking="harmony" if tools == "harmony" else None)
    frame = call_frame(style)
    args = '{"city": "Paris"}'
    if frame.layout == "harmony":
        text = frame.opener + "get_weather" + frame.arguments_prefix + args + frame.closer
    else:
        text = frame.opener + FRAME_WRITES[frame.layout].format(args=args) + frame.closer
    parser = make_parser(style, tool_names=frozenset({"get_weather"}))
    delta = parser.feed(text)
    end = parser.finish()
    assert delta.content + end.content == ""
    assert [(c.name, c.arguments) for c in delta.tool_calls + end.tool_calls] == [
        ("get_weather", {"city": "Paris"})]


def test_mistral_templates_from_v11_on_write_calls_as_name_and_args():
    from hearth.reply import call_frame
    from tests.family_templates import MISTRAL, MISTRAL_V11

    newer, older = detect_style(MISTRAL_V11), detect_style(MISTRAL)
    assert newer.tools == older.tools == "mistral"
    assert newer.named_args and not older.named_args
    assert call_frame(newer).layout == "mistral-args" and call_frame(older).layout == "mistral-list"
