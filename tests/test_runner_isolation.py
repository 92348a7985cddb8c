"""Isolated runners and the prompt cache, through a real server."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time

import httpx
import pytest

from tests.tinymodel import write_tiny_model

pytestmark = pytest.mark.e2e


def ps(client: httpx.Client) -> dict[str, dict]:
    return {m["name"]: m for m in client.get("/api/ps").json()["models"]}


def stream_lines(client: httpx.Client, body: dict, into: list[dict], started: threading.Event) -> None:
    with client.stream("POST", "/api/generate", json=body) as response:
        for line in response.iter_lines():
            if line.strip():
                into.append(json.loads(line))
                started.set()


def upload(client: httpx.Client, path) -> str:
    """POST /api/blobs: create through the API reads no path on the server, only blobs."""
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert client.post(f"/api/blobs/{digest}", content=data).status_code == 201
    return digest


def test_a_killed_runner_fails_its_streams_only_and_the_model_comes_back(start_server, tmp_path):
    server = start_server()
    tiny = write_tiny_model(tmp_path / "tiny.gguf")
    with httpx.Client(base_url=server.url, timeout=120) as client:
        modelfile = f"FROM @{upload(client, tiny)}\n"
        created = client.post("/api/create", json={"model": "tiny", "modelfile": modelfile, "stream": False})
        assert created.status_code == 200, created.text
        for model in ("smollm2", "tiny"):
            assert client.post("/api/generate", json={"model": model, "prompt": ""}).status_code == 200
        runners = {name: m["runner_pid"] for name, m in ps(client).items()}
        assert set(runners) == {"smollm2:latest", "tiny:latest"} and None not in runners.values()
        assert len(set(runners.values())) == 2

        doomed: list[dict] = []
        survivor: list[dict] = []
        doomed_started, survivor_started = threading.Event(), threading.Event()
        threads = [
            threading.Thread(target=stream_lines, args=(client, {"model": "smollm2", "prompt": "Tell a long story",
                             "options": {"num_predict": 3000}}, doomed, doomed_started)),
            threading.Thread(target=stream_lines, args=(client, {"model": "tiny", "prompt": "the sky",
                             "options": {"num_predict": 150, "temperature": 0}}, survivor, survivor_started)),
        ]
        for thread in threads:
            thread.start()
        assert doomed_started.wait(60) and survivor_started.wait(60)
        os.kill(runners["smollm2:latest"], signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=120)

        assert "error" in doomed[-1] and "runner stopped unexpectedly" in doomed[-1]["error"]
        assert survivor[-1].get("done") is True and "error" not in survivor[-1]
        assert client.get("/api/version").status_code == 200
        assert server.process.poll() is None

        again = client.post("/api/generate", json={"model": "smollm2", "prompt": "Say hi", "stream": False,
                                                   "options": {"num_predict": 8}})
        assert again.status_code == 200 and again.json()["done"] is True
        after = ps(client)
        assert after["smollm2:latest"]["runner_pid"] != runners["smollm2:latest"]
        assert after["tiny:latest"]["runner_pid"] == runners["tiny:latest"]


def test_second_chat_turn_reuses_the_cache_and_matches_a_cold_run(start_server):
    server = start_server()
    options = {"temperature": 0, "num_predict": 40, "num_batch": 16}
    first_turn = [{"role": "user", "content": "Tell me about the ocean in two sentences."}]
    with httpx.Client(base_url=server.url, timeout=120) as client:
        def chat(messages):
            reply = client.post("/api/chat", json={"model": "smollm2", "messages": messages, "stream": False,
                                                    "options": options})
            assert reply.status_code == 200, reply.text
            return reply.json()

        first = chat(first_turn)
        second_turn = [*first_turn, first["message"], {"role": "user", "content": "And the sky?"}]
        warm = chat(second_turn)
        assert warm["prompt_cache_count"] > 0
        assert warm["prompt_eval_count"] < warm["prompt_eval_count"] + warm["prompt_cache_count"]
        assert client.post("/api/stop", json={"model": "smollm2"}).status_code == 200
        deadline = time.monotonic() + 10
        while ps(client) and time.monotonic() < deadline:
            time.sleep(0.1)
        cold = chat(second_turn)
        assert cold["prompt_cache_count"] == 0
        assert warm["message"]["content"] == cold["message"]["content"]


def test_a_killed_embedding_runner_leaves_the_server_up(start_server, tmp_path):
    """Embeddings run in a runner process too (engine/factory.py), so a native crash while
    embedding fails that request, not the server; the next embed loads the model again."""
    from tests.tinymodel import write_tiny_embedding_model

    server = start_server()
    embedder = write_tiny_embedding_model(tmp_path / "embed.gguf")
    with httpx.Client(base_url=server.url, timeout=120) as client:
        created = client.post("/api/create", json={"model": "embed", "files": {"embed.gguf": upload(client, embedder)},
                                                   "stream": False})
        assert created.status_code == 200, created.text
        first = client.post("/api/embed", json={"model": "embed", "input": ["the sky is blue"]})
        assert first.status_code == 200, first.text
        runner = ps(client)["embed:latest"]["runner_pid"]
        assert runner is not None and runner != server.process.pid
        os.kill(runner, signal.SIGSEGV)
        deadline = time.monotonic() + 30
        while ps(client).get("embed:latest", {}).get("runner_pid") == runner and time.monotonic() < deadline:
            # The dead runner is noticed at once; the scheduler drops it on the next request.
            if client.post("/api/embed", json={"model": "embed", "input": "x"}).status_code == 200:
                break
            time.sleep(0.1)
        assert server.process.poll() is None
        assert client.get("/api/version").status_code == 200
        again = client.post("/api/embed", json={"model": "embed", "input": ["the sky is blue"]})
        assert again.status_code == 200, again.text
        assert again.json()["embeddings"][0] == first.json()["embeddings"][0]
        assert ps(client)["embed:latest"]["runner_pid"] != runner
