"""OpenAI's Responses API under /v1/responses: the translation of input items and tools (no
server), then the official `openai` package's `responses.create` / `responses.stream` against
real servers with the default model."""

from __future__ import annotations

import json

import httpx
import openai
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from hearth.api.responses_types import ResponsesRequest
from hearth.errors import InvalidRequest
from hearth.server.responses_translate import (
    chat_request,
    read_items,
    read_tool_choice,
    read_tools,
    to_messages,
)
from tests.conftest import HearthServer
from tests.derived_models import create_tools_model
from tests.thinking_model import GREEDY, QUESTION, create_thinking_model, reference_reply
from tests.thinking_model import NAME as THINKING

MODEL = "smollm2"
SAME = {"temperature": 0, "max_output_tokens": 24, "extra_body": {"seed": 7}}

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 16}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
HOSTED = [{"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
          {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
          {"type": "mcp", "server_label": "x", "server_url": "http://127.0.0.1:9"},
          {"type": "local_shell"}, {"type": "computer_use_preview", "display_width": 8,
                                    "display_height": 8, "environment": "linux"}]


# -- translation (no server) ----------------------------------------------------------------


def messages_of(items, instructions=None, tools=None):
    return [m.model_dump(exclude_none=True) for m in to_messages(read_items(items), instructions,
                                                                   read_tools(tools))]


def test_a_string_input_is_one_user_message_after_the_instructions():
    assert messages_of("Hi", "Be brief.") == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_developer_and_system_items_are_folded_into_one_system_prompt_at_the_start():
    items = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Rules."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
        {"type": "message", "role": "system", "content": "Late note."},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
    ]
    assert messages_of(items, "First.") == [
        {"role": "system", "content": "First.\n\nRules.\n\nLate note."},
        {"role": "user", "content": "a\nb"},
        {"role": "assistant", "content": "ok"},
    ]


def test_calls_join_one_assistant_turn_and_outputs_name_their_function():
    items = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "call_id": "c2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "rain"}]},
    ]
    messages = messages_of(items, tools=[WEATHER])
    assert messages[1] == {
        "role": "assistant", "content": "Checking.", "thinking": "Two cities.",
        "tool_calls": [{"id": "c1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                       {"id": "c2", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]}
    assert messages[2:] == [
        {"role": "tool", "content": "sunny", "tool_call_id": "c1", "tool_name": "get_weather"},
        {"role": "tool", "content": "rain", "tool_call_id": "c2", "tool_name": "get_weather"}]


def test_hosted_tool_items_are_left_out_and_images_refused():
    items = [{"role": "user", "content": "hi"}, {"type": "web_search_call", "id": "ws_1", "status": "completed"}]
    assert read_items(items) == [{"type": "message", "role": "user", "content": "hi"}]
    image = [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,AA"}]}]
    with pytest.raises(InvalidRequest, match=r"input\[0\]: this model does not support images"):
        messages_of(image)
    with pytest.raises(InvalidRequest, match=r"input\[0\]\.call_id"):
        read_items([{"type": "function_call", "name": "f", "arguments": "{}"}])
    with pytest.raises(InvalidRequest, match="not a JSON object"):
        messages_of([{"type": "function_call", "call_id": "c", "name": "f", "arguments": "[1]"}])


def test_namespaces_are_flattened_hosted_tools_left_out_and_clashing_names_qualified():
    tools = read_tools([
        WEATHER, *HOSTED,
        {"type": "namespace", "name": "crm", "description": "CRM", "tools": [
            {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
            {"type": "custom", "name": "free_text"}]},
        {"type": "namespace", "name": "wiki", "description": "Wiki", "tools": [
            {"type": "function", "name": "lookup", "description": "Find a page."}]},
    ])
    assert [t["function"]["name"] for t in tools.chat_tools] == ["get_weather", "lookup", "wiki__lookup"]
    assert tools.chat_tools[0] == {"type": "function", "function": {
        "name": "get_weather", "description": WEATHER["description"], "parameters": WEATHER["parameters"]}}
    assert tools.chat_tools[2]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert tools.origin_of("wiki__lookup") == ("wiki", "lookup")
    assert tools.origin_of("lookup") == ("crm", "lookup")
    assert tools.flat_name("wiki", "lookup") == "wiki__lookup"
    # tool_choice in every form the API has
    assert read_tool_choice({"type": "function", "name": "get_weather"}, tools)[0] == {"name": "get_weather"}
    assert read_tool_choice({"type": "function", "name": "lookup", "namespace": "wiki"}, tools)[0] == {
        "name": "wiki__lookup"}
    choice, kept = read_tool_choice({"type": "allowed_tools", "mode": "required",
                                     "tools": [{"type": "function", "name": "get_weather"}]}, tools)
    assert choice == "required" and [t["function"]["name"] for t in kept.chat_tools] == ["get_weather"]
    for bad in ({"type": "function", "name": "nope"}, {"type": "web_search_preview"}, "sometimes"):
        with pytest.raises(InvalidRequest):
            read_tool_choice(bad, tools)
    with pytest.raises(InvalidRequest, match="needs function tools"):
        read_tool_choice("required", read_tools(HOSTED))


def test_settings_reach_the_chat_request():
    body = ResponsesRequest.model_validate({
        "model": "m", "input": "hi", "max_output_tokens": 9, "temperature": 0.5, "top_p": 0.9,
        "reasoning": {"effort": "minimal", "summary": "auto"}, "tool_choice": "auto",
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}, "strict": True}},
        # accepted and ignored
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "k", "client_metadata": {"a": "b"},
        "parallel_tool_calls": True, "service_tier": "auto", "store": False, "stream_options": {}})
    chat = chat_request(body, read_items(body.input), read_tools(None), None)
    assert (chat.options.num_predict, chat.options.temperature, chat.options.top_p) == (9, 0.5, 0.9)
    assert chat.think is False and chat.format == {"type": "object"} and chat.truncate is False
    for effort, think in (("low", "low"), ("high", "high"), ("xhigh", "high"), ("none", False)):
        body = ResponsesRequest.model_validate({"model": "m", "reasoning": {"effort": effort}})
        assert chat_request(body, [], read_tools(None), None).think == think
    body = ResponsesRequest.model_validate({"model": "m", "text": {"format": {"type": "json_object"}},
                                            "truncation": "auto"})
    chat = chat_request(body, [], read_tools(None), None)
    assert chat.format == "json" and chat.truncate is True and chat.think is None


# -- against a server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=180) as c:
        yield c


@pytest.fixture(scope="module")
def tools_model(server):
    return create_tools_model(server.url)


def chat_answer(client, messages, max_tokens=24):
    reply = client.chat.completions.create(model=MODEL, messages=messages, temperature=0, max_tokens=max_tokens,
                                           seed=7)
    return reply.choices[0].message.content, reply.usage


@pytest.mark.e2e
def test_create_answers_as_chat_completions_do_with_instructions_as_the_system_prompt(client):
    reply = client.responses.create(model=MODEL, input="Name three colors.", instructions="Answer in French.",
                                    **SAME)
    text, usage = chat_answer(client, [{"role": "system", "content": "Answer in French."},
                                       {"role": "user", "content": "Name three colors."}])
    assert reply.id.startswith("resp_") and reply.object == "response" and reply.model == MODEL
    assert reply.output_text == text and text
    [message] = reply.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert [part.type for part in message.content] == ["output_text"] and message.content[0].annotations == []
    assert reply.usage.input_tokens == usage.prompt_tokens
    assert reply.usage.output_tokens == usage.completion_tokens
    assert reply.usage.total_tokens == usage.total_tokens
    assert reply.usage.input_tokens_details.cached_tokens <= reply.usage.input_tokens
    assert reply.usage.output_tokens_details.reasoning_tokens == 0
    assert reply.instructions == "Answer in French." and reply.tools == [] and reply.tool_choice == "auto"
    # status follows the token count: cut at the limit is "incomplete"
    cut = usage.completion_tokens == SAME["max_output_tokens"]
    assert reply.status == ("incomplete" if cut else "completed")


@pytest.mark.e2e
def test_items_input_matches_the_same_conversation_on_chat_completions(client):
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be kind."}]},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello!"}]},
             {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi there."}]},
             {"role": "user", "content": "Tell me a story."}]
    reply = client.responses.create(model=MODEL, input=items, **SAME)
    text, usage = chat_answer(client, [{"role": "system", "content": "Be kind."},
                                       {"role": "user", "content": "Hello!"},
                                       {"role": "assistant", "content": "Hi there."},
                                       {"role": "user", "content": "Tell me a story."}])
    assert (reply.output_text, reply.usage.input_tokens) == (text, usage.prompt_tokens)


