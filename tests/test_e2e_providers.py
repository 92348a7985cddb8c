"""Remote providers end to end: the real `hearth` command and a `hearth serve` gateway, against
real OpenAI-compatible servers declared as custom providers: llama-cpp-python's own server and
a second `hearth serve` (which wants an API key), both with the default model, plus a scripted
provider that fails on purpose (401, 429 then 200, dying mid-stream)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import httpx
import ollama
import openai
import pytest

from hearth.store import ModelStore
from tests.conftest import HearthServer, copy_home, hearth_env, run_hearth
from tests.derived_models import create_tools_model
from tests.fake_provider import WORDS, FakeProvider

pytestmark = pytest.mark.e2e

KEY = "sk-peer-key-0123456789-NEVER-SHOWN"
WRONG_KEY = "sk-wrong-key-9876543210-ALSO-HIDDEN"
SHORT = ["-o", "temperature=0", "-o", "seed=7", "-o", "num_predict=12"]
ANNOUNCED = "this prompt leaves your machine"
SCHEMA = {"type": "object", "properties": {"color": {"type": "string", "maxLength": 12}}, "required": ["color"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 12}}, "required": ["city"]}}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's OpenAI-compatible server on the default model's GGUF blob."""
    import os

    gguf = ModelStore(smollm2_home).get("smollm2").model_path
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url + "/v1/models", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("llama_cpp.server did not start") from None
            time.sleep(0.2)
    yield url + "/v1"
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def peer(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """Another hearth server, asking for an API key, as a provider."""
    running = HearthServer(copy_home(smollm2_home, tmp_path_factory.mktemp("peer") / "home"), HEARTH_API_KEY=KEY)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fake():
    with FakeProvider(delay=0.5) as provider:
        yield provider


@pytest.fixture(scope="module")
def home(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory, llama_server: str, peer: HearthServer,
         fake: FakeProvider) -> Path:
    """The user's HEARTH_HOME: the default model, and the three servers as providers."""
    home = copy_home(smollm2_home, tmp_path_factory.mktemp("client") / "home")
    (home / "providers.toml").write_text(f"""
[providers.llamacpp]
base_url = "{llama_server}"
structured_output = "json_object"

[providers.peer]
base_url = "{peer.url}/v1"
api_key_env = "PEER_KEY"

[providers.fake]
base_url = "{fake.base_url}"
api_key_env = "FAKE_KEY"
max_concurrency = 1
timeout = 5
""")
    return home


@pytest.fixture(scope="module")
def gateway(home: Path):
    running = HearthServer(home, PEER_KEY=KEY, FAKE_KEY=KEY, HEARTH_PROVIDER_RETRIES="1")
    yield running
    running.stop()


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = hearth_env(home, **{"PEER_KEY": KEY, "FAKE_KEY": KEY, **extra})
    # The presets' keys of whoever runs the tests must not make hearth call the real services.
    return {k: v for k, v in env.items() if not (k.endswith("_API_KEY") and k not in extra)}


def no_key_in(*texts: str) -> None:
    for text in texts:
        assert KEY not in text and WRONG_KEY not in text


# -- the CLI ---------------------------------------------------------------------------------


def test_run_on_llama_cpp_server_streams_and_is_announced(home: Path) -> None:
    result = run_hearth(["run", "llamacpp/smollm2", "Name a colour.", *SHORT], cli_env(home))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert f"→ llamacpp: {ANNOUNCED}" in result.stderr


@pytest.mark.parametrize("model", ["peer/smollm2:latest", "llamacpp/smollm2"])
def test_json_schema_output_through_providers(home: Path, model: str) -> None:
    args = ["run", model, "Give a colour as JSON.", "--format", json.dumps(SCHEMA),
            "-o", "temperature=0", "-o", "num_predict=48"]
    result = run_hearth(args, cli_env(home))
    assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout)["color"], str)
    no_key_in(result.stdout, result.stderr)


