"""Anthropic's Messages API (/v1/messages), driven by the official `anthropic` package against a
real server with the default model; the raw event stream and the error bodies read with httpx."""

from __future__ import annotations

import json
import re
import signal
import threading
from datetime import datetime, timezone

import anthropic
import httpx
import pytest

from hearth.api.types import ChatResponse, Message, ToolCall, ToolCallFunction
from hearth.server.anthropic_blocks import BlockAssembly
from tests.derived_models import create_tools_model
from tests.thinking_model import NAME as THINKING_MODEL
from tests.thinking_model import QUESTION, create_thinking_model, reference_reply

pytestmark = pytest.mark.e2e

MODEL = "smollm2"
ASK = [{"role": "user", "content": "Name three colors."}]
# The SDK no longer lists temperature among create()'s arguments (Anthropic's newest models
# refuse it); it still goes in the body, and hearth reads it.
COLD = {"extra_body": {"temperature": 0}}
GREEDY = {"max_tokens": 16, **COLD}
WEATHER = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 16}},
        "required": ["city"],
    },
}
ADD = {
    "name": "add",
    "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                     "required": ["a", "b"]},
}
# Every event a stream carries, in Anthropic's names.
BLOCK_EVENTS = {"content_block_start", "content_block_delta", "content_block_stop"}


@pytest.fixture(scope="module")
def client(server):
    with anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def tools_model(server):
    return create_tools_model(server.url)


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def raw_events(url: str, body: dict, path: str = "/v1/messages", **headers: str) -> list[tuple[str, dict]]:
    """The (event name, data) pairs of a streamed answer, read off the wire."""
    events = []
    with httpx.stream("POST", url + path, json={**body, "stream": True}, headers=headers,
                      timeout=300) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
                assert data["type"] == name
                events.append((name, data))
    return events


def check_event_order(events: list[tuple[str, dict]]) -> None:
    """Anthropic's grammar of a stream: message_start, ping, blocks opened, filled and closed one
    at a time with rising indexes, message_delta, message_stop."""
    names = [name for name, _ in events]
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    open_index, next_index = None, 0
    for name, data in events[2:-2]:
        assert name in BLOCK_EVENTS, name
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index = next_index
        else:
            assert data["index"] == open_index
            if name == "content_block_stop":
                open_index, next_index = None, next_index + 1
    assert open_index is None


# -- messages --------------------------------------------------------------------------------


def test_create_answers_with_a_text_block_and_usage(client):
    reply = client.messages.create(model=MODEL, messages=ASK, **GREEDY)
    assert reply.id.startswith("msg_") and reply.type == "message" and reply.role == "assistant"
    assert reply.model == MODEL
    assert [block.type for block in reply.content] == ["text"] and text_of(reply).strip()
    assert reply.stop_reason in ("end_turn", "max_tokens") and reply.stop_sequence is None
    usage = reply.usage
    assert usage.input_tokens + usage.cache_read_input_tokens > 5
    assert 0 < usage.output_tokens <= 16 and usage.cache_creation_input_tokens == 0
    if reply.stop_reason == "max_tokens":
        assert usage.output_tokens == 16
    again = client.messages.create(model=MODEL, messages=ASK, **GREEDY)
    assert text_of(again) == text_of(reply)
    assert (again.usage.input_tokens + again.usage.cache_read_input_tokens
            == usage.input_tokens + usage.cache_read_input_tokens)


def test_max_tokens_cuts_the_answer(client):
    reply = client.messages.create(model=MODEL, max_tokens=3, **COLD,
                                   messages=[{"role": "user", "content": "Tell me a long story about a dog."}])
    assert reply.stop_reason == "max_tokens" and reply.usage.output_tokens == 3