@pytest.mark.e2e
def test_streamed_events_arrive_in_order_with_rising_sequence_numbers(client):
    ask = {"model": MODEL, "input": "What color is the sky?", "temperature": 0, "max_output_tokens": 200,
           "extra_body": {"seed": 7}}
    whole = client.responses.create(**ask)
    assert whole.status == "completed", "the answer must end by itself for this test"
    with client.responses.stream(**ask) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas >= 1
    assert kinds == (["response.created", "response.in_progress", "response.output_item.added",
                      "response.content_part.added"] + ["response.output_text.delta"] * deltas
                     + ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                        "response.completed"])
    assert [event.sequence_number for event in events] == list(range(len(events)))
    streamed = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    assert streamed == whole.output_text == final.output_text
    item_ids = {event.item_id for event in events if hasattr(event, "item_id")}
    assert item_ids == {final.output[0].id}
    assert all(event.output_index == 0 for event in events if hasattr(event, "output_index"))
    assert events[0].response.status == "in_progress" and events[0].response.id == final.id
    assert final.usage.output_tokens == whole.usage.output_tokens
    # Stored (store defaults to true) once streamed, as it was sent.
    assert client.responses.retrieve(final.id).output_text == final.output_text


@pytest.mark.e2e
def test_raw_stream_names_each_event_and_sends_no_done_marker(server):
    body = {"model": MODEL, "input": "Hi", "stream": True, "max_output_tokens": 4, "store": False}
    with httpx.stream("POST", server.url + "/v1/responses", json=body, timeout=120,
                      headers={"accept": "text/event-stream"}) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/event-stream")
        text = "".join(reply.iter_text())
    blocks = [block for block in text.split("\n\n") if block]
    # Every event is what the SDK's own types say it is, checked strictly (the client itself
    # builds them without validating).
    events = pydantic.TypeAdapter(ResponseStreamEvent)
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == event_line[7:]
        assert events.validate_python(data).type == data["type"]
    assert "[DONE]" not in text
    whole = httpx.post(server.url + "/v1/responses", json={**body, "stream": False}, timeout=120).json()
    assert Response.model_validate(whole).status in ("completed", "incomplete")


