"""Remote providers in-process, against a scripted OpenAI-compatible server on loopback:
naming, providers.toml, translation, error mapping, retries, timeouts, offline, limits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hearth.api.types import ChatRequest, EmbedRequest, GenerateRequest, Message, Options, ToolCall
from hearth.errors import (
    HearthError,
    InvalidModelName,
    ModelNotFound,
    ProviderAuthFailed,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    RemoteDisabled,
)
from hearth.providers.directory import load_providers, resolve
from hearth.providers.remote import RemoteModels
from hearth.providers.transport import redact, retry_after_seconds
from hearth.providers.weights import facts_for
from tests.fake_provider import WORDS, FakeProvider

KEY = "sk-test-0123456789abcdef-SECRET"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def fake():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import os

    for name in list(os.environ):
        if name.startswith("HEARTH_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HEARTH_PROVIDER_RETRIES", "2")
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


def declare(home: Path, text: str) -> None:
    (home / "providers.toml").write_text(text)


@pytest.fixture
def remote(home: Path, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> RemoteModels:
    monkeypatch.setenv("FAKE_KEY", KEY)
    declare(home, f'[providers.fake]\nbase_url = "{fake.base_url}"\napi_key_env = "FAKE_KEY"\ntimeout = 2\n')
    return RemoteModels()


def chat(model: str = "fake/fake-model", **fields) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message(role="user", content="Hi")], **fields)


# -- names and providers.toml ----------------------------------------------------------------


def test_presets_and_naming_precedence(home: Path) -> None:
    providers = load_providers()
    assert {"groq", "openai", "openrouter", "together", "mistral", "gemini"} <= set(providers)
    target = resolve("groq/llama-3.3-70b-versatile")
    assert target is not None
    assert (target.provider.name, target.model) == ("groq", "llama-3.3-70b-versatile")
    assert target.provider.endpoint == "https://api.groq.com/openai/v1"
    # The provider part is case-insensitive; the provider's own id is kept as written.
    upper = resolve("Together/meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert upper is not None and upper.model == "meta-llama/Llama-3.3-70B-Instruct-Turbo"
    # Local names stay local: no slash, an unknown first part, or a full local name.
    for local in ("smollm2", "smollm2:latest", "myteam/model", "hearth.local/groq/model",
                  "library/smollm2", "hf.co/owner/repo:Q4_K_M"):
        assert resolve(local) is None, local
    with pytest.raises(InvalidModelName):
        resolve("groq/bad name with spaces")


def test_providers_toml_declares_and_overrides(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    declare(home, """
[providers.mybox]
base_url = "http://127.0.0.1:9/v1/"
models = ["smollm2", "qwen*"]
structured_output = "json_object"
stream_usage = false

