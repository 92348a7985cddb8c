"""What a shared server meets, through a real `hearth serve` with the default model: requests
that once wedged a model or answered 500, clients that leave non-streamed requests, chats
longer than the context, Ollama options hearth does not use, and unloading with keep_alive 0.
Each test reproduces a finding of the issue "Serve untrusted traffic safely"."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.test_server_safety import ENDLESS, assert_error, generate_body, wait_until_idle

pytestmark = pytest.mark.e2e


def post(server, path: str, body: dict, timeout: float = 120) -> httpx.Response:
    # json.dumps escapes a lone surrogate as \\ud800, as a client in any language may send it
    # (httpx's own encoder would refuse to write it).
    return httpx.post(server.url + path, content=json.dumps(body).encode(), timeout=timeout,
                      headers={"content-type": "application/json"})


def runner_children(server) -> list[int]:
    """The server's runner processes (one per loaded instance of a model)."""
    pids = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        pids += [int(pid) for pid in (task / "children").read_text().split()]
    return [pid for pid in pids if b"hearth.engine.runner" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def test_a_template_that_renders_nothing_fails_alone(server) -> None:
    """Finding 11: zero prompt tokens killed the decoder thread and hung the model forever."""
    empty = post(server, "/api/generate", {"model": "smollm2", "prompt": "hi", "template": "{% raw %}",
                                           "stream": False})
    assert "prompt is empty" in assert_error(empty, 400)
    after = post(server, "/api/generate", generate_body(4, stream=False))
    assert after.status_code == 200 and after.json()["eval_count"] == 4


@pytest.mark.parametrize("keep_alive", ["1e12h", 1e308, 2**63])
def test_huge_keep_alive_means_forever_and_ps_still_answers(server, keep_alive) -> None:
    """Finding 12: these overflowed datetime.fromtimestamp in /api/ps for as long as loaded."""
    assert post(server, "/api/generate", generate_body(2, stream=False, keep_alive=keep_alive)).status_code == 200
    ps = httpx.get(server.url + "/api/ps", timeout=30)
    assert ps.status_code == 200, ps.text
    assert ps.json()["models"][0]["expires_at"].startswith("2318")  # Ollama's "never"
    post(server, "/api/generate", {"model": "smollm2", "keep_alive": "5m"})


def test_nan_keep_alive_is_a_clear_error(server) -> None:
    assert "not a number" in assert_error(post(server, "/api/generate", generate_body(2, keep_alive="NaN")), 400)


@pytest.mark.parametrize(("path", "body"), [
    ("/api/generate", {"model": "smollm2", "prompt": "bad \ud800 text"}),
    ("/api/generate", {"model": "smollm2\ud800"}),
    ("/api/chat", {"model": "smollm2", "messages": [{"role": "user", "content": "\udfff"}]}),
    ("/api/show", {"model": "\ud800"}),
    ("/api/embed", {"model": "smollm2", "input": ["ok", "\ud800"]}),
    ("/api/pull", {"model": "x\ud800"}),
    ("/api/create", {"model": "a\ud800", "from": "smollm2"}),
    ("/v1/chat/completions", {"model": "smollm2", "messages": [{"role": "user", "content": "\ud800"}]}),
    ("/v1/embeddings", {"model": "smollm2", "input": "\ud800"}),
])
def test_lone_surrogates_are_refused_at_the_door(server, path, body) -> None:
    """Finding 13: a lone surrogate answered 500 UnicodeEncodeError on 16 routes."""
    response = post(server, path, body)
    assert response.status_code == 400, response.text
    assert "surrogate" in response.text
    # A correct surrogate pair (an emoji) is fine.
    emoji = post(server, "/api/generate", generate_body(2, stream=False, prompt="\U0001F600"))
    assert emoji.status_code == 200, emoji.text


@pytest.mark.parametrize("texts", [[""], ["hi", ""]])
def test_empty_strings_in_an_embed_list_are_a_400(server, texts) -> None:
    """Finding 14: llama_decode returned -1 and the route answered 500."""
    assert "empty string" in assert_error(post(server, "/api/embed", {"model": "smollm2", "input": texts}), 400)


def test_keep_alive_zero_unloads_every_instance(server) -> None:
    """Finding 18: only the instance whose settings matched the empty request was unloaded."""
    assert post(server, "/api/generate", generate_body(2, stream=False)).status_code == 200
    assert post(server, "/api/generate", generate_body(2, stream=False, options={"num_ctx": 512})).status_code == 200
    assert post(server, "/api/embed", {"model": "smollm2", "input": "hello"}).status_code == 200
    # At least chat, chat with num_ctx 512 and embeddings (earlier tests may have left more).
    assert len(runner_children(server)) >= 3
    (listed,) = httpx.get(server.url + "/api/ps", timeout=30).json()["models"]  # one line per model
    assert sorted(listed["runner_pids"]) == sorted(runner_children(server))
    unload = post(server, "/api/generate", {"model": "smollm2", "keep_alive": 0})
    assert unload.status_code == 200 and unload.json()["done_reason"] == "unload"
    assert httpx.get(server.url + "/api/ps", timeout=30).json()["models"] == []
    deadline = time.monotonic() + 30
    while runner_children(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runner_children(server) == []


def test_a_client_that_leaves_a_non_streamed_request_frees_the_model(server) -> None:
    """Finding 4: a non-streamed request kept generating after its client had gone."""
    with pytest.raises(httpx.ReadTimeout):
        post(server, "/api/generate", generate_body(2000, stream=False), timeout=3)
    with pytest.raises(httpx.ReadTimeout):
        post(server, "/v1/completions", {"model": "smollm2", "prompt": ENDLESS["prompt"], "max_tokens": 2000,
                                          "temperature": 0}, timeout=3)
    # 2000 tokens take 15 s or more here; the model is free long before.
    wait_until_idle(server.url, timeout=10)


def test_a_chat_longer_than_the_context_keeps_working(server) -> None:
    """Finding 6: a chat over num_ctx failed, and every later turn with it."""
    system = {"role": "system", "content": "You are a terse assistant."}
    history: list[dict] = []
    dropped = []
    for turn in range(30):
        history.append({"role": "user", "content": f"Question {turn}: " + "tell me about the sea. " * 6})
        response = post(server, "/api/chat", {"model": "smollm2", "messages": [system, *history], "stream": False,
                                              "options": {"num_ctx": 512, "num_predict": 24, "temperature": 0}})
        assert response.status_code == 200, (turn, response.text)
        body = response.json()
        history.append({"role": "assistant", "content": body["message"]["content"]})
        dropped.append(body.get("dropped_messages", 0))
    assert dropped[0] == 0 and dropped[-1] > 0
    # The prompt always fits, with room left for the answer.
    assert body["prompt_eval_count"] + body.get("prompt_cache_count", 0) <= 512 - 24

    strict = post(server, "/api/chat", {"model": "smollm2", "messages": [system, *history], "stream": False,
                                        "truncate": False, "options": {"num_ctx": 512}})
    assert strict.status_code == 400
    error = strict.json()
    assert error["context_length"] == 512 and error["prompt_tokens"] > 512

    openai = post(server, "/v1/chat/completions", {"model": "smollm2", "messages": [system, *history],
                                                   "max_tokens": 8, "num_ctx": 512})
    assert openai.status_code == 200, openai.text
    assert openai.json()["usage"]["dropped_messages"] > 0


def test_a_prompt_over_the_context_is_a_typed_error(server) -> None:
    long_prompt = "the sea and the sky " * 400
    response = post(server, "/v1/completions", {"model": "smollm2", "prompt": long_prompt, "num_ctx": 512})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded" and error["context_length"] == 512


def test_ollama_options_hearth_does_not_use_are_ignored(server) -> None:
    """Finding 9: mirostat, tfs_z, use_mlock... got a 400 where Ollama warns and ignores."""
    options = {"mirostat": 0, "tfs_z": 1.0, "use_mlock": False, "main_gpu": 0, "num_gqa": 8,
               "penalize_newline": True, "num_predict": 2}
    assert post(server, "/api/generate", generate_body(2, stream=False, options=options)).status_code == 200
    assert "temprature" in assert_error(post(server, "/api/generate", generate_body(2, options={"temprature": 1})), 400)
    too_many = {"num_predict": 2, "stop": [f"s{i}" for i in range(33)]}
    assert "stop strings" in assert_error(post(server, "/api/generate", generate_body(2, options=too_many)), 400)


def test_the_random_seed_is_reported_and_reproduces_the_answer(server) -> None:
    body = {"model": "smollm2", "prompt": "Write a word:", "stream": False,
            "options": {"temperature": 1.5, "num_predict": 12}}
    first = post(server, "/api/generate", body).json()
    assert isinstance(first["seed"], int)
    again = post(server, "/api/generate", {**body, "options": {**body["options"], "seed": first["seed"]}}).json()
    assert again["response"] == first["response"] and again["seed"] == first["seed"]


def test_the_context_field_is_read_not_ignored(server) -> None:
    """Finding 9: `context` was accepted and silently unused."""
    tokens = httpx.post(server.url + "/api/tokenize", json={"model": "smollm2", "content": "the sea and the sky"},
                        timeout=60).json()["tokens"]
    plain = post(server, "/api/generate", generate_body(2, stream=False, raw=False, prompt="hi")).json()
    with_context = post(server, "/api/generate", generate_body(2, stream=False, raw=False, prompt="hi",
                                                               context=tokens)).json()
    total = lambda body: body["prompt_eval_count"] + body.get("prompt_cache_count", 0)  # noqa: E731
    assert total(with_context) == total(plain) + len(tokens)
    assert "out of range" in assert_error(post(server, "/api/generate", generate_body(
        2, stream=False, context=[10**9])), 400)