@pytest.mark.e2e
def test_max_output_tokens_makes_the_response_incomplete(client):
    ask = {"model": MODEL, "input": "Tell me a long story.", "max_output_tokens": 3, "temperature": 0}
    reply = client.responses.create(**ask)
    assert reply.status == "incomplete" and reply.incomplete_details.reason == "max_output_tokens"
    assert reply.usage.output_tokens == 3 and reply.output[0].status == "incomplete"
    events = list(client.responses.create(**ask, stream=True))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert "response.completed" not in [event.type for event in events]
    assert events[-1].response.output[0].content[0].text == reply.output_text


@pytest.mark.e2e
def test_json_schema_text_format_constrains_the_answer(client):
    schema = {"type": "object", "properties": {"color": {"type": "string", "maxLength": 12},
                                               "count": {"type": "integer", "minimum": 0, "maximum": 9}},
              "required": ["color", "count"], "additionalProperties": False}
    reply = client.responses.create(model=MODEL, input="A color and a number, as JSON.", max_output_tokens=60,
                                    temperature=0, text={"format": {"type": "json_schema", "name": "pick",
                                                                    "schema": schema, "strict": True}})
    value = json.loads(reply.output_text)
    assert set(value) == {"color", "count"} and isinstance(value["color"], str) and 0 <= value["count"] <= 9
    assert reply.text.format.type == "json_schema"


