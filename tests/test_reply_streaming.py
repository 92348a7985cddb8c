"""What the reply parser hands out before the reply is over: content streams until a call
opens, thinking streams until its closing tag, and only a possible marker waits."""

from __future__ import annotations

import pytest

from hearth.reply import ReplyDelta, ReplyStyle, make_parser

WEATHER = frozenset({"get_weather"})


def fed(parser, *pieces: str) -> ReplyDelta:
    deltas = [parser.feed(piece) for piece in pieces]
    return ReplyDelta(content="".join(d.content for d in deltas),
                      thinking="".join(d.thinking for d in deltas),
                      tool_calls=[call for d in deltas for call in d.tool_calls])


# (style, text before the call, the opener cut in two, the rest of the call)
BEFORE_A_CALL = [
    pytest.param(ReplyStyle(tools="hermes"), "Let me check the weather. ", ("<tool_", "call>\n"),
                 '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>',
                 id="hermes"),
    pytest.param(ReplyStyle(tools="qwen3-coder"), "Checking. ", ("<tool", "_call>\n"),
                 "<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n</function>\n"
                 "</tool_call>", id="qwen3-coder"),
    pytest.param(ReplyStyle(tools="mistral"), "Let me look. ", ("[TOOL_", "CALLS]"),
                 'get_weather[ARGS]{"city": "Paris"}', id="mistral"),
    pytest.param(ReplyStyle(tools="llama3"), "One moment. ", ("<|python", "_tag|>"),
                 '{"name": "get_weather", "parameters": {"city": "Paris"}}', id="llama3"),
    pytest.param(ReplyStyle(tools="json"), "Calling it: ", ('{"na', 'me": "get_weather", '),
                 '"arguments": {"city": "Paris"}}', id="json"),
]


@pytest.mark.parametrize(("style", "before", "opener", "rest"), BEFORE_A_CALL)
def test_content_before_a_call_streams_before_the_call_completes(style, before, opener, rest):
    parser = make_parser(style, tool_names=WEATHER)
    # Everything but the blank before the opener is out before the opener arrives.
    assert fed(parser, before).content == before.rstrip()
    cut = fed(parser, opener[0])
    assert cut.content == "" and not cut.tool_calls  # a possible marker waits
    inside = fed(parser, opener[1], rest[:-1])
    assert inside.content == "" and not inside.tool_calls  # the call is not complete yet
    # The call comes out with the character that completes it, not at the end of the reply.
    done = fed(parser, rest[-1])
    assert [(c.name, c.arguments) for c in done.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert done.content == ""
    assert parser.finish().empty


@pytest.mark.parametrize("style", ["hermes", "qwen3-coder", "mistral", "llama3", "json"])
def test_ordinary_text_streams_a_piece_at_a_time_with_tools_on(style):
    parser = make_parser(ReplyStyle(tools=style), tool_names=WEATHER)
    text = "The set {1, 2} costs $3 [see note] <b>now</b>."
    out = "".join(parser.feed(char).content for char in text)
    # Nothing is held but what could still open a call: here, nothing at all at the end.
    assert out == text


def test_a_marker_split_across_pieces_never_leaks_part_of_itself():
    parser = make_parser(ReplyStyle(tools="hermes"), tool_names=WEATHER)
    pieces = ["Hi", " <", "tool", "_ca", "ll>", '{"name": "get_weather", "arguments": {}}',
              "</tool_", "call>"]
    deltas = [parser.feed(piece) for piece in pieces]
    assert [d.content for d in deltas] == ["Hi", "", "", "", "", "", "", ""]
    assert [call.name for call in deltas[-1].tool_calls] == ["get_weather"]


def test_a_false_start_is_released_as_soon_as_it_is_not_a_marker():
    parser = make_parser(ReplyStyle(tools="hermes"), tool_names=WEATHER)
    assert parser.feed("a <tool").content == "a"
    assert parser.feed("box>").content == " <toolbox>"


def test_thinking_streams_before_its_closing_tag():
    parser = make_parser(ReplyStyle(thinking="tags"), tool_names=None)
    first = parser.feed("<think>\nStep one.")
    assert first.thinking == "Step one." and first.content == ""
    second = parser.feed(" Step two.\n</thi")
    assert second.thinking == " Step two." and second.content == ""
    third = parser.feed("nk>\n\nAnswer")
    assert third.thinking == "" and third.content == "Answer"


def test_prompt_opened_thinking_streams_from_the_first_token():
    parser = make_parser(ReplyStyle(thinking="tags"), tool_names=None,
                         prompt_text="<｜Assistant｜><think>\n")
    assert parser.feed("Hmm").thinking == "Hmm"
    assert parser.feed(", four.</think>Four.").content == "Four."


def test_harmony_final_text_streams_before_the_message_ends():
    parser = make_parser(ReplyStyle(thinking="harmony", tools="harmony"), tool_names=WEATHER,
                         prompt_text="<|start|>assistant")
    assert parser.feed("<|channel|>analysis<|message|>Thin").thinking == "Thin"
    assert parser.feed("king<|e").thinking == "king"
    assert parser.feed("nd|><|start|>assistant<|channel|>final<|message|>Four").content == "Four"
    assert parser.feed(" it is.<|return|>").content == " it is."


def test_harmony_prompt_that_opens_the_analysis_message():
    style = ReplyStyle(thinking="harmony", tools="harmony")
    parser = make_parser(style, tool_names=None,
                         prompt_text="<|start|>assistant<|channel|>analysis<|message|>")
    assert parser.feed("Reasoning<|end|>").thinking == "Reasoning"


def test_qwen3_coder_values_follow_the_schema_when_given():
    text = ("<tool_call>\n<function=get_weather>\n<parameter=zip>\n75001\n</parameter>\n"
            "<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>")
    schemas = {"get_weather": {"type": "object", "properties": {
        "zip": {"type": "string"}, "days": {"type": "integer"}}}}
    typed = make_parser(ReplyStyle(tools="qwen3-coder"), tool_names=WEATHER, tool_schemas=schemas)
    call = (typed.feed(text).tool_calls + typed.finish().tool_calls)[0]
    assert call.arguments == {"zip": "75001", "days": 3}
    untyped = make_parser(ReplyStyle(tools="qwen3-coder"), tool_names=WEATHER)
    call = (untyped.feed(text).tool_calls + untyped.finish().tool_calls)[0]
    assert call.arguments == {"zip": 75001, "days": 3}


def test_mistral_keeps_a_valid_model_id_and_replaces_a_wrong_one():
    parser = make_parser(ReplyStyle(tools="mistral"), tool_names=WEATHER)
    calls = parser.feed('[TOOL_CALLS][{"name": "get_weather", "arguments": {}, "id": "abc"}]'
                        ).tool_calls
    assert len(calls) == 1 and calls[0].id != "abc" and len(calls[0].id) == 9


def test_calls_of_other_styles_are_not_read():
    # A Hermes model writing Mistral's marker is writing text.
    parser = make_parser(ReplyStyle(tools="hermes"), tool_names=WEATHER)
    text = '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}'
    delta = parser.feed(text)
    assert delta.content + parser.finish().content == text and not delta.tool_calls
