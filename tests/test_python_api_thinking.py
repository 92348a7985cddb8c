"""The Python API with a reasoning model and tools: `hearth.chat(think=..., tools=..., tool_choice=...)`
and `hearth.generate(think=...)` hand back the reasoning and the tool calls parsed, apart from
the answer (in a child process, as a user's program would run them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import HearthServer, copy_home, hearth_env
from tests.family_templates import HERMES_TOOLS
from tests.thinking_model import GREEDY, NAME, QUESTION, create_thinking_model

pytestmark = pytest.mark.e2e

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture(scope="module")
def home(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HEARTH_HOME with smollm2, smollm2-think and smollm2-tools (made through a server)."""
    made = copy_home(smollm2_home, tmp_path_factory.mktemp("python-api-think") / "home")
    server = HearthServer(made)
    try:
        create_thinking_model(server.url)
        tools = httpx.post(f"{server.url}/api/create", timeout=120, json={
            "model": "smollm2-tools", "from": "smollm2", "template": HERMES_TOOLS, "stream": False})
        assert tools.status_code == 200, tools.text
    finally:
        server.stop()
    return made


def run_python(home: Path, code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], env=hearth_env(home),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_chat_and_generate_return_the_thinking_apart_from_the_answer(home):
    out = run_python(home, f"""
import hearth, json
messages = [{{'role': 'user', 'content': {QUESTION!r}}}]
c = hearth.chat({NAME!r}, messages, think=True, **{GREEDY!r})
chunks = list(hearth.chat({NAME!r}, messages, think=True, stream=True, **{GREEDY!r}))
g = hearth.generate({NAME!r}, {QUESTION!r}, think=True, **{GREEDY!r})
try:
    hearth.chat('smollm2', messages, think=True, num_predict=4)
    refused = None
except Exception as exc:
    refused = type(exc).__name__ + ': ' + str(exc)
print(json.dumps({{
    'thinking': c.message.thinking, 'content': c.message.content,
    'streamed_thinking': ''.join(x.message.thinking or '' for x in chunks),
    'streamed_content': ''.join(x.message.content for x in chunks), 'done': chunks[-1].done,
    'g_thinking': g.thinking, 'g_response': g.response, 'refused': refused,
}}))
""")
    assert out["thinking"] and out["thinking"].strip() and out["content"].strip(), out
    assert "<think>" not in out["content"] and "</think>" not in out["content"]
    assert "</think>" not in out["thinking"]
    # Joined or streamed, the same reply.
    assert (out["streamed_thinking"], out["streamed_content"]) == (out["thinking"], out["content"])
    assert out["done"] is True
    assert out["g_thinking"] and out["g_thinking"].strip() and "</think>" not in out["g_response"], out
    assert out["refused"] and out["refused"].startswith("InvalidRequest") and "does not support thinking" in out["refused"]


def test_chat_with_tools_returns_the_calls_parsed(home):
    out = run_python(home, f"""
import hearth, json
reply = hearth.chat('smollm2-tools', [{{'role': 'user', 'content': 'What is the weather in Paris?'}}],
                    tools=[{WEATHER!r}], tool_choice='required', temperature=0, num_predict=100)
calls = [{{'id': c.id, 'name': c.function.name, 'arguments': c.function.arguments}}
         for c in reply.message.tool_calls or []]
print(json.dumps({{'calls': calls, 'content': reply.message.content}}))
""")
    assert len(out["calls"]) >= 1, out
    call = out["calls"][0]
    assert call["name"] == "get_weather" and isinstance(call["arguments"].get("city"), str), out
    assert "<tool_call>" not in out["content"]