@pytest.mark.e2e
def test_forced_function_call_and_its_output_in_the_next_turn(client, server, tools_model):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.responses.create(model=tools_model, input=ask, tools=[WEATHER], max_output_tokens=60,
                                    tool_choice={"type": "function", "name": "get_weather"}, temperature=0)
    calls = [item for item in reply.output if item.type == "function_call"]
    assert len(calls) == 1, reply.output
    call = calls[0]
    arguments = json.loads(call.arguments)
    assert call.name == "get_weather" and call.call_id and call.id.startswith("fc_")
    assert set(arguments) == {"city"} and isinstance(arguments["city"], str) and len(arguments["city"]) <= 16
    assert reply.status == "completed" and reply.tool_choice.name == "get_weather"

    # The same call streamed: added with empty arguments, then the arguments, then done.
    with client.responses.stream(model=tools_model, input=ask, tools=[WEATHER], max_output_tokens=60,
                                 tool_choice={"type": "function", "name": "get_weather"}, temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    at = kinds.index("response.output_item.added")
    assert kinds[at:at + 4] == ["response.output_item.added", "response.function_call_arguments.delta",
                                "response.function_call_arguments.done", "response.output_item.done"]
    assert events[at].item.type == "function_call" and events[at].item.arguments == ""
    assert json.loads(events[at + 2].arguments) == arguments
    assert json.loads(final.output[-1].arguments) == arguments

    # Second turn: the call and its result go back as items; the answer is the one /api/chat gives
    # for the same conversation with the tool message naming its call.
    items = [*ask, call.model_dump(exclude_none=True),
             {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}]
    answer = client.responses.create(model=tools_model, input=items, tools=[WEATHER], max_output_tokens=24,
                                     temperature=0, extra_body={"seed": 7})
    same = httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": tools_model, "stream": False, "tools": [{"type": "function", "function": {
            k: WEATHER[k] for k in ("name", "description", "parameters")}}],
        "options": {"temperature": 0, "num_predict": 24, "seed": 7},
        "messages": [*ask, {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.call_id, "function": {"name": "get_weather", "arguments": arguments}}]},
            {"role": "tool", "content": "Sunny, 21 C", "tool_call_id": call.call_id, "tool_name": "get_weather"}]})
    same = same.json()
    assert answer.usage.input_tokens == same["prompt_eval_count"] + (same.get("prompt_cache_count") or 0)
    if same["message"].get("tool_calls"):
        assert [json.loads(i.arguments) for i in answer.output if i.type == "function_call"] == [
            c["function"]["arguments"] for c in same["message"]["tool_calls"]]
    else:
        assert answer.output_text == same["message"]["content"]


@pytest.mark.e2e
def test_hosted_tools_are_left_out_with_a_warning_not_refused(client, server):
    plain = client.responses.create(model=MODEL, input="Say hello.", **SAME)
    reply = client.responses.create(model=MODEL, input="Say hello.", tools=HOSTED, **SAME)
    assert reply.output_text == plain.output_text and reply.usage.input_tokens == plain.usage.input_tokens
    assert reply.tools == []
    assert "leaving out tools hearth cannot run" in server.log() and "web_search" in server.log()