def test_list_remote_and_show(home: Path, llama_server: str) -> None:
    listed = run_hearth(["list", "--remote", "llamacpp"], cli_env(home))
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("llamacpp/smollm2"))
    assert "open" in row.split()  # the catalog knows smollm2's weights
    shown = run_hearth(["show", "peer/smollm2:latest"], cli_env(home))
    assert shown.returncode == 0, shown.stderr
    for expected in ("provider            peer", "weights             open", "Apache-2.0", "leave your machine"):
        assert expected in shown.stdout, shown.stdout
    everything = run_hearth(["list", "--remote"], cli_env(home))
    assert everything.returncode == 0, everything.stderr
    assert "peer/smollm2:latest" in everything.stdout and "fake/gpt-4o" in everything.stdout
    assert "no API key set: groq (GROQ_API_KEY)" in everything.stderr
    no_key_in(listed.stdout, shown.stdout, everything.stdout, everything.stderr)


def test_bad_key_is_one_clear_line(home: Path) -> None:
    result = run_hearth(["run", "peer/smollm2:latest", "Hi", *SHORT], hearth_env(home, PEER_KEY=WRONG_KEY))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("Error: peer refused the API key (HTTP 401)")
    assert "PEER_KEY" in result.stderr
    no_key_in(result.stdout, result.stderr)


def test_429_then_200_is_waited_out(home: Path, fake: FakeProvider) -> None:
    before = len(fake.posts())
    fake.script("429")
    started = time.monotonic()
    result = run_hearth(["run", "fake/fake-model", "Hi"], cli_env(home))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "".join(WORDS)
    assert time.monotonic() - started >= 1 and len(fake.posts()) - before == 2


def test_a_provider_dying_mid_stream_keeps_the_text_and_says_so(home: Path, fake: FakeProvider) -> None:
    fake.script("die")
    result = run_hearth(["run", "fake/fake-model", "Hi"], cli_env(home))
    assert result.returncode == 1
    assert result.stdout.startswith("".join(WORDS[:2]))
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: fake closed the connection before the answer was complete")


def test_offline_refuses_remote_calls_and_sends_nothing(home: Path, fake: FakeProvider) -> None:
    before = len(fake.requests)
    env = cli_env(home, HEARTH_OFFLINE="1")
    for args in (["run", "fake/fake-model", "Hi"], ["list", "--remote", "fake"]):
        result = run_hearth(args, env)
        assert result.returncode == 1
        assert "HEARTH_OFFLINE=1" in result.stderr and ANNOUNCED not in result.stderr
    assert len(fake.requests) == before


def test_fallback_only_when_asked(home: Path, fake: FakeProvider) -> None:
    before = len(fake.posts())
    plain = run_hearth(["run", "nothing-here", "Hi"], cli_env(home))
    assert plain.returncode == 1 and "not found" in plain.stderr
    assert len(fake.posts()) == before and ANNOUNCED not in plain.stderr
    with_fallback = run_hearth(["run", "nothing-here", "Hi", "--fallback", "fake/fake-model"], cli_env(home))
    assert with_fallback.returncode == 0, with_fallback.stderr
    assert with_fallback.stdout.strip() == "".join(WORDS)
    assert "falling back to fake/fake-model" in with_fallback.stderr
    assert f"→ fake: {ANNOUNCED}" in with_fallback.stderr
    bad = run_hearth(["run", "smollm2", "Hi", "--fallback", "smollm2"], cli_env(home))
    assert bad.returncode == 1 and "--fallback must name a remote model" in bad.stderr


