"""Each model family's prompt layout on tiny generated models: the family templates render a tool
conversation through hearth's renderer with every marker where the family's models expect it, and
a tiny GGUF carrying the family's special tokens reads them, in the real engine, as the family's
models do (one token each, shown when special tokens are, ending generation where they should)."""

from __future__ import annotations

import pytest

from hearth.api.types import Message, ToolCall, ToolCallFunction
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.errors import TemplateError
from hearth.prompt.conversation import render_prompt
from hearth.prompt.templates import render_chat, validate_template
from tests.family_templates import BEGIN_OF_TEXT, FAMILIES
from tests.tinymodel import write_family_model, write_tiny_model

pytest.importorskip("llama_cpp")

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city name"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "array", "items": {"type": "integer"}},
            },
            "required": ["city"],
        },
    },
}]
SYSTEM = "You are a weather bot."
QUESTION = "What is the weather in Paris?"
RESULT = '{"temperature": 18}'
FOLLOW_UP = "And tomorrow?"
CALL_ID = "call00001"  # 9 alphanumerics, as Mistral's templates require


def call(name: str = "get_weather", call_id: str | None = CALL_ID, **arguments) -> ToolCall:
    return ToolCall(id=call_id, function=ToolCallFunction(name=name, arguments=arguments or {"city": "Paris"}))


def conversation(*calls: ToolCall, result_id: str | None = CALL_ID) -> list[dict]:
    """A system prompt, then four turns: a question, the assistant's tool call (with its id and
    reasoning), the tool's result (answering that id, naming the tool) and a follow-up question:
    the dicts the runtime hands a template (``Message.model_dump(exclude_none=True)``)."""
    messages = [
        Message(role="system", content=SYSTEM),
        Message(role="user", content=QUESTION),
        Message(role="assistant", content="", thinking="I should look it up.",
                tool_calls=list(calls) or [call()]),
        Message(role="tool", content=RESULT, tool_call_id=result_id, tool_name="get_weather"),
        Message(role="user", content=FOLLOW_UP),
    ]
    return [m.model_dump(exclude_none=True) for m in messages]


def render(family: str, messages: list[dict] | None = None, **extra) -> str:
    template, _, eos = FAMILIES[family]
    return render_chat(template, conversation() if messages is None else messages, tools=TOOLS,
                       bos_token=BEGIN_OF_TEXT[family] or "", eos_token=eos, extra=extra)


def assert_in_order(text: str, fragments: list[str]) -> None:
    at = 0
    for fragment in fragments:
        found = text.find(fragment, at)
        assert found >= 0, f"{fragment!r} missing after position {at} in:\n{text}"
        at = found + len(fragment)


