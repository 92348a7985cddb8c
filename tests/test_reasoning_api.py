"""Reasoning and capabilities through a real server and the real default model.

``smollm2-think`` is the default model behind a Qwen3-style template whose generation prompt
opens ``<think>`` (so what the model writes is its reasoning until it closes the tag) and that
reads ``enable_thinking`` (false closes the block in the prompt, so the model answers)."""

from __future__ import annotations

import json

import httpx
import ollama
import openai
import pytest

from tests.derived_models import create_derived, create_tools_model

pytestmark = pytest.mark.e2e

THINK_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)
ASK = [{"role": "user", "content": "Why is the sky blue?"}]
FEW = {"temperature": 0, "num_predict": 24}


@pytest.fixture(scope="module")
def think_model(server):
    return create_derived(server.url, "smollm2-think", THINK_TEMPLATE)


@pytest.fixture(scope="module")
def tools_model(server):
    return create_tools_model(server.url)


@pytest.fixture
def client(server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=120)


def no_markers(*texts: str | None) -> bool:
    return not any(marker in (text or "") for text in texts for marker in ("<think>", "</think>"))


def test_thinking_arrives_in_its_own_field(client, think_model):
    thought = client.chat(model=think_model, messages=ASK, think=True, options=FEW)
    assert thought.message.thinking, thought.message
    assert no_markers(thought.message.thinking, thought.message.content)
    answered = client.chat(model=think_model, messages=ASK, think=False, options=FEW)
    assert answered.message.content and not answered.message.thinking
    # Left unset, the model thinks as its template does by default, still split out.
    default = client.chat(model=think_model, messages=ASK, options=FEW)
    assert default.message.thinking == thought.message.thinking


def test_thinking_streams_as_deltas_and_joins_to_the_whole(client, think_model):
    whole = client.chat(model=think_model, messages=ASK, think=True, options=FEW)
    chunks = list(client.chat(model=think_model, messages=ASK, think=True, options=FEW, stream=True))
    assert sum(1 for c in chunks if c.message.thinking) > 1
    assert "".join(c.message.thinking or "" for c in chunks) == whole.message.thinking


def test_generate_thinks_too(client, think_model):
    reply = client.generate(model=think_model, prompt="Why is the sky blue?", think=True, options=FEW)
    assert reply.thinking and no_markers(reply.thinking, reply.response)


def test_openai_reasoning_content(server, think_model):
    with openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120) as oa:
        reply = oa.chat.completions.create(model=think_model, messages=ASK, temperature=0, max_tokens=24,
                                           reasoning_effort="high")
        message = reply.choices[0].message
        assert message.reasoning_content and message.reasoning_content == message.reasoning
        assert no_markers(message.reasoning_content, message.content)
        stream = oa.chat.completions.create(model=think_model, messages=ASK, temperature=0, max_tokens=24,
                                            reasoning_effort="high", stream=True)
        deltas = [c.choices[0].delta for c in stream if c.choices]
        streamed = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
        assert streamed == message.reasoning_content
        off = oa.chat.completions.create(model=think_model, messages=ASK, temperature=0, max_tokens=24,
                                         reasoning_effort="none")
        assert off.choices[0].message.content and not off.choices[0].message.reasoning_content


def test_thinking_a_model_cannot_do_is_refused_on_every_api(server, client):
    with pytest.raises(ollama.ResponseError) as error:
        client.generate(model="smollm2", prompt="hi", think=True)
    assert error.value.status_code == 400 and "does not support thinking" in error.value.error
    body = {"model": "smollm2", "messages": ASK, "reasoning_effort": "high"}
    reply = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
    assert reply.status_code == 400 and "does not support thinking" in reply.json()["error"]["message"]
    # think false on such a model asks for nothing it lacks
    assert client.chat(model="smollm2", messages=ASK, think=False, options={"num_predict": 2}).done


def test_show_lists_capabilities(client, think_model, tools_model):
    assert client.show("smollm2").capabilities == ["completion"]
    assert "thinking" in client.show(think_model).capabilities
    assert "tools" in client.show(tools_model).capabilities


def test_a_raw_prompt_reads_special_tokens_as_tokens(server):
    prompt = "<|im_start|>user\nWhat is two plus two?<|im_end|>\n<|im_start|>assistant\n"
    tokens = httpx.post(server.url + "/api/tokenize", json={"model": "smollm2", "content": prompt},
                        timeout=60).json()["tokens"]
    body = {"model": "smollm2", "prompt": prompt, "raw": True, "stream": False,
            "options": {"num_predict": 1, "temperature": 0}}
    reply = httpx.post(server.url + "/api/generate", json=body, timeout=60).json()
    read = reply["prompt_eval_count"] + reply.get("prompt_cache_count", 0)
    # <|im_start|> read as text would be several tokens each; as the token it is one.
    assert read == len(tokens)


def test_tool_ids_go_back_into_the_template(server, tools_model):
    """The id a call went out with comes back on the tool result and the second turn answers."""
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
    first = httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": tools_model, "messages": ASK, "tools": [tool], "tool_choice": "required", "stream": False,
        "options": {"temperature": 0, "num_predict": 40}}).json()
    call = first["message"]["tool_calls"][0]
    second = httpx.post(server.url + "/api/chat", timeout=120, json={
        "model": tools_model, "tools": [tool], "stream": False, "options": {"temperature": 0, "num_predict": 8},
        "messages": [*ASK, first["message"],
                     {"role": "tool", "content": json.dumps({"sky": "blue"}), "tool_call_id": call["id"],
                      "tool_name": call["function"]["name"]}]}).json()
    assert second["done"] and (second["message"]["content"] or second["message"].get("tool_calls"))