def test_compare_local_and_remote(home: Path) -> None:
    args = ["compare", "smollm2", "llamacpp/smollm2", "The sky is", *SHORT]
    result = run_hearth([*args, "--json"], cli_env(home))
    assert result.returncode == 0, result.stderr
    local, remote = json.loads(result.stdout)["results"]
    for entry in (local, remote):
        assert entry["answer"].strip() and not entry["error"]
        assert entry["time_to_first_token_s"] > 0 and entry["tokens_per_second"] > 0
    assert (local["remote"], remote["remote"]) == (False, True)
    assert local["data_went_to"] == "this machine"
    assert remote["data_went_to"].startswith("llamacpp (http://127.0.0.1:") and "left your machine" in remote["data_went_to"]
    assert f"→ llamacpp: {ANNOUNCED}" in result.stderr
    table = run_hearth(args, cli_env(home, COLUMNS="140"))
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0]
    assert "smollm2" in header and "llamacpp/smollm2" in header
    for label in ("answer", "time to first token", "tokens/s", "data went to"):
        assert any(line.startswith(label) for line in table.stdout.splitlines()), table.stdout


# -- the gateway (`hearth serve`) ------------------------------------------------------------


def test_gateway_ollama_chat_is_marked(gateway: HearthServer, llama_server: str) -> None:
    body = {"model": "llamacpp/smollm2", "messages": [{"role": "user", "content": "Hi"}],
            "options": {"temperature": 0, "num_predict": 8}}
    with httpx.stream("POST", gateway.url + "/api/chat", json=body, timeout=120) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert lines[-1]["done"] and lines[-1]["eval_count"] > 0
    assert "".join(line["message"]["content"] for line in lines).strip()
    assert all(line["remote_model"] == "smollm2" and line["remote_host"] == llama_server for line in lines)
    local = httpx.post(gateway.url + "/api/chat", json={**body, "model": "smollm2", "stream": False}, timeout=120)
    assert local.status_code == 200 and "remote_host" not in local.json()
    shown = httpx.post(gateway.url + "/api/show", json={"model": "peer/smollm2:latest"}, timeout=30).json()
    assert shown["remote_host"].endswith("/v1") and shown["model_info"]["remote.weights"] == "open"
    no_key_in(json.dumps(shown))


def test_gateway_openai_stream_tools_and_models(gateway: HearthServer, peer: HearthServer) -> None:
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0, timeout=120) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="llamacpp/smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
        assert raw.headers["x-hearth-remote"] == "llamacpp"
        completion = raw.parse()
        assert completion.model == "llamacpp/smollm2" and completion.choices[0].message.content
        assert completion.model_extra["remote_model"] == "smollm2"
        stream = client.chat.completions.create(model="llamacpp/smollm2", max_tokens=8, temperature=0,
                                                messages=[{"role": "user", "content": "Hi"}], stream=True)
        chunks = list(stream)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
        assert all(c.model == "llamacpp/smollm2" for c in chunks)
        # Tools go to the provider as the client sent them (here: hearth, which forces the call,
        # on a model whose template takes tools).
        create_tools_model(peer.url, headers={"Authorization": f"Bearer {KEY}"})
        called = client.chat.completions.create(
            model="peer/smollm2-tools:latest", messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[WEATHER], tool_choice="required", max_tokens=48, temperature=0)
        call = called.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather" and "city" in json.loads(call.function.arguments)
        ids = [m.id for m in client.models.list().data]
        assert "smollm2:latest" in ids
        assert client.models.retrieve("peer/smollm2:latest").owned_by == "peer"


def test_gateway_embeddings_equal_the_providers_own(gateway: HearthServer, peer: HearthServer) -> None:
    texts = ["hello world", "the sky is blue"]
    direct = ollama.Client(host=peer.url, headers={"Authorization": f"Bearer {KEY}"}).embed(
        model="smollm2", input=texts)
    through = ollama.Client(host=gateway.url).embed(model="peer/smollm2:latest", input=texts)
    assert through.embeddings == direct.embeddings
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0) as client:
        vectors = client.embeddings.create(model="peer/smollm2:latest", input=texts)
    for got, expected in zip([item.embedding for item in vectors.data], direct.embeddings, strict=True):
        assert got == pytest.approx(expected, rel=1e-5)


