"""Tool-call grammars through the real engine: a forced call is written in the model family's
own layout with arguments that follow the tool's schema, and a lazy grammar leaves the text
alone until its trigger appears, then holds the rest to the grammar."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings
from hearth.engine.tool_grammar import MOST_CALLS, tool_call_grammar
from hearth.reply import CallFrame

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12},
                                                    "days": {"type": "integer"}},
                   "required": ["city", "days"]}}}
ADD = {"type": "function", "function": {
    "name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}},
                                  "required": ["a"]}}}
# A schema the converter refuses (an unanchored pattern, as agents send them): the call still works.
ODD = {"type": "function", "function": {
    "name": "odd", "parameters": {"type": "object", "properties": {"path": {"type": "string",
                                                                            "pattern": "[a-z]+"}}}}}

FRAMES = {
    "hermes": CallFrame(trigger="<tool_call>", opener="<tool_call>", closer="</tool_call>",
                        layout="name-arguments"),
    "llama3": CallFrame(trigger="<|python_tag|>", opener="<|python_tag|>", closer="",
                        layout="name-parameters"),
    "mistral": CallFrame(trigger="[TOOL_CALLS]", opener="[TOOL_CALLS]", closer="",
                         layout="mistral-list"),
    "mistral-args": CallFrame(trigger="[TOOL_CALLS]", opener="[TOOL_CALLS]", closer="",
                              layout="mistral-args", arguments_prefix="[ARGS]"),
}


@pytest.fixture(scope="module")
def engine(tiny_model: Path):
    loaded = LocalBatchEngine(tiny_model, LoadSettings(num_ctx=256, num_batch=16, num_thread=2))
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def wide_engine(tiny_model: Path):
    """Room for every call the grammar allows."""
    loaded = LocalBatchEngine(tiny_model, LoadSettings(num_ctx=2048, num_batch=16, num_thread=2))
    yield loaded
    loaded.close()


def generate(engine: LocalBatchEngine, grammar, prompt: str = "the weather in the city", n: int = 160,
             seed: int = 0, temperature: float = 0.0) -> str:
    tokens = engine.vocab.tokenize(prompt)
    sampling = SamplingSettings(temperature=temperature, num_predict=n, seed=seed, top_k=0, top_p=1.0)
    return "".join(chunk.text for chunk in engine.generate(tokens, sampling, grammar=grammar))


def calls_in(text: str, frame: CallFrame) -> list[dict]:
    """The complete calls of ``text``: a random tiny model may go on writing calls until
    ``num_predict`` cuts it, so only the last one may be unfinished."""
    body = text.lstrip()
    assert body.startswith(frame.opener), text
    if frame.layout == "mistral-args":  # [TOOL_CALLS]NAME[ARGS]{...}, again for each call
        decoder, calls = json.JSONDecoder(), []
        for part in body.split(frame.opener)[1:]:
            name, _, arguments = part.partition(frame.arguments_prefix)
            try:
                calls.append({"name": name, "arguments": decoder.raw_decode(arguments.strip())[0]})
            except ValueError:
                break  # the last one, cut by num_predict
        return calls
    if frame.closer:
        parts = re.findall(re.escape(frame.opener) + r"(.*?)" + re.escape(frame.closer), body, re.DOTALL)
        return [json.loads(part) for part in parts]
    rest = body[len(frame.opener):].lstrip()
    decoder, calls = json.JSONDecoder(), []
    if rest.startswith("["):  # a list of calls, cut anywhere: read its whole objects
        position = 1
        while True:
            position = len(rest) - len(rest[position:].lstrip(" \t\n,"))
            try:
                value, position = decoder.raw_decode(rest, position)
            except ValueError:
                return calls
            calls.append(value)
    return [decoder.raw_decode(rest)[0]]


@pytest.mark.parametrize("family", sorted(FRAMES))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_forced_call_has_the_family_layout_and_follows_the_schema(engine, family, seed):
    frame = FRAMES[family]
    grammar = tool_call_grammar(frame, [WEATHER, ADD], lazy=False)
    assert "patterns" not in grammar and "tokens" not in grammar
    # Sampled (not greedy), so different seeds take different paths through the grammar.
    text = generate(engine, grammar, seed=seed, temperature=1.0)
    calls = calls_in(text, frame)
    key = "parameters" if frame.layout == "name-parameters" else "arguments"
    assert calls
    for call in calls:
        assert call["name"] in ("get_weather", "add")
        arguments = call[key]
        if call["name"] == "get_weather":
            assert isinstance(arguments["city"], str) and len(arguments["city"]) <= 12
            assert isinstance(arguments["days"], int)
        else:
            assert isinstance(arguments["a"], int)


def test_only_restricts_the_call_to_one_function(engine):
    frame = FRAMES["hermes"]
    for seed in (1, 2, 3, 4):
        text = generate(engine, tool_call_grammar(frame, [WEATHER, ADD], only="add", lazy=False),
                        seed=seed, temperature=1.0)
        assert {call["name"] for call in calls_in(text, frame)} == {"add"}


def test_a_schema_the_converter_refuses_leaves_the_arguments_free_but_names_the_tool(engine, caplog):
    frame = FRAMES["hermes"]
    with caplog.at_level("WARNING", logger="hearth.tools"):
        grammar = tool_call_grammar(frame, [ODD], lazy=False)
    assert "tool 'odd'" in caplog.text and "left free" in caplog.text
    # Free arguments let a random model nest objects until num_predict: check how the call opens.
    text = generate(engine, grammar, seed=1, temperature=1.0)
    assert re.match(r'\s*<tool_call>\s*\{\s*"name"\s*:\s*"odd"\s*,\s*"arguments"\s*:\s*\{', text), text


def test_named_arguments_bind_each_name_to_its_own_schema_when_the_tools_share_property_names(engine):
    # Both tools have a property "a" with different types: converted alone, their rules would
    # collide; renamed apart, "add" still gets an integer and "echo" a string.
    echo = {"type": "function", "function": {"name": "echo", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "maxLength": 5}}, "required": ["a"]}}}
    frame = FRAMES["mistral-args"]
    grammar = tool_call_grammar(frame, [ADD, echo], lazy=False)
    seen = set()
    for seed in (1, 2, 3, 4, 5, 6):
        for call in calls_in(generate(engine, grammar, seed=seed, temperature=1.0), frame):
            seen.add(call["name"])
            expected = int if call["name"] == "add" else str
            assert isinstance(call["arguments"]["a"], expected), call
    assert seen  # at least one whole call in six replies


@pytest.mark.parametrize("family", sorted(FRAMES))
def test_a_forced_reply_ends_by_itself_after_a_bounded_number_of_calls(wide_engine, family):
    # A random model would add calls for ever; the grammar allows at most MOST_CALLS, and once
    # it is complete only the end of generation may follow.
    frame = FRAMES[family]
    pick = {"type": "function", "function": {"name": "pick", "parameters": {
        "type": "object", "properties": {"n": {"enum": [1, 2, 3]}}, "required": ["n"]}}}
    grammar = tool_call_grammar(frame, [pick], lazy=False)
    tokens = wide_engine.vocab.tokenize("the weather in the city")
    sampling = SamplingSettings(temperature=1.0, num_predict=2000, seed=5, top_k=0, top_p=1.0)
    chunks = list(wide_engine.generate(tokens, sampling, grammar=grammar))
    text = "".join(chunk.text for chunk in chunks)
    assert chunks[-1].done_reason == "stop", text
    assert 1 <= len(calls_in(text, frame)) <= MOST_CALLS


def test_no_grammar_for_a_layout_without_json_or_for_unknown_names():
    xml = CallFrame(trigger="<tool_call>", opener="<tool_call>", closer="</tool_call>", layout="xml")
    assert tool_call_grammar(xml, [WEATHER]) is None
    assert tool_call_grammar(FRAMES["hermes"], [WEATHER], only="nope") is None


def test_a_lazy_grammar_triggers_by_token_when_the_opener_is_one_special_token():
    token_of = {"[TOOL_CALLS]": 7}.get
    lazy = tool_call_grammar(FRAMES["mistral"], [WEATHER], token_of=token_of)
    assert lazy["tokens"] == [7] and lazy["patterns"] == []
    by_text = tool_call_grammar(FRAMES["hermes"], [WEATHER], token_of=token_of)
    assert by_text["tokens"] == [] and by_text["patterns"] == [re.escape("<tool_call>")]


def test_a_lazy_grammar_leaves_text_free_until_its_trigger_then_holds_the_rest(engine):
    free = generate(engine, None, n=40)
    words = free.split()
    # A later whole word of the free answer becomes the trigger; the text before it is the same
    # with the lazy grammar (nothing is constrained yet), and from the trigger on the grammar rules.
    # llama.cpp searches the text for the pattern, so its first occurrence must be that word.
    def first_is_whole(word: str) -> bool:
        at = free.find(word)
        return at > 0 and not free[at - 1].isalnum() and not free[at + len(word):at + len(word) + 1].isalnum()

    trigger = next(word for word in words[2:] if re.fullmatch(r"[a-z]{3,}", word) and first_is_whole(word))
    start = free.find(trigger)
    grammar = {"gbnf": f'root ::= "{trigger}" " CALLED"', "patterns": [trigger], "tokens": []}
    constrained = generate(engine, grammar, n=40)
    assert constrained == free[:start] + trigger + " CALLED"
