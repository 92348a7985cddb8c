"""Codex's requests replayed through /v1/responses.

The bodies are written here with the structure of what Codex 0.171 sent to a recording proxy
(not copied from it): ``stream: true``, ``store: false``, ``include:
["reasoning.encrypted_content"]``, ``reasoning: {"summary": "auto"}``, ``tool_choice: "auto"``,
``parallel_tool_calls``, ``prompt_cache_key``, ``client_metadata``, no ``instructions`` and no
``max_output_tokens``, the system prompt as ``developer`` message items of ``input_text`` parts,
plain function tools with ``strict: false``, a ``namespace`` group and a hosted ``web_search``
tool; the second turn resends the whole history with ``function_call`` and
``function_call_output`` items and no ``previous_response_id``. The model is a tiny generated
GGUF with a 32k context and the Hermes tool template, so a first request of Codex's size fits,
and the checks are the event sequence Codex accepted, event by event.
"""

from __future__ import annotations

import json

import httpx
import pydantic
import pytest
from openai.types.responses import ResponseStreamEvent

from tests.conftest import HearthServer, hearth_env, run_hearth
from tests.tinymodel import write_family_model

pytestmark = pytest.mark.e2e

MODEL = "tiny-codex"
SDK_EVENT = pydantic.TypeAdapter(ResponseStreamEvent)
TEXT_EVENTS_HEAD = ["response.created", "response.in_progress", "response.output_item.added",
                    "response.content_part.added"]
TEXT_EVENTS_TAIL = ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                    "response.completed"]
CALL_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.function_call_arguments.delta", "response.function_call_arguments.done",
               "response.output_item.done", "response.completed"]


@pytest.fixture(scope="module")
def codex_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("codex")
    weights = write_family_model(root / "tiny-hermes.gguf", "hermes", context_length=32768, seed=4)
    # Codex sends no max_output_tokens and no temperature: the model's own parameters make the
    # answer repeatable (so streamed and whole answers compare) and end it. Its random weights
    # never choose the end token; greedy, this seed writes " other not a than are story I"
    # over and over, so the stop string ends the answer ("completed", as a real model's end
    # would) after a few words, and num_predict is only the backstop.
    modelfile = root / "Modelfile"
    modelfile.write_text(f"FROM {weights}\nPARAMETER num_predict 40\nPARAMETER temperature 0\n"
                         "PARAMETER stop story\n")
    home = root / "home"
    created = run_hearth(["create", MODEL, "-f", str(modelfile)], hearth_env(home))
    assert created.returncode == 0, created.stderr
    running = HearthServer(home, HEARTH_CONTEXT_LENGTH="32768")
    yield running
    running.stop()


def function(name: str, description: str, properties: dict, required: list[str]) -> dict:
    return {"type": "function", "name": name, "description": description, "strict": False,
            "parameters": {"type": "object", "properties": properties, "required": required,
                           "additionalProperties": False}}


TOOLS = [
    function("shell", "Runs a shell command and returns its output.",
             {"command": {"type": "array", "items": {"type": "string"}, "description": "argv to run"},
              "workdir": {"type": "string", "description": "the working folder"},
              "timeout_ms": {"type": "number", "description": "how long it may take"}}, ["command"]),
    function("update_plan", "Updates the task plan shown to the user.",
             {"explanation": {"type": "string"},
              "plan": {"type": "array", "items": {"type": "object", "properties": {
                  "step": {"type": "string"},
                  "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]}},
                  "required": ["step", "status"], "additionalProperties": False}}}, ["plan"]),
    function("view_image", "Attaches a local image to the conversation.",
             {"path": {"type": "string"}}, ["path"]),
    {"type": "namespace", "name": "mcp__notes", "description": "Tools of the notes MCP server.", "tools": [
        function("search_notes", "Finds notes that match a query.",
                 {"query": {"type": "string", "maxLength": 24}}, ["query"]),
        function("read_note", "Reads one note.", {"id": {"type": "string"}}, ["id"])]},
    {"type": "web_search"},
]


def developer_prompt() -> str:
    """A long agent system prompt (Codex's is about 20 KB), written for this test."""
    rules = [
        "You are a coding agent that works in the user's repository on their machine.",
        "Read the code before you change it, and keep each change small and easy to review.",
        "When you run a command, say what it is for; when it fails, read the error before you retry.",
        "Prefer the tools you are given over guessing; use the plan tool for work with several steps.",
        "Never remove files you did not create unless the user asks; never print secrets.",
        "When you are done, say what you changed, why, and how you checked it.",
    ]
    sections = []
    for n in range(60):
        sections.append(f"## Section {n}\n" + "\n".join(f"- {rule}" for rule in rules))
    return "\n\n".join(sections)


def message(role: str, text: str) -> dict:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


FIRST_TURN = [
    message("developer", developer_prompt()),
    message("developer", "<permissions instructions>Commands run in a sandbox; the network is off."
                         "</permissions instructions>"),
    message("user", "<environment_context><cwd>/home/user/project</cwd><shell>bash</shell>"
                    "</environment_context>"),
    message("user", "List the files in this project and tell me what it is."),
]
SECOND_TURN = [
    *FIRST_TURN,
    {"type": "function_call", "call_id": "call_shell_1", "name": "shell",
     "arguments": json.dumps({"command": ["ls", "-la"], "workdir": "/home/user/project"})},
    {"type": "function_call", "call_id": "call_notes_1", "name": "search_notes", "namespace": "mcp__notes",
     "arguments": json.dumps({"query": "project"})},
    {"type": "function_call_output", "call_id": "call_shell_1", "output": "README.md\nsrc\ntests\n"},
    {"type": "function_call_output", "call_id": "call_notes_1", "output": "no notes found"},
]


def codex_body(items: list[dict], **overrides) -> dict:
    body = {
        "model": MODEL, "input": items, "tools": TOOLS, "tool_choice": "auto", "parallel_tool_calls": True,
        "reasoning": {"summary": "auto"}, "store": False, "stream": True,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "5b1c9d0e-3a4f-4c1b-9e7d-2f8a6b0c4d11",
        "client_metadata": {"originator": "replay-test", "session": "s-1"},
        "text": {"verbosity": "medium"},
    }
    body.update(overrides)
    return body


def replay(server: HearthServer, body: dict) -> list[dict]:
    """POST the body as Codex does and read back every event: (name, data) pairs checked to agree."""
    with httpx.stream("POST", server.url + "/v1/responses", json=body, timeout=300,
                      headers={"accept": "text/event-stream", "authorization": "Bearer unused",
                               "originator": "replay-test"}) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        text = "".join(reply.iter_text())
    events = []
    for block in filter(None, text.split("\n\n")):
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), block
        event = json.loads(data[len("data: "):])
        assert event["type"] == name[len("event: "):]
        # and it is what the official SDK's types say that event is, checked strictly
        assert SDK_EVENT.validate_python(event).type == event["type"]
        events.append(event)
    return events