def test_the_sdk_stream_matches_the_whole_answer(client):
    whole = client.messages.create(model=MODEL, messages=ASK, **GREEDY)
    with client.messages.stream(model=MODEL, messages=ASK, **GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw = [event.type for event in events if event.type in BLOCK_EVENTS | {"message_start", "message_delta",
                                                                           "message_stop"}]
    assert raw[0] == "message_start" and raw[-2:] == ["message_delta", "message_stop"]
    assert raw[1:-2] == ["content_block_start"] + ["content_block_delta"] * (len(raw) - 5) + ["content_block_stop"]
    deltas = "".join(event.text for event in events if event.type == "text")
    assert deltas == text_of(final) == text_of(whole)
    assert final.stop_reason == whole.stop_reason and final.id.startswith("msg_")
    assert final.usage.output_tokens == whole.usage.output_tokens
    # message_start counted the whole prompt; message_delta split it into computed and cached.
    start = next(event for event in events if event.type == "message_start")
    assert start.message.usage.input_tokens == final.usage.input_tokens + final.usage.cache_read_input_tokens


def test_the_raw_stream_follows_anthropics_event_grammar(server):
    events = raw_events(server.url, {"model": MODEL, "messages": ASK, "max_tokens": 16, "temperature": 0})
    check_event_order(events)
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 5
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    assert all(data["delta"]["type"] == "text_delta" for name, data in events if name == "content_block_delta")
    end = events[-2][1]
    assert end["delta"]["stop_reason"] in ("end_turn", "max_tokens") and end["usage"]["output_tokens"] > 0


def test_stop_sequences_end_the_answer_and_are_named(client):
    reference = text_of(client.messages.create(model=MODEL, messages=ASK, **COLD, max_tokens=24))
    words = reference.split()
    assert len(words) >= 3, reference
    stop = words[2]
    expected = reference[:reference.index(stop)]
    for streamed in (False, True):
        if streamed:
            with client.messages.stream(model=MODEL, messages=ASK, **COLD, max_tokens=24,
                                        stop_sequences=["no such text", stop]) as stream:
                reply = stream.get_final_message()
        else:
            reply = client.messages.create(model=MODEL, messages=ASK, **COLD, max_tokens=24,
                                           stop_sequences=["no such text", stop])
        assert (reply.stop_reason, reply.stop_sequence) == ("stop_sequence", stop)
        assert text_of(reply) == expected


def test_system_as_blocks_and_as_a_system_message_are_one_prompt(client):
    ask = [{"role": "user", "content": "What do you like?"}]
    parts = ["You are a pirate.", "Answer in one short sentence."]
    blocks = [{"type": "text", "text": part, "cache_control": {"type": "ephemeral"}} for part in parts]
    as_blocks = client.messages.create(model=MODEL, system=blocks, messages=ask, **GREEDY)
    # Claude Code sends a system-role message last; it joins the system prompt.
    late = ask + [{"role": "system", "content": [{"type": "text", "text": parts[1]}]}]
    as_message = client.messages.create(model=MODEL, system=parts[0], messages=late, **GREEDY)
    assert text_of(as_message) == text_of(as_blocks)
    counted = [client.messages.count_tokens(model=MODEL, system=blocks, messages=ask).input_tokens,
               client.messages.count_tokens(model=MODEL, system=parts[0], messages=late).input_tokens,
               client.messages.count_tokens(model=MODEL, system=parts[0], messages=ask).input_tokens]
    assert counted[0] == counted[1] > counted[2] + 4


def test_count_tokens_counts_the_prompt_the_model_reads(client):
    counted = client.messages.count_tokens(model=MODEL, messages=ASK).input_tokens
    reply = client.messages.create(model=MODEL, messages=ASK, **GREEDY)
    assert counted == reply.usage.input_tokens + reply.usage.cache_read_input_tokens
    longer = client.messages.count_tokens(model=MODEL, messages=ASK + [
        {"role": "assistant", "content": "Red, green and blue."},
        {"role": "user", "content": [{"type": "text", "text": "Three more, please."}]}]).input_tokens
    assert longer > counted + 10


def test_thinking_blocks_come_first_with_a_signature(client, server):
    create_thinking_model(server.url)
    expected = reference_reply(server.url)
    assert expected["thinking"] and expected["content"]
    ask = {"model": THINKING_MODEL, "messages": [{"role": "user", "content": QUESTION}],
           "max_tokens": 100, "thinking": {"type": "enabled", "budget_tokens": 1024}}
    reply = client.messages.create(**ask, **COLD)
    assert [block.type for block in reply.content] == ["thinking", "text"]
    assert reply.content[0].thinking == expected["thinking"] and reply.content[0].signature
    assert reply.content[1].text == expected["content"]
    events = raw_events(server.url, {**ask, "temperature": 0})
    check_event_order(events)
    deltas = [data["delta"] for name, data in events if name == "content_block_delta" and data["index"] == 0]
    assert events[2][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert {delta["type"] for delta in deltas[:-1]} == {"thinking_delta"}
    assert deltas[-1] == {"type": "signature_delta", "signature": reply.content[0].signature}
    assert "".join(delta.get("thinking", "") for delta in deltas) == expected["thinking"]
    # The thinking goes back as a block in the next turn, and is accepted.
    follow = client.messages.create(model=THINKING_MODEL, max_tokens=4, **COLD, messages=[
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": [block.model_dump() for block in reply.content]},
        {"role": "user", "content": "And 3+3?"}])
    assert follow.content


# -- tools -----------------------------------------------------------------------------------


def test_forced_tool_use_matches_the_schema(client, tools_model):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.messages.create(model=tools_model, messages=ask, **COLD, max_tokens=48,
                                   tools=[WEATHER, ADD], tool_choice={"type": "tool", "name": "get_weather"})
    assert reply.stop_reason == "tool_use"
    call = next(block for block in reply.content if block.type == "tool_use")
    # The id is the one the runtime gave the call (in the shape the model family's template
    # accepts when it comes back as tool_use_id), not a fresh "toolu_" one.
    assert re.fullmatch(r"call_[0-9a-f]{24}", call.id) and call.name == "get_weather"
    assert isinstance(call.input["city"], str) and len(call.input["city"]) <= 16

    with client.messages.stream(model=tools_model, messages=ask, **COLD, max_tokens=48,
                                tools=[WEATHER, ADD], tool_choice={"type": "any"}) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    used = [block for block in final.content if block.type == "tool_use"]
    assert used and used[0].name in ("get_weather", "add")
    required = (WEATHER if used[0].name == "get_weather" else ADD)["input_schema"]["required"]
    assert set(required) <= set(used[0].input)
    partial = "".join(event.delta.partial_json for event in events
                      if event.type == "content_block_delta" and event.delta.type == "input_json_delta")
    assert json.loads(partial) == used[0].input


def test_tool_results_are_read_in_the_next_turn(client, tools_model):
    turn = [{"role": "user", "content": "What is the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]}]

    def answered(content, is_error: bool = False) -> list[dict]:
        result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": content,
                  "cache_control": {"type": "ephemeral"}}
        if is_error:
            result["is_error"] = True
        return turn + [{"role": "user", "content": [result]}]

    reply = client.messages.create(model=tools_model, tools=[WEATHER], **COLD, max_tokens=8,
                                   messages=answered("18 degrees and sunny"))
    assert reply.stop_reason in ("end_turn", "max_tokens", "tool_use") and reply.content

    def count(messages) -> int:
        return client.messages.count_tokens(model=tools_model, tools=[WEATHER], messages=messages).input_tokens

    short = count(answered("sunny"))
    # The result's text reaches the prompt, as a string or as text blocks, and so does the error flag.
    assert count(answered([{"type": "text", "text": "sunny"}])) == short
    assert count(answered("sunny, 18 degrees, a light wind from the west")) > short + 5
    assert count(answered("sunny", is_error=True)) > short


def test_tools_need_a_template_with_a_place_for_them(client):
    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=4)
    assert "does not support tools" in error.value.message
    assert error.value.body["error"]["type"] == "invalid_request_error"


# -- errors and keys -------------------------------------------------------------------------


def anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert body["error"]["type"] == kind and body["error"]["message"]
    return body["error"]["message"]


def test_an_unknown_model_is_a_404_in_anthropics_shape(client, server):
    with pytest.raises(anthropic.NotFoundError) as error:
        client.messages.create(model="claude-sonnet-4-5", messages=ASK, max_tokens=4)
    assert error.value.body["type"] == "error" and error.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="claude-sonnet-4-5", messages=ASK)
    streamed = httpx.post(server.url + "/v1/messages?beta=true", timeout=60,
                          json={"model": "nothing-here", "messages": ASK, "max_tokens": 4, "stream": True})
    assert "nothing-here" in anthropic_error(streamed, 404, "not_found_error")


def test_bad_requests_are_400s_in_anthropics_shape(server):
    url = server.url + "/v1/messages"
    message = anthropic_error(httpx.post(url, content=b'{"model": "smollm2", "messages": [', timeout=60),
                              400, "invalid_request_error")
    assert "JSON" in message
    message = anthropic_error(httpx.post(url, json={"model": MODEL, "messages": ASK}, timeout=60),
                              400, "invalid_request_error")
    assert "max_tokens" in message
    wrong_type = {"model": MODEL, "messages": ASK, "max_tokens": 4, "temperature": "warm"}
    assert "temperature" in anthropic_error(httpx.post(url, json=wrong_type, timeout=60), 400,
                                            "invalid_request_error")
    image = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]}
    assert "text-only" in anthropic_error(httpx.post(url, json=image, timeout=60), 400, "invalid_request_error")
    document = {"model": MODEL, "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x"}}]}]}
    assert "'document'" in anthropic_error(httpx.post(url, json=document, timeout=60), 400,
                                           "invalid_request_error")
    unknown_tool = {"model": MODEL, "max_tokens": 4, "messages": ASK, "tools": [WEATHER],
                    "tool_choice": {"type": "tool", "name": "nope"}}
    assert "nope" in anthropic_error(httpx.post(url, json=unknown_tool, timeout=60), 400,
                                     "invalid_request_error")
    assert anthropic_error(httpx.get(server.url + "/v1/messages/nothing", timeout=60), 404, "not_found_error")


