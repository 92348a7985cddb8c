from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path

import pytest

from hearth.errors import TemplateError
from hearth.prompt import templates
from hearth.prompt.templates import FALLBACK_CHAT_TEMPLATE, render_chat, validate_template

# SmolLM2-135M-Instruct's tokenizer.chat_template (ChatML with a default system prompt).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Meta-Llama-3-8B-Instruct's template, as stored in its tokenizer_config.json (escapes intact).
LLAMA3_TEMPLATE = (
    r"{% set loop_messages = messages %}{% for message in loop_messages %}"
    r"{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    r"+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    r"{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    r"{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    r"{% endif %}"
)

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Sky colour?"},
]


def test_chatml_template() -> None:
    prompt = render_chat(SMOLLM2_TEMPLATE, [{"role": "user", "content": "Hi"}])
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_chatml_system_and_multi_turn() -> None:
    prompt = render_chat(SMOLLM2_TEMPLATE, CONVERSATION)
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nSky colour?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_llama3_template() -> None:
    prompt = render_chat(LLAMA3_TEMPLATE, CONVERSATION, bos_token="<|begin_of_text|>")
    assert prompt == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nSky colour?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


def test_add_generation_prompt_false() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    with_prompt = render_chat(LLAMA3_TEMPLATE, messages)
    without = render_chat(LLAMA3_TEMPLATE, messages, add_generation_prompt=False)
    assert without == "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    assert with_prompt == without + "<|start_header_id|>assistant<|end_header_id|>\n\n"


def test_fallback_template_is_chatml() -> None:
    validate_template(FALLBACK_CHAT_TEMPLATE)
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": None}]
    prompt = render_chat(FALLBACK_CHAT_TEMPLATE, messages, add_generation_prompt=False)
    assert prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
    assert render_chat(FALLBACK_CHAT_TEMPLATE, messages[:1]).endswith("<|im_start|>assistant\n")


def test_eos_tools_and_extra_variables_reach_the_template() -> None:
    template = (
        "{% if tools %}{% for tool in tools %}[{{ tool['name'] }}]{% endfor %}{% endif %}"
        "{{ messages[0]['content'] }}{{ eos_token }}"
        "{% if enable_thinking is defined and not enable_thinking %}/no_think{% endif %}"
    )
    messages = [{"role": "user", "content": "x"}]
    assert render_chat(template, messages, eos_token="</s>") == "x</s>"
    tools = [{"name": "a"}, {"name": "b"}]
    extra = {"enable_thinking": False}
    assert render_chat(template, messages, tools=tools, extra=extra) == "[a][b]x/no_think"


def test_tojson_keeps_unicode_and_supports_indent() -> None:
    tools = [{"name": "météo", "html": "<b>&'"}]
    assert render_chat("{{ tools | tojson }}", [], tools=tools) == (
        '[{"name": "météo", "html": "<b>&\'"}]'
    )
    assert render_chat("{{ tools[0] | tojson(indent=2) }}", [], tools=tools) == (
        '{\n  "name": "météo",\n  "html": "<b>&\'"\n}'
    )


def test_strftime_now() -> None:
    assert render_chat("{{ strftime_now('%Y') }}", []) == str(datetime.now().year)


def test_loop_controls() -> None:
    template = "{% for m in messages %}{% if loop.index > 2 %}{% break %}{% endif %}{{ m.role }};"
    template += "{% endfor %}"
    assert render_chat(template, CONVERSATION) == "system;user;"


def test_trim_blocks_and_lstrip_blocks_as_hugging_face_does() -> None:
    template = "{% for m in messages %}\n    {% if m.role == 'user' %}\n{{ m.content }}\n"
    template += "    {% endif %}\n{% endfor %}"
    assert render_chat(template, CONVERSATION) == "Hi\nSky colour?\n"


