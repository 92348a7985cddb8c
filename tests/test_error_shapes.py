"""Each API answers errors in its own clients' shape, chosen by the router that serves the path
(``server/error_shapes.py``), for route errors, validation errors, 404s and the guard alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.server.error_shapes import ErrorShape, ErrorShapes, ollama_error_body, openai_error_body


@pytest.fixture
def client(hearth_home: Path):
    from fastapi.testclient import TestClient

    from hearth.runtime import Runtime
    from hearth.server.app import create_app

    runtime = Runtime()
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:11435") as test_client:
        yield test_client
    runtime.close()


def is_ollama_error(response) -> bool:
    body = response.json()
    return set(body) == {"error"} and isinstance(body["error"], str) and body["error"]


def is_openai_error(response) -> bool:
    error = response.json()["error"]
    return isinstance(error, dict) and error["message"] and error["type"] and "param" in error


def test_ollama_api_errors(client) -> None:
    missing = client.post("/api/show", json={"model": "nothing-here"})
    assert missing.status_code == 404 and is_ollama_error(missing)
    invalid = client.post("/api/generate", json={"model": 5})
    assert invalid.status_code == 400 and is_ollama_error(invalid)
    assert is_ollama_error(client.get("/api/no-such-route"))


def test_openai_api_errors(client) -> None:
    missing = client.post("/v1/chat/completions", json={"model": "nothing-here",
                                                        "messages": [{"role": "user", "content": "hi"}]})
    assert missing.status_code == 404 and is_openai_error(missing)
    assert missing.json()["error"]["code"] == "model_not_found"
    invalid = client.post("/v1/chat/completions", json={"messages": "not a list"})
    assert invalid.status_code == 400 and is_openai_error(invalid)
    assert is_openai_error(client.get("/v1/no-such-route"))


def test_hearth_and_web_app_routes_answer_like_ollama(client) -> None:
    assert is_ollama_error(client.get("/api/hearth/license", params={"model": "nothing-here"}))
    assert is_ollama_error(client.get("/app/no-such-file.js"))


def test_the_guard_answers_in_the_shape_of_the_path(client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_API_KEY", "secret")
    assert is_openai_error(client.get("/v1/models"))
    assert is_ollama_error(client.get("/api/tags"))
    foreign = client.get("/v1/models", headers={"Host": "evil.example"})
    assert foreign.status_code == 403 and is_openai_error(foreign)


def test_a_new_api_under_v1_brings_its_own_shape() -> None:
    def anthropic_style(status: int, message: str, code: str | None = None, details: dict | None = None) -> dict:
        return {"type": "error", "error": {"type": "not_found_error", "message": message}}

    shapes = ErrorShapes([ErrorShape("/v1", openai_error_body), ErrorShape("/api", ollama_error_body),
                          ErrorShape("/v1/messages", anthropic_style)])
    assert shapes.body("/v1/messages", 404, "gone")["type"] == "error"
    assert shapes.body("/v1/messages/count_tokens", 404, "gone")["type"] == "error"
    assert shapes.body("/v1/messagesx", 404, "gone")["error"]["type"] == "not_found_error"
    assert "param" in shapes.body("/v1/chat/completions", 404, "gone")["error"]
    assert shapes.body("/elsewhere", 404, "gone") == {"error": "gone"}