# What each family's rendering of conversation() must hold, in this order, and how it must end.
LAYOUTS: dict[str, tuple[list[str], str]] = {
    "hermes": ([
        "<|im_start|>system\n" + SYSTEM, "<tools>", '"name": "get_weather"', "</tools>",
        "<|im_end|>\n<|im_start|>user\n" + QUESTION + "<|im_end|>\n",
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
        "<|im_end|>\n<|im_start|>user\n<tool_response>\n" + RESULT + "\n</tool_response><|im_end|>\n",
        "<|im_start|>user\n" + FOLLOW_UP + "<|im_end|>\n",
    ], "<|im_start|>assistant\n"),
    "qwen3": ([
        "<|im_start|>system\n" + SYSTEM + "\n\n# Tools\n", "<tools>\n{", '"name": "get_weather"',
        "}\n</tools>", "<|im_end|>\n<|im_start|>user\n" + QUESTION + "<|im_end|>\n",
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>\n',
        "<|im_start|>user\n<tool_response>\n" + RESULT + "\n</tool_response><|im_end|>\n",
        "<|im_start|>user\n" + FOLLOW_UP + "<|im_end|>\n",
    ], "<|im_start|>assistant\n"),
    "qwen3-coder": ([
        "<|im_start|>system\n" + SYSTEM + "\n\n# Tools\n", "<tools>\n<function>\n<name>get_weather</name>",
        "<parameter>\n<name>city</name>\n<type>string</type>", '<required>["city"]</required>',
        "</function>\n</tools>", "<|im_end|>\n<|im_start|>user\n" + QUESTION + "<|im_end|>\n",
        "<|im_start|>assistant\n<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n"
        "</parameter>\n</function>\n</tool_call><|im_end|>\n",
        "<|im_start|>user\n<tool_response>\n" + RESULT + "\n</tool_response>\n<|im_end|>\n",
        "<|im_start|>user\n" + FOLLOW_UP + "<|im_end|>\n",
    ], "<|im_start|>assistant\n"),
    "llama3.1": ([
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: ipython\n",
        SYSTEM + "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nGiven the following functions",
        '"name": "get_weather"', QUESTION + "<|eot_id|>",
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>',
        "<|start_header_id|>ipython<|end_header_id|>\n\n" + RESULT + "<|eot_id|>",
        "<|start_header_id|>user<|end_header_id|>\n\n" + FOLLOW_UP + "<|eot_id|>",
    ], "<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "mistral": ([
        "<s>[SYSTEM_PROMPT]" + SYSTEM + "[/SYSTEM_PROMPT][INST]" + QUESTION + "[/INST]",
        '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call00001"}]</s>',
        '[TOOL_RESULTS]{"content": "{\\"temperature\\": 18}", "call_id": "call00001"}[/TOOL_RESULTS]',
        '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather"', "}}][/AVAILABLE_TOOLS]",
    ], "[INST]" + FOLLOW_UP + "[/INST]"),
    "mistral-v11": ([
        "<s>[SYSTEM_PROMPT]" + SYSTEM + "[/SYSTEM_PROMPT][INST]" + QUESTION + "[/INST]",
        '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}</s>',
        "[TOOL_RESULTS]" + RESULT + "[/TOOL_RESULTS]",
        '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "get_weather"', "}}][/AVAILABLE_TOOLS]",
    ], "[INST]" + FOLLOW_UP + "[/INST]"),
    "gpt-oss": ([
        "<|start|>system<|message|>", "Reasoning: medium", "Calls to these tools must go to the commentary channel: 'functions'.<|end|>",
        "<|start|>developer<|message|># Instructions\n\n" + SYSTEM + "\n\n# Tools\n\n## functions\n\nnamespace functions {\n\n",
        "// Get the current weather for a city\ntype get_weather = (_: {\n// The city name\ncity: string,\n"
        'unit?: "celsius" | "fahrenheit",\ndays?: number[],\n}) => any;\n\n} // namespace functions<|end|>',
        "<|start|>user<|message|>" + QUESTION + "<|end|>",
        "<|start|>assistant<|channel|>analysis<|message|>I should look it up.<|end|>",
        '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": "Paris"}<|call|>',
        "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>" + RESULT + "<|end|>",
        "<|start|>user<|message|>" + FOLLOW_UP + "<|end|>",
    ], "<|end|><|start|>assistant"),
    "deepseek-r1": ([
        "<｜begin▁of▁sentence｜>" + SYSTEM + "<｜User｜>" + QUESTION,
        "<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"city": "Paris"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜><｜end▁of▁sentence｜>',
        "<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + RESULT + "<｜tool▁output▁end｜><｜tool▁outputs▁end｜>",
        "<｜User｜>" + FOLLOW_UP,
    ], "<｜Assistant｜><think>\n"),
}


def test_every_family_has_a_layout_to_check():
    assert set(LAYOUTS) == set(FAMILIES)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_template_lays_out_a_tool_conversation_in_its_own_markers(family):
    validate_template(FAMILIES[family].template)  # as hearth checks it when a model is created
    text = render(family)
    fragments, ending = LAYOUTS[family]
    assert_in_order(text, fragments)
    assert text.endswith(ending)


# How often a rendering of two calls names the tool: once per call, once in its definition
# (the DeepSeek-R1 template takes none), and gpt-oss once more on the result.
TWO_CALL_NAMES = {"hermes": 3, "qwen3": 3, "qwen3-coder": 3, "mistral": 3, "mistral-v11": 3,
                  "gpt-oss": 4, "deepseek-r1": 2}