def check_lifecycle(events: list[dict]) -> dict:
    """What every stream must do for Codex: one response id throughout, sequence numbers rising
    from 0, and usage in the last event with every field Codex reads. Returns the final response."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert len(ids) == 1 and next(iter(ids)).startswith("resp_")
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    final = events[-1]["response"]
    usage = final["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert isinstance(usage["input_tokens_details"]["cached_tokens"], int)
    assert usage["output_tokens_details"]["reasoning_tokens"] == 0
    done_items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert final["output"] == done_items
    return final


def test_codex_first_turn_streams_the_exact_event_sequence(codex_server):
    events = replay(codex_server, codex_body(FIRST_TURN))
    kinds = [e["type"] for e in events]
    deltas = len(kinds) - len(TEXT_EVENTS_HEAD) - len(TEXT_EVENTS_TAIL)
    assert deltas >= 1, kinds
    assert kinds == TEXT_EVENTS_HEAD + ["response.output_text.delta"] * deltas + TEXT_EVENTS_TAIL
    final = check_lifecycle(events)
    assert final["status"] == "completed" and final["store"] is False
    # Codex's first request is large: it fits in the 32k context and would not in the default 4k.
    assert 8000 < final["usage"]["input_tokens"] < 32768
    added, part = events[2], events[3]
    assert added["output_index"] == 0 and added["item"]["type"] == "message"
    assert added["item"]["role"] == "assistant" and added["item"]["content"] == []
    assert part["part"] == {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert all(e["item_id"] == added["item"]["id"] for e in events[3:-2])
    assert events[-4]["text"] == text and events[-3]["part"]["text"] == text
    assert events[-2]["item"]["content"][0]["text"] == text and events[-2]["item"]["status"] == "completed"
    # The hosted web_search tool was left out, not refused; the namespace's tools were offered.
    echoed = [tool["type"] for tool in final["tools"]]
    assert echoed == ["function", "function", "function", "namespace"]

    # The same body without streaming: the same answer as one response object.
    whole = httpx.post(codex_server.url + "/v1/responses", json=codex_body(FIRST_TURN, stream=False),
                       timeout=300).json()
    assert whole["output"][0]["content"][0]["text"] == text
    assert whole["usage"]["input_tokens"] == final["usage"]["input_tokens"]
    # store: false keeps nothing.
    assert httpx.get(codex_server.url + f"/v1/responses/{final['id']}", timeout=30).status_code == 404


def test_codex_second_turn_resends_calls_and_their_outputs(codex_server):
    first = check_lifecycle(replay(codex_server, codex_body(FIRST_TURN)))
    events = replay(codex_server, codex_body(SECOND_TURN))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == TEXT_EVENTS_HEAD and kinds[-4:] == TEXT_EVENTS_TAIL
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    final = check_lifecycle(events)
    # The calls and their outputs are in the prompt: it grew by them.
    assert final["usage"]["input_tokens"] > first["usage"]["input_tokens"] + 20


def test_a_call_streams_as_codex_reads_it_and_keeps_its_namespace(codex_server):
    body = codex_body(FIRST_TURN, tool_choice={"type": "function", "name": "search_notes"})
    body["max_output_tokens"] = 200  # the model's num_predict (40) would cut the call short
    events = replay(codex_server, body)
    assert [e["type"] for e in events] == CALL_EVENTS
    final = check_lifecycle(events)
    added, delta, done, item_done = events[2:6]
    assert added["item"]["type"] == "function_call" and added["item"]["arguments"] == ""
    assert added["item"]["name"] == "search_notes" and added["item"]["namespace"] == "mcp__notes"
    assert added["item"]["call_id"] and added["item"]["status"] == "in_progress"
    arguments = json.loads(done["arguments"])
    assert delta["delta"] == done["arguments"] == item_done["item"]["arguments"]
    assert set(arguments) == {"query"} and len(arguments["query"]) <= 24
    assert item_done["item"]["call_id"] == added["item"]["call_id"] and item_done["item"]["status"] == "completed"
    assert final["output"][0]["namespace"] == "mcp__notes"


def test_the_tiny_model_really_has_the_context_codex_needs(codex_server):
    # Without HEARTH_CONTEXT_LENGTH the default 4k window refuses the same request, as OpenAI does.
    small = HearthServer(codex_server.home)
    try:
        reply = httpx.post(small.url + "/v1/responses", json=codex_body(FIRST_TURN, stream=True), timeout=300,
                           headers={"accept": "text/event-stream"})
    finally:
        small.stop()
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["code"] == "context_length_exceeded"