def test_a_prompt_too_long_says_so_in_anthropics_words(client):
    long = [{"role": "user", "content": "the cat sat on the mat " * 1200}]
    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(model=MODEL, messages=long, max_tokens=4)
    found = re.fullmatch(r"prompt is too long: (\d+) tokens > (\d+) maximum", error.value.body["error"]["message"])
    assert found, error.value.body
    assert int(found[1]) > int(found[2]) == 4096
    assert int(found[1]) == client.messages.count_tokens(model=MODEL, messages=long).input_tokens


def test_the_api_key_may_come_as_x_api_key_or_bearer(start_server):
    server = start_server(HEARTH_API_KEY="sesame")
    with anthropic.Anthropic(base_url=server.url, api_key="sesame", max_retries=0, timeout=120) as keyed:
        assert keyed.messages.create(model=MODEL, messages=ASK, max_tokens=2).content
    with anthropic.Anthropic(base_url=server.url, auth_token="sesame", max_retries=0, timeout=120) as bearer:
        assert bearer.messages.count_tokens(model=MODEL, messages=ASK).input_tokens > 5
    with anthropic.Anthropic(base_url=server.url, api_key="wrong", max_retries=0, timeout=120) as wrong, \
            pytest.raises(anthropic.AuthenticationError) as error:
        wrong.messages.create(model=MODEL, messages=ASK, max_tokens=2)
    assert error.value.body["error"]["type"] == "authentication_error"
    missing = httpx.post(server.url + "/v1/messages", json={"model": MODEL, "messages": ASK, "max_tokens": 2})
    assert "x-api-key" in anthropic_error(missing, 401, "authentication_error")
    # The other APIs take the Anthropic SDK's header too.
    assert httpx.get(server.url + "/api/tags", headers={"x-api-key": "sesame"}).status_code == 200
    assert httpx.get(server.url + "/api/tags", headers={"x-api-key": "wrong"}).status_code == 401


