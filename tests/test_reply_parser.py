"""The reply parser on recorded replies of each model family (written from the families'
published formats), fed whole, as tokens, a character at a time and cut at random: the split
into content, thinking and calls must be the expected one however the text arrives."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from hearth.reply import ReplyDelta, ReplyStyle, make_parser

WEATHER = frozenset({"get_weather", "get_time"})

QWEN3 = ReplyStyle(thinking="tags", tools="hermes")
HERMES = ReplyStyle(tools="hermes")
QWEN3_CODER = ReplyStyle(tools="qwen3-coder")
LLAMA3 = ReplyStyle(tools="llama3")
MISTRAL = ReplyStyle(tools="mistral")
MAGISTRAL = ReplyStyle(thinking="tags", tools="mistral", think_open="[THINK]",
                       think_close="[/THINK]")
HARMONY = ReplyStyle(thinking="harmony", tools="harmony")
DEEPSEEK_R1 = ReplyStyle(thinking="tags")
JSON = ReplyStyle(tools="json")
PLAIN = ReplyStyle()

R1_PROMPT = "<｜begin▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n"
QWEN3_PROMPT = "<|im_start|>user\nWeather in Paris?<|im_end|>\n<|im_start|>assistant\n"
QWEN3_THINK_PROMPT = QWEN3_PROMPT + "<think>\n"
QWEN3_NO_THINK_PROMPT = QWEN3_PROMPT + "<think>\n\n</think>\n\n"
HARMONY_PROMPT = "<|start|>user<|message|>Weather in Paris?<|end|><|start|>assistant"


@dataclass
class Case:
    name: str
    style: ReplyStyle
    text: str
    content: str = ""
    thinking: str = ""
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tools: frozenset[str] | None = WEATHER
    prompt: str = ""
    think: bool | str | None = None
    ids: list[str] | None = None  # ids the model wrote itself, where it does

    def __str__(self) -> str:
        return self.name


def hermes_call(name: str, **arguments: Any) -> str:
    import json

    return f'<tool_call>\n{{"name": "{name}", "arguments": {json.dumps(arguments)}}}\n</tool_call>'


CASES = [
    Case("qwen3-thinking-then-call", QWEN3,
         "<think>\nThe user wants the weather in Paris. I should call get_weather.\n</think>\n\n"
         + hermes_call("get_weather", city="Paris"),
         thinking="The user wants the weather in Paris. I should call get_weather.",
         calls=[("get_weather", {"city": "Paris"})]),
    Case("qwen3-thinking-then-answer", QWEN3,
         "<think>\nSimple greeting.\n\nAnswer briefly.\n</think>\n\nHello! How can I help?",
         thinking="Simple greeting.\n\nAnswer briefly.", content="Hello! How can I help?"),
    Case("qwen3-prompt-opened-thinking", QWEN3,
         "Paris weather needs a tool.\n</think>\n\n" + hermes_call("get_weather", city="Paris"),
         thinking="Paris weather needs a tool.", calls=[("get_weather", {"city": "Paris"})],
         prompt=QWEN3_THINK_PROMPT),
    Case("qwen3-thinking-switched-off-in-template", QWEN3, "Hello there.",
         content="Hello there.", prompt=QWEN3_NO_THINK_PROMPT, think=False),
    Case("qwen3-think-false-drops-reasoning", QWEN3,
         "<think>\nI reason anyway.\n</think>\n\nIt is 4.", content="It is 4.", think=False),
    Case("qwen3-think-level-keeps-reasoning", QWEN3,
         "<think>Short.</think>It is 4.", content="It is 4.", thinking="Short.", think="high"),
    Case("hermes-content-then-two-calls", HERMES,
         "I'll check both cities.\n" + hermes_call("get_weather", city="Paris") + "\n"
         + hermes_call("get_weather", city="Rome"),
         content="I'll check both cities.",
         calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]),
    Case("hermes-calls-without-blanks", HERMES,
         '<tool_call>{"name":"get_weather","arguments":{"city":"Paris"}}</tool_call>'
         '<tool_call>{"name":"get_time","arguments":{}}</tool_call>',
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {})]),
    Case("hermes-arguments-as-json-string", HERMES,
         '<tool_call>\n{"name": "get_weather", "arguments": "{\\"city\\": \\"Paris\\"}"}\n'
         "</tool_call>",
         calls=[("get_weather", {"city": "Paris"})]),
    Case("hermes-text-after-call-kept", HERMES,
         hermes_call("get_time", zone="CET") + "\n\nI asked for the time.",
         content="I asked for the time.", calls=[("get_time", {"zone": "CET"})]),
    Case("hermes-unknown-function-stays-content", HERMES,
         "Sure. " + hermes_call("delete_files", path="/"),
         content="Sure. " + hermes_call("delete_files", path="/")),
    Case("hermes-broken-json-stays-content", HERMES,
         'Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": }\n</tool_call>',
         content='Sure. <tool_call>\n{"name": "get_weather", "arguments": {"city": }\n'
                 "</tool_call>"),
    Case("hermes-unclosed-call-at-the-end", HERMES,
         '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',
         calls=[("get_weather", {"city": "Paris"})]),
    Case("hermes-unclosed-unfinished-call-stays-content", HERMES,
         'Let me see <tool_call>\n{"name": "get_weather", "argu',
         content='Let me see <tool_call>\n{"name": "get_weather", "argu'),
    Case("hermes-partial-marker-at-the-end", HERMES, "Hello <tool_", content="Hello <tool_"),
    Case("hermes-markers-are-text-without-tools", QWEN3,
         "<think>ok</think>" + hermes_call("get_weather", city="Paris"),
         thinking="ok", content=hermes_call("get_weather", city="Paris"), tools=None),
    Case("hermes-json-braces-in-arguments", HERMES,
         '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa}ris \\"</tool_call>"}}'
         "\n</tool_call>",
         # The first </tool_call> (inside the string) ends the block: the JSON is cut, so the
         # block is content, as llama.cpp and vLLM read it too.
         content='<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa}ris \\"'
                 '</tool_call>"}}\n</tool_call>'),
    Case("qwen3-coder-xml-call", QWEN3_CODER,
         "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
         "</function>\n</tool_call>",
         calls=[("get_weather", {"city": "Paris"})]),
    Case("qwen3-coder-several-parameters-and-calls", QWEN3_CODER,
         "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n"
         "</parameter>\n<parameter=days>\n3\n</parameter>\n<parameter=units>\n"
         '{"temp": "C"}\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n'
         "<function=get_time>\n</function>\n</tool_call>",
         content="Checking.",
         calls=[("get_weather", {"city": "New York", "days": 3, "units": {"temp": "C"}}),
                ("get_time", {})]),
    Case("qwen3-coder-multiline-value", QWEN3_CODER,
         "<tool_call>\n<function=get_weather>\n<parameter=city>\nline one\nline two\n"
         "</parameter>\n</function>\n</tool_call>",
         calls=[("get_weather", {"city": "line one\nline two"})]),
    Case("llama3-bare-json", LLAMA3,
         '{"name": "get_weather", "parameters": {"city": "Paris"}}',
         calls=[("get_weather", {"city": "Paris"})]),
    Case("llama3-python-tag", LLAMA3,
         '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}',
         calls=[("get_weather", {"city": "Paris"})]),
    Case("llama3-two-calls-with-semicolon", LLAMA3,
         '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}; '
         '{"name": "get_time", "parameters": {"zone": "CET"}}',
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})]),
    Case("llama3-type-function-wrapper", LLAMA3,
         '{"type": "function", "name": "get_weather", "parameters": {"city": "Paris"}}',
         calls=[("get_weather", {"city": "Paris"})]),
    Case("llama3-builtin-tool", LLAMA3,
         '<|python_tag|>brave_search.call(query="weather in Paris")',
         calls=[("brave_search", {"query": "weather in Paris"})],
         tools=frozenset({"brave_search"})),
    Case("llama3-plain-json-answer-is-content", LLAMA3,
         'Here you go: {"name": "Alice", "age": 3} and {1, 2}.',
         content='Here you go: {"name": "Alice", "age": 3} and {1, 2}.'),
    Case("mistral-list", MISTRAL,
         '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "a1B2c3D4e"},'
         ' {"name": "get_time", "arguments": {"zone": "CET"}, "id": "Zz9Yy8Xx7"}]',
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})],
         ids=["a1B2c3D4e", "Zz9Yy8Xx7"]),
    Case("mistral-args-form", MISTRAL,
         'Let me look.[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}'
         '[TOOL_CALLS]get_time[ARGS]{"zone": "CET"}',
         content="Let me look.",
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})]),
    Case("mistral-call-id-form", MISTRAL,
         '[TOOL_CALLS]get_weather[CALL_ID]Ab3De6Gh9[ARGS]{"city": "Paris"}',
         calls=[("get_weather", {"city": "Paris"})], ids=["Ab3De6Gh9"]),
    Case("mistral-marker-then-prose-stays-content", MISTRAL,
         "[TOOL_CALLS] is how I would call a tool.",
         content="[TOOL_CALLS] is how I would call a tool."),
    Case("magistral-think-then-call", MAGISTRAL,
         '[THINK]Weather needs a tool.[/THINK][TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}',
         thinking="Weather needs a tool.", calls=[("get_weather", {"city": "Paris"})]),
    Case("gpt-oss-analysis-then-final", HARMONY,
         "<|channel|>analysis<|message|>User asks for 2+2. Easy.<|end|>"
         "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4.<|return|>",
         thinking="User asks for 2+2. Easy.", content="2 + 2 = 4.", prompt=HARMONY_PROMPT),
    Case("gpt-oss-commentary-call", HARMONY,
         "<|channel|>analysis<|message|>Need the weather tool.<|end|>"
         "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
         '<|message|>{"city": "Paris"}<|call|>',
         thinking="Need the weather tool.", calls=[("get_weather", {"city": "Paris"})],
         prompt=HARMONY_PROMPT),
    Case("gpt-oss-recipient-before-channel", HARMONY,
         "<|channel|>analysis<|message|>Two tools.<|end|>"
         "<|start|>assistant to=functions.get_weather<|channel|>commentary json"
         '<|message|>{"city": "Paris"}<|call|>'
         "<|start|>assistant to=functions.get_time<|channel|>commentary json"
         '<|message|>{"zone": "CET"}<|call|>',
         thinking="Two tools.",
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {"zone": "CET"})],
         prompt=HARMONY_PROMPT),
    Case("gpt-oss-preamble-then-call", HARMONY,
         "<|channel|>commentary<|message|>Checking the weather.<|end|>"
         "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
         '<|message|>{"city": "Paris"}<|call|>',
         content="Checking the weather.", calls=[("get_weather", {"city": "Paris"})]),
    Case("gpt-oss-call-without-tools-is-content", HARMONY,
         "<|channel|>commentary to=functions.get_weather <|constrain|>json"
         '<|message|>{"city": "Paris"}<|call|>',
         content='{"city": "Paris"}', tools=None),
    Case("gpt-oss-think-false", HARMONY,
         "<|channel|>analysis<|message|>Thinking.<|end|>"
         "<|start|>assistant<|channel|>final<|message|>Done.<|return|>",
         content="Done.", think=False),
    Case("gpt-oss-final-without-end", HARMONY,
         "<|channel|>final<|message|>Unfinished answer", content="Unfinished answer"),
    Case("deepseek-r1-prompt-opened-thinking", DEEPSEEK_R1,
         "Okay, the user asks 2+2.\nThat is 4.\n</think>\n\nThe answer is **4**.",
         thinking="Okay, the user asks 2+2.\nThat is 4.", content="The answer is **4**.",
         prompt=R1_PROMPT, tools=None),
    Case("deepseek-r1-think-false", DEEPSEEK_R1,
         "Reasoning.\n</think>\n\nFour.", content="Four.", prompt=R1_PROMPT, think=False),
    Case("deepseek-r1-unfinished-thinking", DEEPSEEK_R1,
         "Still reasoning when the tokens ran out", thinking="Still reasoning when the tokens"
         " ran out", prompt=R1_PROMPT),
    Case("plain-style-think-tags-are-content", PLAIN,
         "<think>x</think>Hi <tool_call>", content="<think>x</think>Hi <tool_call>"),
    Case("json-bare-call", JSON,
         '{"name": "get_weather", "arguments": {"city": "Paris"}}',
         calls=[("get_weather", {"city": "Paris"})]),
    Case("json-fenced-call", JSON,
         'I will call it.\n```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
         content="I will call it.", calls=[("get_weather", {"city": "Paris"})]),
    Case("json-list-of-calls", JSON,
         '[{"name": "get_weather", "arguments": {"city": "Paris"}}, '
         '{"name": "get_time", "arguments": {}}]',
         calls=[("get_weather", {"city": "Paris"}), ("get_time", {})]),
    Case("json-code-fence-is-content", JSON,
         "Example:\n```python\nprint({'name': 1})\n```",
         content="Example:\n```python\nprint({'name': 1})\n```"),
]

_TOKENS = re.compile(r"<\|[a-z_]+\|>|</?[a-z_]+>|\[/?[A-Z_]+\]|\w+|\s+|[^\w\s]")


def whole(text: str) -> list[str]:
    return [text]


def tokens(text: str) -> list[str]:
    pieces = _TOKENS.findall(text)
    assert "".join(pieces) == text
    return pieces


def characters(text: str) -> list[str]:
    return list(text)


def random_pieces(text: str, seed: int) -> list[str]:
    chooser = random.Random(seed)
    pieces, position = [], 0
    while position < len(text):
        size = chooser.randint(1, 9)
        pieces.append(text[position:position + size])
        position += size
    return pieces


CHUNKINGS = {
    "whole": whole, "tokens": tokens, "characters": characters,
    **{f"random{seed}": (lambda text, seed=seed: random_pieces(text, seed)) for seed in range(6)},
}


def run(case: Case, pieces: list[str]) -> tuple[ReplyDelta, list[ReplyDelta]]:
    parser = make_parser(case.style, tool_names=case.tools, prompt_text=case.prompt,
                         think=case.think)
    deltas = [parser.feed(piece) for piece in pieces] + [parser.finish()]
    joined = ReplyDelta(content="".join(d.content for d in deltas),
                        thinking="".join(d.thinking for d in deltas),
                        tool_calls=[call for d in deltas for call in d.tool_calls])
    return joined, deltas


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_split_is_the_expected_one_however_the_reply_is_cut(case: Case, chunking: str):
    joined, _ = run(case, CHUNKINGS[chunking](case.text))
    assert joined.content == case.content
    assert joined.thinking == case.thinking
    assert [(call.name, call.arguments) for call in joined.tool_calls] == case.calls
    if case.ids is not None:
        assert [call.id for call in joined.tool_calls] == case.ids
    else:
        for call in joined.tool_calls:
            assert (re.fullmatch(r"[A-Za-z0-9]{9}", call.id) if case.style.tools == "mistral"
                    else re.fullmatch(r"call_[0-9a-f]{24}", call.id))
    assert len({call.id for call in joined.tool_calls}) == len(joined.tool_calls)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_no_marker_text_leaks_into_thinking(case: Case):
    joined, _ = run(case, tokens(case.text))
    for marker in ("<think>", "</think>", "<|channel|>", "<|message|>", "<|end|>", "<|call|>",
                   "<|start|>", "<|return|>", "[THINK]", "[/THINK]"):
        assert marker not in joined.thinking


@pytest.mark.parametrize("case", [c for c in CASES if c.calls], ids=str)
def test_a_call_arrives_whole_in_one_delta(case: Case):
    _, deltas = run(case, characters(case.text))
    for delta in deltas:
        for call in delta.tool_calls:
            assert (call.name, call.arguments) in case.calls


def test_finish_twice_adds_nothing():
    parser = make_parser(HERMES, tool_names=WEATHER)
    assert parser.feed("Hello <tool_").content == "Hello"
    assert parser.finish().content == " <tool_"
    assert parser.finish().empty
