"""OpenAI's API under /v1, driven by the official `openai` package against a real server."""

from __future__ import annotations

import json
import math
import time

import httpx
import openai
import pytest

from tests.derived_models import create_tools_model

pytestmark = pytest.mark.e2e

MODEL = "smollm2:latest"
ASK = [{"role": "user", "content": "Name three colors."}]
SAME = {"temperature": 0, "max_tokens": 16, "seed": 7}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 16}},
            "required": ["city"],
        },
    },
}
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            "required": ["a", "b"],
        },
    },
}


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list().data]
    assert MODEL in ids
    model = client.models.retrieve(MODEL)
    assert (model.id, model.object, model.owned_by) == (MODEL, "model", "library")
    assert model.created > 1_600_000_000
    for missing in ("nothing-here:latest", "hf.co/nobody/nothing:Q4_K_M", "../etc"):
        with pytest.raises(openai.NotFoundError):
            client.models.retrieve(missing)


def test_chat_is_repeatable_with_consistent_usage(client):
    first = client.chat.completions.create(model=MODEL, messages=ASK, **SAME)
    second = client.chat.completions.create(model=MODEL, messages=ASK, **SAME)
    choice = first.choices[0]
    assert first.id.startswith("chatcmpl-") and first.object == "chat.completion"
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    usage = first.usage
    assert usage.prompt_tokens > 5 and 0 < usage.completion_tokens <= 16
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 16
    assert second.choices[0].message.content == choice.message.content
    # The second prompt comes from the cache, but prompt_tokens still counts all of it.
    assert second.usage.prompt_tokens == usage.prompt_tokens


def test_streamed_chat_matches_and_reports_usage(client):
    whole = client.chat.completions.create(model=MODEL, messages=ASK, **SAME)
    stream = client.chat.completions.create(model=MODEL, messages=ASK, stream=True,
                                            stream_options={"include_usage": True}, **SAME)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"


def test_response_format_json_schema_and_json_object(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    reply = client.chat.completions.create(
        model=MODEL, temperature=0, max_tokens=48,
        messages=[{"role": "user", "content": "Describe a person named Ann who is 30."}],
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = json.loads(reply.choices[0].message.content)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    reply = client.chat.completions.create(
        model=MODEL, temperature=0, max_tokens=48, response_format={"type": "json_object"},
        messages=[{"role": "user", "content": 'Reply with JSON like {"answer": 4}. What is 2+2?'}],
    )
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


@pytest.fixture(scope="module")
def tools_model(server):
    return create_tools_model(server.url)


def test_tools_need_a_template_with_a_place_for_them(client):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=ASK, tools=[WEATHER], max_tokens=4)
    assert "does not support tools" in error.value.message and "smollm2" in error.value.message


def test_forced_tool_calls(client, tools_model):
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = client.chat.completions.create(
        model=tools_model, messages=ask, temperature=0, max_tokens=40, tools=[WEATHER, ADD],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)

    stream = client.chat.completions.create(
        model=tools_model, messages=ask, temperature=0, max_tokens=48, tools=[WEATHER, ADD],
        tool_choice="required", stream=True,
    )
    chunks = list(stream)
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    # The first delta of a call names it (with its id); the next ones carry its arguments.
    first = deltas[0]
    assert first.id.startswith("call_") and first.function.name in ("get_weather", "add")
    text = "".join(d.function.arguments or "" for d in deltas if d.index == first.index)
    arguments = json.loads(text)
    required = (WEATHER if first.function.name == "get_weather" else ADD)["function"]["parameters"]["required"]
    assert set(required) <= set(arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_conversation_with_tool_result(client, tools_model):
    messages = [
        {"role": "system", "content": "You help with the weather."},
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees and sunny"},
    ]
    reply = client.chat.completions.create(model=tools_model, messages=messages, tools=[WEATHER],
                                           temperature=0, max_tokens=8)
    assert reply.choices[0].message.content or reply.choices[0].message.tool_calls


def test_completions_plain_echo_and_streamed(client):
    prompt = "The capital of France is"
    whole = client.completions.create(model=MODEL, prompt=prompt, **SAME)
    assert whole.object == "text_completion" and whole.choices[0].text
    assert whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens
    echoed = client.completions.create(model=MODEL, prompt=[prompt], echo=True, **SAME)
    assert echoed.choices[0].text == prompt + whole.choices[0].text
    chunks = list(client.completions.create(model=MODEL, prompt=prompt, stream=True,
                                            stream_options={"include_usage": True}, **SAME))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_embeddings(client):
    inputs = ["The cat sat on the mat.", "Quarterly revenue grew by four percent."]
    # The SDK asks for base64 unless told otherwise; ask for floats explicitly too.
    for result in (client.embeddings.create(model=MODEL, input=inputs),
                   client.embeddings.create(model=MODEL, input=inputs, encoding_format="float")):
        first, second = (d.embedding for d in result.data)
        assert [d.index for d in result.data] == [0, 1]
        assert len(first) == len(second) > 8
        assert abs(norm(first) - 1) < 1e-3 and abs(norm(second) - 1) < 1e-3
        assert first != second
        assert result.usage.prompt_tokens > 0
    short = client.embeddings.create(model=MODEL, input="The cat sat on the mat.", dimensions=8,
                                     encoding_format="float")
    assert len(short.data[0].embedding) == 8 and abs(norm(short.data[0].embedding) - 1) < 1e-3
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL, input=[[1, 2, 3]])


def test_errors(client):
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=ASK)
    assert missing.value.body["code"] == "model_not_found"
    bad = [
        {"max_tokens": -5},
        {"temperature": "hot"},
        {"n": 2},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
    ]
    for fields in bad:
        with pytest.raises(openai.BadRequestError) as error:
            client.chat.completions.create(**{"model": MODEL, "messages": ASK, **fields})
        assert error.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 600}],
                                       max_tokens=4, extra_body={"num_ctx": 64})
    assert "context" in error.value.message


def test_disconnect_stops_generation(server, client):
    body = {"model": MODEL, "messages": ASK, "stream": True, "max_tokens": 4000}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        assert next(lines).startswith("data: {")
    # Generation stopped, so the model is free for the next request at once.
    started = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=ASK, max_tokens=2)
    assert time.monotonic() - started < 10
    metrics = httpx.get(server.url + "/metrics").text
    assert "hearth_active_streams 0" in metrics


def test_openapi_documents_the_v1_models(server):
    schemas = httpx.get(server.url + "/openapi.json").json()["components"]["schemas"]
    assert {"ChatCompletionRequest", "ChatCompletion", "EmbeddingRequest", "CompletionRequest"} <= set(schemas)