def test_an_error_after_the_stream_began_is_an_error_event(start_server):
    """A shutdown mid-answer: the status line has gone, so the error is Anthropic's ``error``
    event, in its error shape, where message_delta would have been."""
    private = start_server()
    events: list[tuple[str, dict]] = []
    body = {"model": MODEL, "max_tokens": 3000, "stream": True,
            "messages": [{"role": "user", "content": "Tell me a very long story about a dog."}]}
    with httpx.stream("POST", private.url + "/v1/messages", json=body, timeout=60) as response:
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, json.loads(line.removeprefix("data: "))))
                if len(events) == 5:
                    threading.Thread(target=private.process.send_signal, args=(signal.SIGTERM,)).start()
    assert [name for name, _ in events[:3]] == ["message_start", "ping", "content_block_start"]
    assert events[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error",
                                                               "message": "server is shutting down"}})
    assert "message_stop" not in [name for name, _ in events]


# -- blocks, without a model -----------------------------------------------------------------


def chunk(content: str = "", thinking: str | None = None, calls: list[ToolCall] | None = None,
          done: bool = False) -> ChatResponse:
    return ChatResponse(model="m", created_at=datetime.now(timezone.utc), done=done,
                        message=Message(role="assistant", content=content, thinking=thinking, tool_calls=calls))


def test_blocks_follow_the_order_the_model_wrote_them():
    """Reasoning, then an answer, then two calls, fed as a runtime streams them: blank text
    between them opens no block (Anthropic refuses blank text blocks sent back to it)."""
    assembly = BlockAssembly()
    calls = [ToolCall(id="toolu_a", function=ToolCallFunction(name="add", arguments={"a": 1, "b": 2})),
             ToolCall(function=ToolCallFunction(name="get_weather", arguments={"city": "Oslo"}))]
    events = []
    for piece in (chunk(thinking="Adding "), chunk(thinking="is easy."), chunk("\n\n"), chunk("Sure"),
                  chunk("!"), chunk("\n", calls=calls[:1]), chunk(" "), chunk(calls=calls[1:]), chunk(done=True)):
        events += assembly.feed(piece)
    events += assembly.finish()
    starts = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text", "tool_use", "tool_use"]
    assert [b.model_dump() for b in assembly.blocks] == [
        {"type": "thinking", "thinking": "Adding is easy.", "signature": assembly.blocks[0].signature},
        {"type": "text", "text": "\n\nSure!\n"},
        {"type": "tool_use", "id": "toolu_a", "name": "add", "input": {"a": 1, "b": 2}},
        {"type": "tool_use", "id": assembly.blocks[3].id, "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert assembly.blocks[3].id.startswith("toolu_") and assembly.tool_calls
    signature = [e for e in events if e["type"] == "content_block_delta" and e["index"] == 0][-1]
    assert signature["delta"] == {"type": "signature_delta", "signature": assembly.blocks[0].signature}
    json_deltas = [e["delta"]["partial_json"] for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
    assert [json.loads(text) for text in json_deltas] == [{"a": 1, "b": 2}, {"city": "Oslo"}]