def test_generation_tag_renders_its_body() -> None:
    template = "{% for m in messages %}{% generation %}{{ m.content }}{% endgeneration %}"
    template += "{% endfor %}"
    assert render_chat(template, CONVERSATION[:2]) == "Be brief.Hi"


def test_raise_exception_surfaces_the_templates_message() -> None:
    template = (
        "{% if messages[0]['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}ok"
    )
    with pytest.raises(TemplateError, match="System role not supported"):
        render_chat(template, CONVERSATION)
    assert render_chat(template, CONVERSATION[1:]) == "ok"


def test_syntax_error() -> None:
    with pytest.raises(TemplateError, match=r"chat template failed: syntax error on line 2"):
        render_chat("ok\n{% for m in messages %}{{ m }", [])
    with pytest.raises(TemplateError, match="syntax error"):
        validate_template("{% if %}")


def test_undefined_attribute() -> None:
    with pytest.raises(TemplateError, match="chat template failed: .*undefined"):
        render_chat("{{ nothing.here }}", [])


def test_validate_template_does_not_render() -> None:
    validate_template("{{ raise_exception('only at render time') }}")
    validate_template(SMOLLM2_TEMPLATE)


@pytest.mark.parametrize(
    "template",
    [
        "{{ .Prompt }}",
        "{{ if .System }}<|system|>{{ .System }}{{ end }}",
        "{{- range .Messages }}{{ .Content }}{{ end }}",
        '{{ range $i, $m := .Messages }}{{ if eq $m.Role "user" }}x{{ end }}{{ end }}',
    ],
)
def test_ollama_go_templates_are_explained(template: str) -> None:
    with pytest.raises(TemplateError, match="tokenizer.chat_template") as info:
        render_chat(template, [])
    assert "Go" in str(info.value)
    with pytest.raises(TemplateError, match="Jinja"):
        validate_template(template)


def test_jinja_attribute_access_is_not_mistaken_for_go() -> None:
    assert render_chat("{{ messages[0].Content }}", [{"Content": "x"}]) == "x"


def test_compiled_templates_are_cached() -> None:
    template = "{{ messages | length }} cached"
    render_chat(template, [])
    hits = templates._compile.cache_info().hits
    assert render_chat(template, [{"role": "user", "content": "x"}]) == "1 cached"
    assert templates._compile.cache_info().hits == hits + 1


# --- the sandbox -----------------------------------------------------------------------------

ESCAPES = [
    "{{ cycler.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os.system('touch MARKER') }}",
    "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}",
    "{{ lipsum.__globals__['os'].system('touch MARKER') }}",
    "{{ namespace.__init__.__globals__['os'].system('touch MARKER') }}",
    "{{ ''|attr('__class__')|attr('__mro__') }}",
    "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "{{ messages.__class__.__base__.__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ raise_exception.__globals__['os'].system('touch MARKER') }}",
]

MUTATIONS = [
    "{% set x = messages.append(1) %}",
    "{{ messages.pop() }}",
    "{{ messages[0].update({'role': 'hacked'}) }}",
    "{{ messages[0].clear() }}",
    "{% set _ = tools.extend([1]) %}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_blocked(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(TemplateError, match="chat template failed: SecurityError"):
        render_chat(template.replace("MARKER", str(marker)), [{"role": "user", "content": "x"}])
    assert not marker.exists()


@pytest.mark.parametrize("template", MUTATIONS)
def test_templates_cannot_mutate_their_inputs(template: str) -> None:
    messages = [{"role": "user", "content": "x"}]
    tools = [{"name": "t"}]
    before = copy.deepcopy((messages, tools))
    with pytest.raises(TemplateError, match="chat template failed: SecurityError"):
        render_chat(template, messages, tools=tools)
    assert (messages, tools) == before


def test_sandbox_limits_range() -> None:
    with pytest.raises(TemplateError, match="chat template failed"):
        render_chat("{% for i in range(10 ** 9) %}{% endfor %}", [])