@pytest.mark.parametrize("family", sorted(TWO_CALL_NAMES))
def test_family_template_writes_parallel_calls_in_order(family):
    first, second = call(city="Paris"), call(call_id="call00002", city="Rome")
    text = render(family, conversation(first, second))
    assert_in_order(text, ["Paris", "Rome", "temperature"])
    assert text.count("get_weather") == TWO_CALL_NAMES[family]


def test_qwen3_without_thinking_prefills_an_empty_think_block():
    assert render("qwen3", enable_thinking=False).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    for thinking in ({}, {"enable_thinking": True}):
        assert "<think>" not in render("qwen3", **thinking)


def test_qwen3_keeps_reasoning_only_after_the_last_user_turn():
    turn = conversation()[:4]  # the call and its result, no follow-up yet
    turn[2]["reasoning_content"] = "I should look it up."
    assert_in_order(render("qwen3", turn), [
        "<|im_start|>assistant\n<think>\nI should look it up.\n</think>\n\n<tool_call>\n",
        "<tool_response>"])
    later = [*turn, {"role": "user", "content": FOLLOW_UP}]
    assert "I should look it up." not in render("qwen3", later)


@pytest.mark.parametrize("bad", ["call_1", "call-0001", "call000001", None])
def test_mistral_refuses_a_call_id_that_is_not_nine_alphanumerics(bad):
    with pytest.raises(TemplateError, match="Tool call IDs should be alphanumeric strings with length 9!"):
        render("mistral", conversation(call(call_id=bad), result_id=bad))
    with pytest.raises(TemplateError, match="Tool call IDs should be alphanumeric strings with length 9!"):
        render("mistral", conversation(call(), result_id=bad))


def test_llama31_builtin_tools_use_the_python_tag_and_end_with_eom():
    messages = conversation(call(name="brave_search", query="Paris weather"))
    text = render("llama3.1", messages, builtin_tools=["brave_search"])
    assert "Environment: ipython\nTools: brave_search\n\n" in text
    assert ('<|start_header_id|>assistant<|end_header_id|>\n\n'
            '<|python_tag|>brave_search.call(query="Paris weather")<|eom_id|>') in text


def test_llama31_refuses_two_calls_in_one_turn():
    with pytest.raises(TemplateError, match="single tool-calls"):
        render("llama3.1", conversation(call(), call(call_id="call00002")))


def test_gpt_oss_takes_the_reasoning_effort():
    assert "\n\nReasoning: high\n\n" in render("gpt-oss", reasoning_effort="high")
    answered = [*conversation()[:4], {"role": "assistant", "content": "It is 18 degrees."}]
    text = render("gpt-oss", answered)
    # A finished turn's reasoning is not shown to the model again.
    assert "<|channel|>analysis" not in text
    assert text.endswith("<|start|>assistant<|channel|>final<|message|>It is 18 degrees.<|end|><|start|>assistant")


def test_deepseek_r1_drops_past_reasoning_and_takes_no_tool_definitions():
    answered = [*conversation()[:4],
                {"role": "assistant", "content": "<think>\nIt is mild.\n</think>\n\nIt is 18 degrees."},
                {"role": "user", "content": FOLLOW_UP}]
    text = render("deepseek-r1", answered)
    assert "<｜Assistant｜>It is 18 degrees.<｜end▁of▁sentence｜>" in text
    assert "It is mild" not in text
    assert "Get the current weather" not in text  # Ollama, too, says deepseek-r1 has no tools


# --- the tiny family models in the real engine -------------------------------------------------