[providers.groq]
api_key_env = "MY_GROQ"
""")
    providers = load_providers()
    mybox = providers["mybox"]
    assert mybox.endpoint == "http://127.0.0.1:9/v1" and not mybox.needs_key and not mybox.preset
    assert mybox.allows("smollm2") and mybox.allows("qwen2.5-7b") and not mybox.allows("llama3")
    groq = providers["groq"]
    assert groq.base_url == "https://api.groq.com/openai/v1" and groq.api_key_env == "MY_GROQ"
    monkeypatch.setenv("MY_GROQ", KEY)
    assert groq.key() == KEY
    # An edited file is read again.
    time.sleep(0.01)
    declare(home, '[providers.other]\nbase_url = "https://example.test/v1"\n')
    assert "other" in load_providers() and "mybox" not in load_providers()


@pytest.mark.parametrize(("text", "problem"), [
    ('[providers.x]\nbase_url = "ftp://host/v1"\n', "http:// or https://"),
    ('[providers.x]\nbase_url = "http://h/v1"\nmodel = ["a"]\n', "unknown field(s) model"),
    ('[providers.library]\nbase_url = "http://h/v1"\n', "must be lower-case"),
    ('[providers.x]\napi_key_env = "X"\n', "base_url is required"),
    ('[groq]\nbase_url = "http://h/v1"\n', "unknown table(s) groq"),
    ('[providers.x\n', "not valid TOML"),
    ('[providers.x]\nbase_url = "http://h/v1"\nstructured_output = "xml"\n', "structured_output"),
])
def test_bad_providers_toml_is_one_clear_line(home: Path, text: str, problem: str) -> None:
    declare(home, text)
    with pytest.raises(HearthError) as info:
        load_providers()
    assert problem in info.value.message and "providers.toml" in info.value.message
    assert "\n" not in info.value.cli_message()


def test_a_key_pasted_into_api_key_env_is_not_echoed(home: Path) -> None:
    declare(home, f'[providers.x]\nbase_url = "http://h/v1"\napi_key_env = "{KEY}"\n')
    with pytest.raises(HearthError) as info:
        load_providers()
    assert KEY not in info.value.message and "environment variable" in info.value.message


def test_keys_stay_out_of_reprs_and_endpoints(home: Path) -> None:
    declare(home, f'[providers.x]\nbase_url = "https://user:pw@host.test:8443/v1?key=abc"\napi_key = "{KEY}"\n')
    provider = load_providers()["x"]
    assert provider.key() == KEY and provider.needs_key
    assert KEY not in repr(provider) and KEY not in repr(resolve("x/m"))
    assert provider.endpoint == "https://host.test:8443/v1"
    assert redact(f"bad key {KEY} (Authorization: Bearer {KEY})", KEY).count("***") == 2


def test_model_facts_come_from_the_catalog_then_the_known_models() -> None:
    llama = facts_for("meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert (llama.weights, llama.publisher, llama.license) == ("open", "Meta", "Llama 3.3 Community License")
    assert facts_for("gpt-4o").weights == "closed"
    assert facts_for("openai/gpt-oss-120b").weights == "open"
    assert facts_for("gemini-2.0-flash").weights == "closed"
    smol = facts_for("smollm2:latest")
    assert (smol.source, smol.weights, smol.license) == ("catalog", "open", "Apache-2.0")
    assert facts_for("something-nobody-knows").weights == "unknown"


def test_retry_after_forms() -> None:
    from email.utils import formatdate

    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 2
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 11
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


# -- generation ------------------------------------------------------------------------------


def test_chat_streams_with_marker_usage_and_only_openai_options(remote: RemoteModels, fake: FakeProvider) -> None:
    options = Options(temperature=0, num_predict=16, seed=3, top_k=5, num_ctx=512, stop=["###"])
    chunks = list(remote.chat(chat(options=options)))
    assert "".join(c.message.content for c in chunks) == "".join(WORDS)
    assert len(chunks) == len(WORDS) + 1
    final = chunks[-1]
    assert final.done and final.done_reason == "stop"
    assert (final.eval_count, final.prompt_eval_count) == (len(WORDS), 5)
    assert final.eval_duration > 0 and final.total_duration >= final.eval_duration
    assert all(c.remote_model == "fake-model" and c.remote_host == fake.base_url for c in chunks)
    assert all(c.model == "fake/fake-model" for c in chunks)
    sent = fake.posts()[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.body
    assert body["model"] == "fake-model" and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["max_tokens"], body["seed"], body["stop"]) == (0, 16, 3, ["###"])
    assert "top_k" not in body and "num_ctx" not in body


def test_json_schema_format_in_both_styles(remote: RemoteModels, fake: FakeProvider, home: Path) -> None:
    schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
    list(remote.chat(chat(format=schema)))
    list(remote.chat(chat(format="json")))
    first, second = fake.posts()[0].body, fake.posts()[1].body
    assert first["response_format"] == {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    assert second["response_format"] == {"type": "json_object"}
    declare(home, f'[providers.fake]\nbase_url = "{fake.base_url}"\nstructured_output = "json_object"\n')
    time.sleep(0.01)
    list(RemoteModels().chat(chat(format=schema)))
    assert fake.posts()[2].body["response_format"] == {"type": "json_object", "schema": schema}


def test_tool_calls_come_back_and_go_out_with_matching_ids(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("tool")
    final = list(remote.chat(chat(tools=[WEATHER])))[-1]
    assert final.message.tool_calls and final.message.tool_calls[0].function.name == "get_weather"
    assert final.message.tool_calls[0].function.arguments == {"city": "Oslo"}
    assert fake.posts()[0].body["tools"] == [WEATHER]
    history = [
        Message(role="user", content="Weather in Oslo?"),
        Message(role="assistant", content="", tool_calls=[ToolCall.model_validate(
            {"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}})]),
        Message(role="tool", content="12 degrees"),
    ]
    list(remote.chat(ChatRequest(model="fake/fake-model", messages=history, tools=[WEATHER])))
    sent = fake.posts()[1].body["messages"]
    call_id = sent[1]["tool_calls"][0]["id"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert sent[2] == {"role": "tool", "content": "12 degrees", "tool_call_id": call_id}


def test_generate_uses_chat_and_raw_uses_completions(remote: RemoteModels, fake: FakeProvider) -> None:
    chunks = list(remote.generate(GenerateRequest(model="fake/fake-model", prompt="Hi", system="Be brief")))
    assert "".join(c.response for c in chunks) == "".join(WORDS) and chunks[-1].done
    assert fake.posts()[0].body["messages"] == [{"role": "system", "content": "Be brief"},
                                                {"role": "user", "content": "Hi"}]
    list(remote.generate(GenerateRequest(model="fake/fake-model", prompt="Once", raw=True)))
    assert fake.posts()[1].path == "/v1/completions" and fake.posts()[1].body["prompt"] == "Once"
    # An empty prompt only "loads" the model, as in Ollama: nothing is sent.
    loaded = list(remote.generate(GenerateRequest(model="fake/fake-model")))
    assert loaded[-1].done_reason == "load" and len(fake.posts()) == 2


def test_embeddings_in_input_order(remote: RemoteModels, fake: FakeProvider) -> None:
    result = remote.embed(EmbedRequest(model="fake/fake-model", input=["a", "abc"], dimensions=3))
    assert result.embeddings == [[1.0, 0.5, -1.0], [3.0, 0.5, -1.0]]
    assert result.prompt_eval_count == 7 and result.remote_model == "fake-model"
    assert fake.posts()[0].path == "/v1/embeddings" and fake.posts()[0].body["dimensions"] == 3


def test_list_and_show_remote(remote: RemoteModels, fake: FakeProvider) -> None:
    listed = {entry.name: entry for entry in remote.list_remote("fake")}
    assert set(listed) == {"fake/fake-model", "fake/gpt-4o", "fake/llama-3.3-70b-versatile"}
    assert listed["fake/gpt-4o"].weights == "closed" and listed["fake/llama-3.3-70b-versatile"].weights == "open"
    assert listed["fake/fake-model"].context_length == 8192
    shown = remote.show("fake/llama-3.3-70b-versatile")
    assert shown.remote_host == fake.base_url and shown.remote_model == "llama-3.3-70b-versatile"
    assert shown.model_info["remote.weights"] == "open" and shown.model_info["remote.provider"] == "fake"
    assert "Llama 3.3" in shown.license and KEY not in shown.model_dump_json()
    assert [r.method for r in fake.requests] == ["GET"]  # show asks nobody


def test_allow_list_refuses_other_models_without_a_call(home: Path, fake: FakeProvider) -> None:
    declare(home, f'[providers.fake]\nbase_url = "{fake.base_url}"\nmodels = ["fake-model"]\n')
    with pytest.raises(ModelNotFound, match="allows only"):
        list(RemoteModels().chat(chat("fake/other-model")))
    assert fake.requests == []
    assert [e.name for e in RemoteModels().list_remote("fake")] == ["fake/fake-model"]


# -- failures --------------------------------------------------------------------------------


def test_bad_key_is_401_and_never_repeated(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("401")
    with pytest.raises(ProviderAuthFailed) as info:
        list(remote.chat(chat()))
    error = info.value
    assert error.status_code == 401 and "refused the API key" in error.message and "FAKE_KEY" in error.message
    assert KEY not in error.message and KEY not in error.cli_message()
    assert len(fake.posts()) == 1  # a bad key is not retried


def test_a_preset_without_its_key_is_refused_before_any_call(home: Path) -> None:
    with pytest.raises(ProviderAuthFailed, match="set GROQ_API_KEY"):
        list(RemoteModels().chat(chat("groq/llama-3.3-70b-versatile")))


def test_429_then_200_waits_out_retry_after(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("429")
    started = time.monotonic()
    chunks = list(remote.chat(chat()))
    assert "".join(c.message.content for c in chunks) == "".join(WORDS)
    assert time.monotonic() - started >= 0.95
    assert len(fake.posts()) == 2


def test_a_long_retry_after_fails_at_once_with_429(remote: RemoteModels, fake: FakeProvider,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake.retry_after = "120"
    monkeypatch.setenv("HEARTH_PROVIDER_MAX_WAIT", "5")
    fake.script("429")
    started = time.monotonic()
    with pytest.raises(ProviderRateLimited) as info:
        list(remote.chat(chat()))
    assert time.monotonic() - started < 1
    assert info.value.status_code == 429 and info.value.retry_after == 120
    assert "retry after 120s" in info.value.message and len(fake.posts()) == 1


def test_5xx_is_retried_with_backoff(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("503", "500")
    started = time.monotonic()
    assert list(remote.chat(chat()))[-1].done
    assert len(fake.posts()) == 3 and time.monotonic() - started >= 1.4  # 0.5 s, then 1 s


def test_5xx_retries_are_bounded(remote: RemoteModels, fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_PROVIDER_RETRIES", "1")
    fake.script("500", "500", "500")
    with pytest.raises(ProviderError) as info:
        list(remote.chat(chat()))
    assert info.value.status_code == 502 and "HTTP 500 after 2 attempt(s)" in info.value.message
    assert "bad day" in info.value.message and len(fake.posts()) == 2


def test_no_answer_is_a_timeout(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("hang")
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as info:
        list(remote.chat(chat()))
    assert info.value.status_code == 504 and "within 2s" in info.value.message
    assert time.monotonic() - started < 5 and len(fake.posts()) == 1


def test_a_provider_that_dies_mid_stream_is_an_error_after_the_text_so_far(remote: RemoteModels,
                                                                          fake: FakeProvider) -> None:
    fake.script("die")
    received = []
    with pytest.raises(ProviderError, match="before the answer was complete"):
        for chunk in remote.chat(chat()):
            received.append(chunk.message.content)
    assert "".join(received) == "".join(WORDS[:2])
    assert len(fake.posts()) == 1  # never replayed: part of it was already shown


def test_unknown_model_is_model_not_found(remote: RemoteModels, fake: FakeProvider) -> None:
    fake.script("404")
    with pytest.raises(ModelNotFound, match="hearth list --remote fake"):
        list(remote.chat(chat("fake/nope")))


def test_offline_refuses_every_remote_call_before_sending(remote: RemoteModels, fake: FakeProvider,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_OFFLINE", "1")
    calls = [
        lambda: list(remote.chat(chat())),
        lambda: list(remote.generate(GenerateRequest(model="fake/fake-model", prompt="Hi"))),
        lambda: remote.embed(EmbedRequest(model="fake/fake-model", input="Hi")),
        lambda: remote.list_remote("fake"),
        lambda: remote.forward("fake/fake-model", "chat/completions", {"model": "fake/fake-model"}),
    ]
    for call in calls:
        with pytest.raises(RemoteDisabled) as info:
            call()
        assert info.value.status_code == 403 and "HEARTH_OFFLINE=1" in info.value.message
    assert fake.requests == []


def test_concurrency_limit_per_provider(home: Path, fake: FakeProvider) -> None:
    declare(home, f'[providers.fake]\nbase_url = "{fake.base_url}"\nmax_concurrency = 1\n')
    fake.script("slow", "slow", "slow")
    remote = RemoteModels()
    results: list[str] = []

    def one() -> None:
        results.append("".join(c.message.content for c in remote.chat(chat())))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == ["".join(WORDS)] * 3
    assert fake.max_active == 1


def test_runtime_sends_provider_names_to_the_provider(remote: RemoteModels, fake: FakeProvider) -> None:
    from hearth.runtime import Runtime

    runtime = Runtime()
    assert runtime.is_remote("fake/fake-model") and not runtime.is_remote("smollm2")
    assert "".join(c.message.content for c in runtime.chat(chat())) == "".join(WORDS)
    assert runtime.show("fake/fake-model").remote_model == "fake-model"
    with pytest.raises(HearthError, match="needs a local model"):
        runtime.tokenize("fake/fake-model", "hi")


def test_python_api_reaches_remote_models(remote: RemoteModels, fake: FakeProvider,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import hearth
    from hearth import python_api

    monkeypatch.setattr(python_api, "_runtime", None)  # a runtime for this test's HEARTH_HOME
    reply = hearth.chat("fake/fake-model", [{"role": "user", "content": "Hi"}])
    assert reply.message.content == "".join(WORDS) and reply.remote_host == fake.base_url
    answer = hearth.generate("fake/fake-model", "Hi", temperature=0)
    assert answer.response == "".join(WORDS)
    assert fake.posts()[-1].body["temperature"] == 0


def test_declared_models_are_the_exact_allow_list_entries_of_callable_providers(
        home: Path, fake: FakeProvider) -> None:
    declare(home, f'[providers.fake]\nbase_url = "{fake.base_url}"\nmodels = ["a-model", "qwen*"]\n'
                  '[providers.groq]\nmodels = ["llama-3.3-70b-versatile"]\n')
    # groq has no key here, so its model is not offered.
    assert RemoteModels().declared_models() == [("fake/a-model", "fake")]
    assert fake.requests == []