@pytest.mark.e2e
def test_errors_in_openai_shape(client, server):
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="no-such-model", input="hi")
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError, match="text-only"):
        client.responses.create(model=MODEL, input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]}])
    # A prompt over the context window is refused (truncation "disabled" is the default).
    with pytest.raises(openai.BadRequestError) as long:
        client.responses.create(model=MODEL, input="hello world " * 3000, max_output_tokens=4)
    assert long.value.code == "context_length_exceeded"
    for stream in (False, True):
        reply = httpx.post(server.url + "/v1/responses", json={"model": "no-such-model", "input": "hi",
                                                               "stream": stream}, timeout=60)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_" + "0" * 48)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_" + "0" * 48)
    reply = httpx.get(server.url + "/v1/responses/..%2F..%2Fmodels", timeout=30)
    assert reply.status_code == 404 and "error" in reply.json()


@pytest.mark.e2e
def test_previous_response_id_continues_across_a_restart_and_delete_forgets(start_server):
    first = start_server()
    try:
        with openai.OpenAI(base_url=first.url + "/v1", api_key="x", max_retries=0, timeout=180) as c:
            one = c.responses.create(model=MODEL, input="My cat is called Tom.", instructions="Be brief.", **SAME)
            unstored = c.responses.create(model=MODEL, input="Hello.", store=False, max_output_tokens=2)
    finally:
        first.stop()
    again = HearthServer(first.home)
    try:
        with openai.OpenAI(base_url=again.url + "/v1", api_key="x", max_retries=0, timeout=180) as c:
            assert c.responses.retrieve(one.id).output_text == one.output_text
            with pytest.raises(openai.NotFoundError):
                c.responses.retrieve(unstored.id)
            two = c.responses.create(model=MODEL, previous_response_id=one.id, input="What is my cat called?",
                                     **SAME)
            assert two.previous_response_id == one.id
            # Instructions are not carried over (OpenAI's rule); the turns are.
            text, usage = chat_answer(c, [{"role": "user", "content": "My cat is called Tom."},
                                          {"role": "assistant", "content": one.output_text},
                                          {"role": "user", "content": "What is my cat called?"}])
            assert (two.output_text, two.usage.input_tokens) == (text, usage.prompt_tokens)
            # A chain of three: the second response holds the whole conversation.
            three = c.responses.create(model=MODEL, previous_response_id=two.id, input="Thanks.", **SAME)
            text, usage = chat_answer(c, [{"role": "user", "content": "My cat is called Tom."},
                                          {"role": "assistant", "content": one.output_text},
                                          {"role": "user", "content": "What is my cat called?"},
                                          {"role": "assistant", "content": two.output_text},
                                          {"role": "user", "content": "Thanks."}])
            assert (three.output_text, three.usage.input_tokens) == (text, usage.prompt_tokens)

            c.responses.delete(one.id)
            with pytest.raises(openai.NotFoundError):
                c.responses.retrieve(one.id)
            with pytest.raises(openai.NotFoundError):
                c.responses.delete(one.id)
            with pytest.raises(openai.BadRequestError) as gone:
                c.responses.create(model=MODEL, previous_response_id=one.id, input="Again?")
            assert gone.value.code == "previous_response_not_found"
            # What was built on it still stands on its own.
            assert c.responses.retrieve(two.id).output_text == two.output_text
    finally:
        again.stop()
    assert not list((first.home / "responses").glob(".tmp-*"))


@pytest.mark.e2e
def test_the_log_keeps_only_the_newest_responses(start_server):
    running = start_server(HEARTH_RESPONSES_KEEP="2")
    with openai.OpenAI(base_url=running.url + "/v1", api_key="x", max_retries=0, timeout=180) as c:
        ids = [c.responses.create(model=MODEL, input=f"Say {word}.", max_output_tokens=2).id
               for word in ("one", "two", "three")]
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(ids[0])
        assert [c.responses.retrieve(i).id for i in ids[1:]] == ids[1:]
    assert sorted(p.stem for p in (running.home / "responses").iterdir()) == sorted(ids[1:])