# llama.cpp renders these harmony markers whatever their GGUF type (it retypes them
# user-defined), and takes <|end|> out of the end-of-generation tokens when <|return|> and
# <|call|> are there: in gpt-oss <|end|> closes a message, not the answer.
ALWAYS_SHOWN = {"<|start|>", "<|message|>", "<|channel|>", "<|constrain|>", "<|end|>"}
END_OF_GENERATION = {
    "hermes": {"<|im_end|>", "<|endoftext|>"},
    "qwen3": {"<|im_end|>", "<|endoftext|>"},
    "qwen3-coder": {"<|im_end|>", "<|endoftext|>"},
    "llama3.1": {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"},
    "mistral": {"</s>"},
    "mistral-v11": {"</s>"},
    "gpt-oss": {"<|return|>", "<|call|>", "<|endoftext|>"},
    "deepseek-r1": {"<｜end▁of▁sentence｜>"},
}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_engine(request, tmp_path_factory):
    path = write_family_model(tmp_path_factory.mktemp("family") / f"{request.param}.gguf", request.param)
    engine = LocalBatchEngine(path, LoadSettings(num_ctx=4096, num_batch=512, num_thread=2))
    yield request.param, engine
    engine.close()


def special_ids(family: str, vocab) -> dict[str, int]:
    ids = {}
    for text, _ in FAMILIES[family].special_tokens:
        tokens = vocab.tokenize(text, add_special=False, parse_special=True)
        assert len(tokens) == 1, f"{text!r} is {len(tokens)} tokens"
        ids[text] = tokens[0]
    return ids


def test_each_family_token_is_one_token_that_detokenizes_to_its_text(family_engine):
    family, engine = family_engine
    ids = special_ids(family, engine.vocab)
    assert len(set(ids.values())) == len(ids)
    for text, token in ids.items():
        assert engine.vocab.piece(token, special=True) == text.encode()


def test_control_tokens_are_plain_text_unless_special_tokens_are_parsed(family_engine):
    family, engine = family_engine
    ids = special_ids(family, engine.vocab)
    for text, kind in FAMILIES[family].special_tokens:
        shown = kind == "user_defined" or text in ALWAYS_SHOWN
        # Generated text is decoded without special tokens: a control marker vanishes there.
        assert engine.vocab.piece(ids[text], special=False) == (text.encode() if shown else b"")
        as_text = engine.vocab.tokenize(text, add_special=False, parse_special=False)
        assert (as_text == [ids[text]]) == shown, text


def test_the_family_turn_enders_end_generation(family_engine):
    family, engine = family_engine
    ids = special_ids(family, engine.vocab)
    ending = {text for text, token in ids.items() if engine.vocab.is_end_of_generation(token)}
    assert ending == END_OF_GENERATION[family]
    assert engine.vocab.eos_text == FAMILIES[family].eos_token


def test_a_rendered_family_prompt_reads_every_marker_as_its_token_and_decodes(family_engine):
    family, engine = family_engine
    ids = special_ids(family, engine.vocab)
    text, tokens = render_prompt(FAMILIES[family].template, conversation(), engine.vocab, tools=TOOLS)
    for marker, token in ids.items():
        assert tokens.count(token) == text.count(marker), marker
    # The prompt begins with the family's own first token, once (no second BOS before it).
    first = next(marker for marker in ids if text.startswith(marker))
    assert tokens[0] == ids[first]
    if BEGIN_OF_TEXT[family]:
        assert tokens.count(ids[BEGIN_OF_TEXT[family]]) == 1
    chunks = list(engine.generate(tokens, SamplingSettings(temperature=0, num_predict=2)))
    assert chunks[-1].done and chunks[-1].stats.prompt_tokens == len(tokens)


# --- the writer's new arguments ----------------------------------------------------------------

def test_an_eot_token_ends_generation_only_when_the_metadata_names_it(tmp_path):
    marker = [("<|turn_over|>", "control")]  # a text llama.cpp does not know by name
    for eot, ends in ((None, False), ("<|turn_over|>", True)):
        path = write_tiny_model(tmp_path / f"{ends}.gguf", extra_tokens=marker, eot_token=eot)
        engine = LocalBatchEngine(path, LoadSettings(num_ctx=64, num_thread=1))
        try:
            (token,) = engine.vocab.tokenize("<|turn_over|>", add_special=False, parse_special=True)
            assert engine.vocab.is_end_of_generation(token) is ends
        finally:
            engine.close()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"extra_tokens": [("<|im_end|>", "control")]}, "already in the vocabulary"),
    ({"extra_tokens": [("<x>", "control"), ("<x>", "control")]}, "already in the vocabulary"),
    ({"extra_tokens": [("<x>", "special")]}, "must be one of"),
    ({"eos_token": "<|eot_id|>"}, "EOS token '<|eot_id|>' is not in the vocabulary"),
])
def test_the_writer_refuses_a_vocabulary_it_cannot_write(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_tiny_model(tmp_path / "bad.gguf", **kwargs)
    assert not (tmp_path / "bad.gguf").exists()
