"""The Ollama API as the official `ollama` Python package sees it, against real servers."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

import httpx
import ollama
import pytest

from tests.derived_models import create_tools_model
from tests.tinymodel import write_tiny_model

pytestmark = pytest.mark.e2e

MODEL = "smollm2:latest"
GREEDY = {"temperature": 0, "num_predict": 16, "seed": 42}


@pytest.fixture
def client(server) -> ollama.Client:
    return ollama.Client(host=server.url, timeout=300)


def model_names(client: ollama.Client) -> list[str]:
    return [m.model for m in client.list().models]


# -- models --------------------------------------------------------------------------------


def test_list(client):
    listed = {m.model: m for m in client.list().models}
    assert MODEL in listed
    model = listed[MODEL]
    assert model.size > 50_000_000
    assert len(model.digest) == 64
    assert model.modified_at is not None
    assert model.details.format == "gguf"
    assert model.details.family == "llama"
    assert model.details.quantization_level == "Q4_1"
    assert model.details.parameter_size


def test_show(client):
    shown = client.show("smollm2")
    assert shown.modelfile.lstrip().startswith("#") and "FROM " in shown.modelfile
    assert "<|im_start|>" in shown.template
    assert shown.details.quantization_level == "Q4_1"
    assert shown.modelinfo["general.architecture"] == "llama"
    assert "Apache" in shown.license


def test_copy_and_delete(client):
    client.copy("smollm2", "smollm2-copy")
    try:
        assert "smollm2-copy:latest" in model_names(client)
        assert client.show("smollm2-copy").details.quantization_level == "Q4_1"
    finally:
        client.delete("smollm2-copy")
    assert "smollm2-copy:latest" not in model_names(client)
    assert MODEL in model_names(client)
    with pytest.raises(ollama.ResponseError) as missing:
        client.show("smollm2-copy")
    assert missing.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as again:
        client.delete("smollm2-copy")
    assert again.value.status_code == 404


def test_create_from_existing_model(client, server):
    final = client.create(model="smollm2-pirate", from_="smollm2", system="You are a pirate.",
                          parameters={"temperature": 0.5, "num_predict": 7, "stop": ["<|im_end|>"]})
    try:
        assert final.status == "success"
        shown = client.show("smollm2-pirate")
        # The ollama package's ShowResponse has no "system" field; the wire has it.
        raw = httpx.post(server.url + "/api/show", json={"model": "smollm2-pirate"}, timeout=60)
        assert raw.json()["system"] == "You are a pirate."
        params = dict(line.split(None, 1) for line in shown.parameters.splitlines())
        assert float(params["temperature"]) == 0.5
        assert params["num_predict"] == "7"
        assert "You are a pirate." in shown.modelfile
        assert shown.details.quantization_level == "Q4_1"
    finally:
        client.delete("smollm2-pirate")


def test_create_from_uploaded_blob(client, tmp_path):
    path = write_tiny_model(tmp_path / "upload.gguf", seed=7)
    digest = client.create_blob(path)
    assert digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    events = list(client.create(model="tiny-up", files={"tiny.gguf": digest}, stream=True))
    try:
        assert events[-1].status == "success"
        assert "tiny-up:latest" in model_names(client)
        answer = client.generate("tiny-up", "Hello", options={"temperature": 0, "num_predict": 6},
                                 keep_alive=0)
        assert answer.done and answer.eval_count <= 6
    finally:
        client.delete("tiny-up")


def test_pull_of_a_present_model_needs_no_download(start_server):
    # This server's environment has no usable package index: a download would fail.
    private = start_server()
    events = list(ollama.Client(host=private.url, timeout=120).pull("smollm2", stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    assert not any("download" in s for s in statuses), statuses
    assert ollama.Client(host=private.url).show("smollm2").details.quantization_level == "Q4_1"


# -- generation ----------------------------------------------------------------------------


def test_generate_non_stream_stream_and_repeat(client):
    first = client.generate("smollm2", "Why is the sky blue?", options=GREEDY)
    assert first.done and first.response
    assert first.model == "smollm2"
    assert 0 < first.eval_count <= 16
    assert first.done_reason in ("stop", "length")
    for field in ("total_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration"):
        assert getattr(first, field) > 0, field
    assert first.load_duration is not None and first.load_duration >= 0
    assert first.total_duration >= first.eval_duration

    again = client.generate("smollm2", "Why is the sky blue?", options=GREEDY)
    assert again.response == first.response

    pieces = list(client.generate("smollm2", "Why is the sky blue?", options=GREEDY, stream=True))
    assert all(not p.done for p in pieces[:-1]) and pieces[-1].done
    assert pieces[-1].eval_count == first.eval_count
    assert "".join(p.response for p in pieces) == first.response


def test_chat_stream_and_non_stream(client):
    messages = [{"role": "system", "content": "You answer in one short sentence."},
                {"role": "user", "content": "What is the capital of France?"}]
    whole = client.chat("smollm2", messages=messages, options=GREEDY)
    assert whole.done and whole.message.role == "assistant" and whole.message.content
    assert 0 < whole.eval_count <= 16
    pieces = list(client.chat("smollm2", messages=messages, options=GREEDY, stream=True))
    assert pieces[-1].done and pieces[-1].done_reason == whole.done_reason
    assert "".join(p.message.content for p in pieces) == whole.message.content


def test_chat_with_json_schema(client):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "likes_cats": {"type": "boolean"}},
        "required": ["name", "age", "likes_cats"],
    }
    answer = client.chat("smollm2", messages=[{"role": "user", "content": "Describe a person as JSON."}],
                         format=schema, options={"temperature": 0, "num_predict": 80})
    assert answer.done_reason == "stop", answer.message.content
    data = json.loads(answer.message.content)
    assert set(schema["required"]) <= set(data)
    assert isinstance(data["name"], str)
    assert isinstance(data["age"], int) and not isinstance(data["age"], bool)
    assert isinstance(data["likes_cats"], bool)


def test_generate_with_json_format(client):
    answer = client.generate("smollm2", "List three colors as JSON.", format="json",
                             options={"temperature": 0, "num_predict": 60})
    assert answer.done_reason == "stop", answer.response
    assert isinstance(json.loads(answer.response), (dict, list))


def test_images_on_a_text_model_are_refused(client):
    with pytest.raises(ollama.ResponseError) as refused:
        client.generate("smollm2", "What is in this picture?", images=[b"\x89PNG\r\n\x1a\nnot really"])
    assert refused.value.status_code == 400
    with pytest.raises(ollama.ResponseError) as refused:
        client.chat("smollm2", messages=[{"role": "user", "content": "And this?", "images": [b"GIF89a"]}])
    assert refused.value.status_code == 400


def test_eight_clients_at_once_match_their_solo_answers(server):
    prompts = [f"Tell me one fact about the number {n}." for n in range(1, 9)]
    options = {"temperature": 0, "num_predict": 24}

    def run(prompt: str) -> list:
        return list(ollama.Client(host=server.url, timeout=300).generate(
            "smollm2", prompt, options=options, stream=True))

    alone = ["".join(c.response for c in run(p)) for p in prompts]

    start = threading.Barrier(len(prompts))
    results: dict[int, list] = {}

    def worker(index: int) -> None:
        start.wait()
        results[index] = run(prompts[index])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sorted(results) == list(range(len(prompts)))
    for index, chunks in results.items():
        assert chunks[-1].done is True, index
        assert "".join(c.response for c in chunks) == alone[index], prompts[index]


# -- embeddings ----------------------------------------------------------------------------


def test_embed_and_embeddings(client):
    result = client.embed("smollm2", input=["The sky is blue.", "Cats sleep a lot."])
    assert len(result.embeddings) == 2
    first, second = result.embeddings
    assert len(first) == len(second) > 16
    for vector in result.embeddings:
        assert abs(sum(x * x for x in vector) - 1.0) < 1e-3
    assert first != second

    old = client.embeddings("smollm2", "The sky is blue.")
    assert len(old.embedding) == len(first)
    assert all(abs(a - b) < 1e-4 for a, b in zip(old.embedding, first, strict=True))


# -- loaded models -------------------------------------------------------------------------


def test_ps(client):
    client.generate("smollm2", "Hi", options={"num_predict": 1})
    running = {m.model: m for m in client.ps().models}
    assert MODEL in running
    model = running[MODEL]
    assert model.size > 50_000_000
    assert model.expires_at is not None
    assert model.details.quantization_level == "Q4_1"
    # Embeddings load a second instance of the same weights; ps still shows one model, with
    # the memory of both.
    client.embed("smollm2", "Hi")
    listed = [m for m in client.ps().models if m.model == MODEL]
    assert len(listed) == 1
    assert listed[0].size >= model.size


def test_empty_prompt_loads_and_keep_alive_zero_unloads(start_server):
    private = start_server(HEARTH_NUM_THREAD="1")  # see ONE_THREAD in test_server_safety.py
    client = ollama.Client(host=private.url, timeout=120)
    assert client.ps().models == []

    loaded = client.generate("smollm2", "")
    assert loaded.done and loaded.done_reason == "load" and loaded.response == ""
    assert loaded.load_duration > 0
    running = client.ps().models
    assert [m.model for m in running] == [MODEL]
    assert running[0].expires_at is not None and running[0].size > 0

    answer = client.generate("smollm2", "Hi", options={"num_predict": 3}, keep_alive=0)
    assert answer.done
    deadline = time.monotonic() + 2
    while client.ps().models and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.ps().models == []


# -- tokens and blobs (raw HTTP: the ollama package has no calls for them) ------------------------


def test_tokenize_detokenize_round_trip(server):
    text = "Hello world, the sky is blue."
    with httpx.Client(base_url=server.url, timeout=60) as http:
        tokens = http.post("/api/tokenize", json={"model": "smollm2", "content": text})
        assert tokens.status_code == 200, tokens.text
        ids = tokens.json()["tokens"]
        assert ids and all(isinstance(t, int) for t in ids)
        back = http.post("/api/detokenize", json={"model": "smollm2", "tokens": ids})
        assert back.status_code == 200, back.text
        assert back.json()["content"] == text
        bad = http.post("/api/detokenize", json={"model": "smollm2", "tokens": [10**9]})
        assert bad.status_code == 400 and "error" in bad.json()


def test_blob_upload(server):
    blobs = server.home / "models" / "blobs"
    data = os.urandom(4096)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    wrong = "sha256:" + hashlib.sha256(data + b"!").hexdigest()
    stored = blobs / digest.replace(":", "-")
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.head(f"/api/blobs/{digest}").status_code == 404

        refused = http.post(f"/api/blobs/{wrong}", content=data)
        assert refused.status_code == 400 and "error" in refused.json()
        assert not stored.exists() and not (blobs / wrong.replace(":", "-")).exists()
        assert not [p for p in blobs.iterdir() if p.name.startswith(".tmp-")]
        assert http.head(f"/api/blobs/{wrong}").status_code == 404

        assert http.post(f"/api/blobs/{digest}", content=data).status_code == 201
        assert http.head(f"/api/blobs/{digest}").status_code == 200
        assert stored.read_bytes() == data
        # Uploading it again is fine and changes nothing.
        assert http.post(f"/api/blobs/{digest}", content=data).status_code == 201

        for name in ("sha256:..", "sha256:abc", "md5:" + "0" * 64, "sha256:" + "G" * 64):
            response = http.post(f"/api/blobs/{name}", content=b"abc")
            assert response.status_code == 400, (name, response.text)
            assert http.head(f"/api/blobs/{name}").status_code == 400, name
        # httpx folds "sha256:../../x" to "/api/blobs/x" before sending; still refused.
        assert http.post("/api/blobs/sha256:../../x", content=b"abc").status_code == 400
    assert not (server.home / "models" / "x").exists()


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def tools_model(server):
    return create_tools_model(server.url)


def test_chat_with_tools_turns_a_call_into_tool_calls(server, client, tools_model):
    # tool_choice (a hearth extra) forces a call with a grammar, so the small model reliably
    # calls the tool; its <tool_call> text comes back as tool_calls, streamed as one chunk.
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    for stream in (False, True):
        body = {"model": tools_model, "messages": ask, "tools": [WEATHER_TOOL], "tool_choice": "required",
                "stream": stream, "options": {"temperature": 0, "num_predict": 60}}
        lines = httpx.post(server.url + "/api/chat", json=body, timeout=120).text.splitlines()
        chunks = [json.loads(line) for line in lines]
        with_calls = [c for c in chunks if c["message"].get("tool_calls")]
        assert len(with_calls) == 1, chunks
        call = with_calls[0]["message"]["tool_calls"][0]
        assert call["function"]["name"] == "get_weather" and call["function"]["index"] == 0
        assert isinstance(call["function"]["arguments"]["city"], str)
        assert call["id"]
        assert "".join(c["message"]["content"] for c in chunks).strip() == ""


def test_chat_with_tools_but_a_plain_answer_stays_text(client, tools_model):
    reply = client.chat(model=tools_model, tools=[WEATHER_TOOL],
                        messages=[{"role": "user", "content": "Say hello."}],
                        options={"temperature": 0, "num_predict": 12})
    assert reply.done
    assert reply.message.content or reply.message.tool_calls


def test_tools_on_a_model_without_a_place_for_them_are_refused(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="smollm2", tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 400 and "does not support tools" in error.value.error


def test_think_on_a_model_that_cannot_think_is_refused(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="smollm2", think=True, messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 400 and "does not support thinking" in error.value.error


def test_create_with_quantize_through_the_api(client, tmp_path):
    path = write_tiny_model(tmp_path / "f16.gguf", seed=3, file_type="F16")
    digest = client.create_blob(path)
    client.create(model="tiny-f16", files={"f16.gguf": digest})
    try:
        events = list(client.create(model="tiny-q8", from_="tiny-f16", quantize="q8_0", stream=True))
        assert events[-1].status == "success"
        assert any("quantized to Q8_0" in event.status for event in events)
        shown = client.show("tiny-q8")
        assert shown.details.quantization_level == "Q8_0"
        sizes = {m.model: m.size for m in client.list().models}
        assert sizes["tiny-q8:latest"] < sizes["tiny-f16:latest"]
        # Q8_0 still holds enough to quantize further; Q4_0 does not.
        client.create(model="tiny-q4", from_="tiny-q8", quantize="q4_0")
        assert client.show("tiny-q4").details.quantization_level == "Q4_0"
        with pytest.raises(ollama.ResponseError) as refused:
            client.create(model="tiny-q4-again", from_="tiny-q4", quantize="q4_1")
        assert refused.value.status_code == 400 and "allow-requantize" in str(refused.value)
        assert "tiny-q4-again:latest" not in model_names(client)
        assert client.generate("tiny-q8", "hello", options={"num_predict": 4}, keep_alive=0).done
    finally:
        for name in ("tiny-q4", "tiny-q8", "tiny-f16"):
            client.delete(name)