@pytest.mark.e2e
def test_thinking_comes_out_as_a_reasoning_item_before_the_message(client, server):
    create_thinking_model(server.url)
    reference = reference_reply(server.url)
    assert reference["thinking"] and reference["content"], reference
    ask = {"model": THINKING, "input": QUESTION, "temperature": 0, "max_output_tokens": GREEDY["num_predict"]}
    reply = client.responses.create(**ask)
    reasoning, message = reply.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert [s.type for s in reasoning.summary] == ["summary_text"]
    assert reasoning.summary[0].text == reference["thinking"]
    assert message.type == "message" and reply.output_text == reference["content"]

    events = list(client.responses.create(**ask, stream=True))
    kinds = [e.type for e in events]
    thought = kinds.count("response.reasoning_summary_text.delta")
    said = kinds.count("response.output_text.delta")
    assert kinds == (["response.created", "response.in_progress", "response.output_item.added",
                      "response.reasoning_summary_part.added"] + ["response.reasoning_summary_text.delta"] * thought
                     + ["response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
                        "response.output_item.done", "response.output_item.added", "response.content_part.added"]
                     + ["response.output_text.delta"] * said
                     + ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                        "response.completed"])
    assert "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta") == reference["thinking"]
    assert {e.output_index for e in events if e.type == "response.output_text.delta"} == {1}
    assert [item.type for item in events[-1].response.output] == ["reasoning", "message"]

    # reasoning.effort "none" turns thinking off, as think=false does on /api/chat.
    quiet = client.responses.create(**ask, reasoning={"effort": "none"})
    unthinking = reference_reply(server.url, think=False)
    assert [item.type for item in quiet.output] == ["message"]
    assert quiet.output_text == unthinking["content"]


@pytest.mark.e2e
def test_a_stream_cut_by_shutdown_ends_with_error_and_response_failed(start_server):
    # Slow decode steps (a test-only runner fault) keep the answer going while the server stops.
    running = start_server(HEARTH_RUNNER_FAULT="slow-steps")
    body = {"model": MODEL, "input": "Tell me a long story.", "stream": True, "max_output_tokens": 400,
            "temperature": 0}
    events = []
    with httpx.stream("POST", running.url + "/v1/responses", json=body, timeout=120) as reply:
        lines = reply.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "response.output_text.delta":
                    break
        running.process.send_signal(15)
        events += [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
    running.stop()
    kinds = [e["type"] for e in events]
    assert kinds[-2:] == ["error", "response.failed"] and "response.completed" not in kinds
    assert "shutting down" in events[-2]["message"] and events[-2]["code"] == "server_error"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["message"] == events[-2]["message"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    pydantic.TypeAdapter(ResponseStreamEvent).validate_python(events[-1])


# -- the OpenAI Agents SDK (openai-agents), when installed -----------------------------------


def agents_model(server, name):
    agents = pytest.importorskip("agents")
    agents.set_tracing_disabled(True)  # or the SDK sends traces to OpenAI
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=180)
    return agents, agents.OpenAIResponsesModel(name, client)


@pytest.mark.e2e
def test_an_agent_answers_as_responses_create_does(client, server):
    agents, model = agents_model(server, MODEL)
    agent = agents.Agent(name="helper", instructions="Be brief.", model=model,
                         model_settings=agents.ModelSettings(temperature=0, max_tokens=24))
    result = agents.Runner.run_sync(agent, "Name three colors.")
    same = client.responses.create(model=MODEL, instructions="Be brief.", input="Name three colors.",
                                   temperature=0, max_output_tokens=24)
    assert result.final_output == same.output_text and same.output_text


@pytest.mark.e2e
def test_an_agent_calls_its_function_tool(server, tools_model):
    agents, model = agents_model(server, tools_model)
    cities = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        cities.append(city)
        return f"Sunny in {city}"

    agent = agents.Agent(name="weather", instructions="Use the tool.", model=model, tools=[get_weather],
                         model_settings=agents.ModelSettings(tool_choice="required", temperature=0,
                                                             max_tokens=60),
                         tool_use_behavior="stop_on_first_tool")
    result = agents.Runner.run_sync(agent, "What is the weather in Paris?")
    assert len(cities) == 1 and isinstance(cities[0], str)
    assert result.final_output == f"Sunny in {cities[0]}"