def test_gateway_errors_keep_their_meaning(gateway: HearthServer, fake: FakeProvider) -> None:
    body = {"model": "fake/fake-model", "messages": [{"role": "user", "content": "Hi"}]}
    fake.script("401")
    refused = httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=30)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    fake.retry_after = "120"
    fake.script("429")
    limited = httpx.post(gateway.url + "/api/chat", json={**body, "stream": False}, timeout=30)
    fake.retry_after = "1"
    assert limited.status_code == 429 and limited.headers["retry-after"] == "120"
    fake.script("die")
    with httpx.stream("POST", gateway.url + "/api/chat", json=body, timeout=30) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert "".join(line.get("message", {}).get("content", "") for line in lines) == "".join(WORDS[:2])
    assert "before the answer was complete" in lines[-1]["error"]
    fake.script("die")
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json={**body, "stream": True},
                      timeout=30) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert "before the answer was complete" in json.loads(events[-1])["error"]["message"]
    no_key_in(refused.text, limited.text)


def test_gateway_limits_calls_in_flight_per_provider(gateway: HearthServer, fake: FakeProvider) -> None:
    fake.max_active = 0
    fake.script("slow", "slow", "slow")
    statuses: list[int] = []

    def call() -> None:
        body = {"model": "fake/fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
        statuses.append(httpx.post(gateway.url + "/api/chat", json=body, timeout=60).status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200, 200, 200]
    assert fake.max_active == 1  # max_concurrency = 1 for this provider


def test_gateway_offline_refuses_remote_models(start_server, fake: FakeProvider) -> None:
    running = start_server(HEARTH_OFFLINE="1", FAKE_KEY=KEY)
    (running.home / "providers.toml").write_text(f'[providers.fake]\nbase_url = "{fake.base_url}"\n')
    before = len(fake.requests)
    body = {"model": "fake/fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": False}
    for path in ("/api/chat", "/v1/chat/completions"):
        answer = httpx.post(running.url + path, json=body, timeout=30)
        assert answer.status_code == 403 and "HEARTH_OFFLINE=1" in answer.text
    assert len(fake.requests) == before


def test_the_key_never_appears_in_any_output_or_log(home: Path, gateway: HearthServer,
                                                     fake: FakeProvider) -> None:
    outputs = []
    env = cli_env(home)
    for args in (["config"], ["show", "peer/smollm2:latest"], ["list", "--remote", "peer"],
                 ["run", "peer/smollm2:latest", "Hi", *SHORT]):
        result = run_hearth(args, env)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    # A refused key, with the traceback shown (--debug).
    refused = run_hearth(["--debug", "run", "peer/smollm2:latest", "Hi"], cli_env(home, PEER_KEY=WRONG_KEY))
    assert refused.returncode != 0 and "ProviderAuthFailed" in refused.stderr
    outputs += [refused.stdout, refused.stderr]
    config = outputs[0]
    assert "PEER_KEY (set)" in config and "FAKE_KEY (set)" in config
    shown = httpx.post(gateway.url + "/api/show", json={"model": "peer/smollm2:latest"}, timeout=30)
    outputs.append(shown.text)
    # Through the gateway too, including a provider that repeats the key it was sent.
    outputs.append(httpx.post(gateway.url + "/api/chat", json={
        "model": "peer/smollm2:latest", "messages": [{"role": "user", "content": "Hi"}], "stream": False,
        "options": {"num_predict": 4}}, timeout=120).text)
    fake.script("401")
    echoed = httpx.post(gateway.url + "/api/chat", json={
        "model": "fake/fake-model", "messages": [{"role": "user", "content": "Hi"}], "stream": False}, timeout=30)
    assert echoed.status_code == 401 and "Invalid API Key: Bearer ***" in echoed.text
    outputs.append(echoed.text)
    outputs.append(gateway.log_path.read_text(errors="replace"))
    no_key_in(*outputs)
