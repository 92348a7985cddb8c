"""Claude Code's requests, replayed: bodies with the structure of what Claude Code 2.1 sends to
``POST /v1/messages?beta=true`` (written here, not copied from it), against a tiny generated
model with a 32k context and the Hermes tool template, so that a prompt of that size fits.

What the recording showed, and each body below carries: ``anthropic-version`` and a long
``anthropic-beta`` header, ``Authorization: Bearer``; ``max_tokens`` 32000, ``thinking``
adaptive, ``output_config``, ``context_management``, ``metadata.user_id``; ``system`` as three
text blocks with ``cache_control``; user text blocks with ``cache_control``; a ``system``-role
message as the last entry of ``messages``; two dozen tools whose ``input_schema`` is JSON Schema
2020-12 (``$schema``, ``anyOf``, ``const``, ``propertyNames``, ``pattern``, ``format``,
``exclusiveMinimum``, ``maxItems``, ``default``); no ``temperature``, no ``tool_choice``. Its
second turn sends the assistant's ``tool_use`` back with a ``tool_result`` whose content is a
string, with ``is_error``. The model's words are random (the weights are); what is checked is
that everything is accepted and every event a client needs arrives, in order.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import HearthServer
from tests.test_anthropic_api import anthropic_error, check_event_order, raw_events
from tests.tinymodel import write_family_model

pytestmark = pytest.mark.e2e

KEY = "replay-key"
MODEL = "tiny-agent"
CONTEXT = 32768
HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
                      "prompt-caching-scope-2026-01-05,effort-2025-11-24",
    "x-app": "cli",
    "User-Agent": "replay/1.0 (external, cli)",
}
SCHEMA = "https://json-schema.org/draft/2020-12/schema"
# A few stop strings the tiny model's random words soon contain, so a 32000-token budget is
# accepted without being spent.
SOON = ["e", "a", "o", "t", " "]


@pytest.fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    root = tmp_path_factory.mktemp("replay")
    running = HearthServer(root / "home", HEARTH_API_KEY=KEY)
    try:
        model = write_family_model(root / "agent.gguf", "hermes", context_length=CONTEXT, seed=3)
        data = model.read_bytes()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        auth = {"Authorization": f"Bearer {KEY}"}
        uploaded = httpx.post(f"{running.url}/api/blobs/{digest}", content=data, headers=auth, timeout=60)
        assert uploaded.status_code == 201, uploaded.text
        created = httpx.post(f"{running.url}/api/create", headers=auth, timeout=120, json={
            "model": MODEL, "files": {"agent.gguf": digest}, "parameters": {"num_ctx": CONTEXT},
            "stream": False})
        assert created.status_code == 200, created.text
        yield running
    finally:
        running.stop()


# -- the bodies ------------------------------------------------------------------------------

GUIDANCE = [
    "You are a coding agent working in the user's repository from a terminal.",
    "Read the code before you change it, and change only what the task needs.",
    "Prefer the dedicated file tools over shell commands for reading, searching and editing.",
    "Keep answers short: the user reads them in a terminal, so plain text beats decoration.",
    "When a command may change the system or delete data, say what it does before running it.",
    "Run the project's own tests after a change, and report what passed and what failed.",
    "Never invent file paths, function names or results; look them up with the tools first.",
    "Track multi-step work with the task list tool, and mark each step done as you finish it.",
]


def guidance(sections: int) -> str:
    lines = []
    for section in range(sections):
        lines.append(f"# Section {section + 1}")
        lines += [f"- {line} (rule {section + 1}.{number + 1})" for number, line in enumerate(GUIDANCE)]
    return "\n".join(lines)


def object_schema(properties: dict, required: list[str]) -> dict:
    return {"$schema": SCHEMA, "type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


def tools() -> list[dict]:
    path = {"type": "string", "description": "An absolute path inside the working directory."}
    made = [
        {"name": "run_shell", "description": "Runs a shell command and returns what it printed. " * 6,
         "input_schema": object_schema({
             "command": {"type": "string", "description": "The command line."},
             "timeout_ms": {"type": "number", "exclusiveMinimum": 0, "maximum": 600000,
                            "description": "How long it may run."},
             "background": {"type": "boolean", "default": False},
             "reason": {"type": "string", "description": "Five to ten words on why."}},
             ["command"])},
        {"name": "find_files", "description": "Lists files whose path matches a glob pattern. " * 5,
         "input_schema": object_schema({"pattern": {"type": "string"}, "path": path}, ["pattern"])},
        {"name": "search_text", "description": "Searches file contents with a regular expression. " * 8,
         "input_schema": object_schema({
             "pattern": {"type": "string"},
             "path": path,
             "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"],
                             "default": "files_with_matches"},
             "context_lines": {"type": "integer", "minimum": 0, "maximum": 20},
             "head_limit": {"type": "integer", "exclusiveMinimum": 0},
             "case_insensitive": {"type": "boolean"}},
             ["pattern"])},
        {"name": "read_file", "description": "Reads a text file, with line numbers. " * 6,
         "input_schema": object_schema({"file_path": path,
                                        "offset": {"type": "integer", "minimum": 0},
                                        "limit": {"type": "integer", "exclusiveMinimum": 0}}, ["file_path"])},
        {"name": "edit_file", "description": "Replaces an exact string in a file by another. " * 7,
         "input_schema": object_schema({"file_path": path, "old_string": {"type": "string"},
                                        "new_string": {"type": "string"},
                                        "replace_all": {"type": "boolean", "default": False}},
                                       ["file_path", "old_string", "new_string"])},
        {"name": "write_file", "description": "Writes a whole file, replacing what was there. " * 4,
         "input_schema": object_schema({"file_path": path, "content": {"type": "string"}},
                                       ["file_path", "content"])},
        {"name": "fetch_page", "description": "Fetches a web page and answers a question about it. " * 5,
         "input_schema": object_schema({"url": {"type": "string", "format": "uri"},
                                        "prompt": {"type": "string"}}, ["url", "prompt"])},
        {"name": "update_tasks", "description": "Replaces the session's task list. " * 9,
         "input_schema": object_schema({"tasks": {"type": "array", "maxItems": 50, "items": {
             "type": "object", "additionalProperties": False, "required": ["content", "status"],
             "properties": {"content": {"type": "string", "minLength": 1},
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                            "active_form": {"type": "string"}}}}}, ["tasks"])},
        {"name": "ask_user", "description": "Asks the user questions with choices to pick from. " * 5,
         "input_schema": object_schema({
             "questions": {"type": "array", "minItems": 1, "maxItems": 4, "items": {
                 "type": "object", "required": ["question", "options"], "properties": {
                     "question": {"type": "string"},
                     "options": {"type": "array", "maxItems": 4, "items": {"type": "string"}}}}},
             "answers": {"type": "object", "propertyNames": {"type": "string", "pattern": "^q[0-9]+$"},
                         "additionalProperties": {"type": "string"}}},
             ["questions"])},
        {"name": "delegate", "description": "Starts a helper agent on a self-contained task. " * 10,
         "input_schema": object_schema({
             "description": {"type": "string"}, "prompt": {"type": "string"},
             "agent": {"anyOf": [{"type": "string", "const": "general"}, {"type": "string", "const": "explore"},
                                 {"type": "string", "const": "plan"}]},
             "model": {"type": "string", "enum": ["small", "large"]}},
             ["description", "prompt"])},
        {"name": "notebook_edit", "description": "Replaces, inserts or deletes a notebook cell. " * 4,
         "input_schema": object_schema({
             "notebook_path": path, "cell_id": {"type": "string"}, "new_source": {"type": "string"},
             "cell_type": {"type": "string", "enum": ["code", "markdown"]},
             "edit_mode": {"anyOf": [{"const": "replace"}, {"const": "insert"}, {"const": "delete"}],
                           "default": "replace"}},
             ["notebook_path", "new_source"])},
        {"name": "shell_output", "description": "Reads new output of a background command. " * 3,
         "input_schema": object_schema({"shell_id": {"type": "string", "pattern": "^[a-z0-9]+$"},
                                        "filter": {"type": "string"}}, ["shell_id"])},
        {"name": "stop_shell", "description": "Stops a background command. " * 3,
         "input_schema": object_schema({"shell_id": {"type": "string"}}, ["shell_id"])},
        {"name": "web_search", "description": "Searches the web and returns result titles and links. " * 5,
         "input_schema": object_schema({
             "query": {"type": "string", "minLength": 2},
             "allowed_domains": {"type": "array", "items": {"type": "string", "format": "hostname"}},
             "blocked_domains": {"type": "array", "items": {"type": "string"}}}, ["query"])},
        {"name": "exit_plan_mode", "description": "Presents a plan and asks to start working on it. " * 4,
         "input_schema": object_schema({"plan": {"type": "string"}}, ["plan"])},
        {"name": "run_skill", "description": "Runs one of the installed skills by name. " * 4,
         "input_schema": object_schema({"skill": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
                                        "args": {"type": "string"}}, ["skill"])},
    ]
    # Servers' tools (MCP) make up the rest, each with a small schema of its own.
    for number in range(24 - len(made)):
        made.append({"name": f"mcp__docs__tool_{number}",
                     "description": f"Documentation server tool {number}: looks up a library's pages. " * 3,
                     "input_schema": object_schema({
                         "library": {"type": "string"},
                         "topic": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                         "tokens": {"type": "integer", "exclusiveMinimum": 0, "default": 5000}},
                         ["library"])})
    return made


def first_request() -> dict:
    cached = {"type": "ephemeral"}
    return {
        "model": MODEL,
        "max_tokens": 32000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": "user_0123abcd_account__session_4567ef"},
        "system": [
            {"type": "text", "text": "x-billing-header: replay", "cache_control": cached},
            {"type": "text", "text": "You are an agent for software work, run from the command line.",
             "cache_control": cached},
            {"type": "text", "text": guidance(12), "cache_control": cached},
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<reminder>\nThe working directory is /home/user/project.\n"
                                         "Today's date is in the environment.\n</reminder>"},
                {"type": "text", "text": "list the files here and tell me what this project does",
                 "cache_control": cached},
            ]},
            {"role": "system", "content": "The user is on Linux; the shell is bash."},
        ],
        "tools": tools(),
    }


def second_request() -> dict:
    body = first_request()
    trailing = body["messages"].pop()
    body["messages"] += [
        {"role": "assistant", "content": [
            {"type": "text", "text": "I will list the files first."},
            {"type": "tool_use", "id": "toolu_01replay", "name": "run_shell",
             "input": {"command": "ls -la", "reason": "See what the project holds"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01replay", "is_error": True,
             "content": "ls: cannot open directory '.': Permission denied"},
        ]},
        trailing,
    ]
    return body


def short(body: dict, max_tokens: int = 12) -> dict:
    """The same request with a small answer budget: a random model rambles to the end otherwise."""
    return {**copy.deepcopy(body), "max_tokens": max_tokens}


# -- the replays -----------------------------------------------------------------------------


def test_the_first_probe_and_the_key(agent_server):
    assert httpx.head(agent_server.url + "/").status_code == 200
    unkeyed = httpx.post(agent_server.url + "/v1/messages?beta=true", json=short(first_request()), timeout=60)
    anthropic_error(unkeyed, 401, "authentication_error")


def test_the_request_fits_and_is_counted(agent_server):
    counted = httpx.post(agent_server.url + "/v1/messages/count_tokens?beta=true", json=first_request(),
                         headers=HEADERS, timeout=120)
    assert counted.status_code == 200, counted.text
    tokens = counted.json()["input_tokens"]
    # The tool definitions dominate, as in the recording, and all of it fits the window.
    without_tools = {key: value for key, value in first_request().items() if key != "tools"}
    bare = httpx.post(agent_server.url + "/v1/messages/count_tokens?beta=true", json=without_tools,
                      headers=HEADERS, timeout=120).json()["input_tokens"]
    assert 8000 < tokens < CONTEXT and tokens > 2 * bare


def replayed(url: str, body: dict) -> list[tuple[str, dict]]:
    events = raw_events(url, body, path="/v1/messages?beta=true", **HEADERS)
    check_event_order(events)
    return events


@pytest.mark.parametrize("request_of", [first_request, second_request], ids=["first", "second"])
def test_streamed_replay_gets_every_event_in_order(agent_server, request_of):
    body = short(request_of())
    events = replayed(agent_server.url, body)
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_") and start["model"] == MODEL and start["role"] == "assistant"
    counted = httpx.post(agent_server.url + "/v1/messages/count_tokens?beta=true", json=body, headers=HEADERS,
                         timeout=120).json()["input_tokens"]
    assert start["usage"]["input_tokens"] == counted
    end = events[-2][1]
    assert end["delta"]["stop_reason"] in ("end_turn", "max_tokens", "tool_use")
    usage = end["usage"]
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == counted
    assert 0 < usage["output_tokens"] <= 12 and usage["cache_creation_input_tokens"] == 0
    for name, data in events:
        if name == "content_block_start":
            assert data["content_block"]["type"] in ("text", "thinking", "tool_use")


def test_whole_replay_answers_one_message(agent_server):
    body = short(second_request())
    body.pop("stream")
    reply = httpx.post(agent_server.url + "/v1/messages?beta=true", json=body, headers=HEADERS, timeout=300)
    assert reply.status_code == 200, reply.text
    message = reply.json()
    assert message["type"] == "message" and message["id"].startswith("msg_") and message["model"] == MODEL
    assert message["stop_reason"] in ("end_turn", "max_tokens", "tool_use")
    assert {block["type"] for block in message["content"]} <= {"text", "thinking", "tool_use"}
    assert message["usage"]["output_tokens"] <= 12


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_the_recorded_budget_of_32000_tokens_is_accepted(agent_server, streamed):
    body = {**first_request(), "stop_sequences": SOON, "stream": streamed}
    if streamed:
        events = replayed(agent_server.url, body)
        stop = events[-2][1]["delta"]
        output_tokens = events[-2][1]["usage"]["output_tokens"]
    else:
        reply = httpx.post(agent_server.url + "/v1/messages?beta=true", json=body, headers=HEADERS, timeout=300)
        assert reply.status_code == 200, reply.text
        stop, output_tokens = reply.json(), reply.json()["usage"]["output_tokens"]
    # The budget is not the limit here: a stop string or the model's own end of turn is.
    assert stop["stop_reason"] in ("stop_sequence", "end_turn", "tool_use")
    if stop["stop_reason"] == "stop_sequence":
        assert stop["stop_sequence"] in SOON
    assert output_tokens < 32000


def test_a_request_over_the_window_is_anthropics_prompt_too_long(agent_server):
    body = first_request()
    body["messages"][0]["content"].append({"type": "text", "text": "more context " * 9000})
    for streamed in (False, True):
        reply = httpx.post(agent_server.url + "/v1/messages?beta=true", json={**body, "stream": streamed},
                           headers=HEADERS, timeout=300)
        message = anthropic_error(reply, 400, "invalid_request_error")
        assert message.startswith("prompt is too long: ") and message.endswith(f" tokens > {CONTEXT} maximum")
