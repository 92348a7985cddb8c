"""Pull from and push to OCI / Ollama registries.

Round trips run against Debian's real ``docker-registry`` (distribution 2.8) on a loopback
port; the answers a real registry will not give (hostile digests, missing or wrong blobs, a
bearer-token challenge, Basic auth, redirects to storage) come from ``tests/fake_registry.py``.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.api.types import GenerateRequest, Options, ProgressResponse
from hearth.errors import (
    DigestMismatch,
    DownloadFailed,
    InvalidModelFile,
    InvalidRequest,
    ModelNotFound,
    PushFailed,
)
from hearth.hub.pull import pull_model
from hearth.hub.registry import fetch_registry_model, is_registry_name, push_model
from hearth.hub.registry_client import parse_challenge, registry_ref
from hearth.names import ModelName
from hearth.runtime import Runtime
from hearth.store import ModelStore
from tests.conftest import HearthServer, hearth_env, run_hearth
from tests.fake_registry import FakeRegistry, digest_of

REGISTRY_BINARY = Path("/usr/bin/docker-registry")
LICENSE = "Apache License 2.0 (test copy)"
SYSTEM = "You are a tiny test model."


# -- a real registry -------------------------------------------------------------------------


class RealRegistry:
    def __init__(self, root: Path, htpasswd: Path | None = None) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.host = f"localhost:{self.port}"
        self.log_path = root / "registry.log"
        config = root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n  secret: hearth-tests\n"
            + (f"auth:\n  htpasswd:\n    realm: hearth-tests\n    path: {htpasswd}\n" if htpasswd else "")
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen([str(REGISTRY_BINARY), "serve", str(config)],
                                        stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # 401 from a registry behind a login: it answers
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for line in self.log().splitlines() if f'"{method} ' in line and path_part in line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRegistry]:
    if not REGISTRY_BINARY.is_file():
        pytest.fail(f"{REGISTRY_BINARY} is missing: install Debian's docker-registry package")
    running = RealRegistry(tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture
def source_store(tmp_path: Path, tiny_model: Path) -> ModelStore:
    """A HEARTH_HOME holding 'tiny' with weights, license, system prompt and parameters."""
    store = ModelStore(tmp_path / "home-a")
    modelfile = (f'FROM "{tiny_model}"\nLICENSE "{LICENSE}"\nSYSTEM "{SYSTEM}"\n'
                 "PARAMETER temperature 0\n")
    Runtime(store).create("tiny", modelfile=modelfile, base_dir=tmp_path)
    return store


@pytest.fixture
def target_store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "home-b")


def events_of(action) -> list[ProgressResponse]:
    events: list[ProgressResponse] = []
    action(events.append)
    return events


def store_is_empty(store: ModelStore) -> bool:
    return store.list() == [] and list(store.blobs.digests()) == []


# -- names and protocol pieces ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("localhost:5000/ns/model:tag", True),
    ("registry.ollama.ai/library/llama3:8b", True),
    ("ollama.com/library/llama3", True),
    ("127.0.0.1:5000/ns/model", True),
    ("localhost/ns/model", True),
    ("smollm2", False),
    ("team/model:v1", False),
    ("hf.co/owner/repo:q4_k_m", False),
    ("huggingface.co/owner/repo", False),
    ("hearth.local/library/tiny", False),
    ("openrouter/meta-llama/llama-3", False),  # a provider's name, not a host
])
def test_which_names_are_registry_names(text: str, expected: bool) -> None:
    assert is_registry_name(ModelName.parse(text)) is expected


def test_registry_address_scheme_and_ollama_alias() -> None:
    ollama = registry_ref(ModelName.parse("ollama.com/library/llama3:8b"))
    assert (ollama.base_url, ollama.repository, ollama.tag) == ("https://registry.ollama.ai", "library/llama3", "8b")
    assert registry_ref(ModelName.parse("localhost:5000/a/b")).base_url == "http://localhost:5000"
    assert registry_ref(ModelName.parse("127.0.0.1:5000/a/b")).base_url == "http://127.0.0.1:5000"
    assert registry_ref(ModelName.parse("registry.example.com/a/b")).base_url == "https://registry.example.com"
    insecure = registry_ref(ModelName.parse("registry.example.com:8080/a/b"), insecure=True)
    assert insecure.blob_url("sha256:" + "0" * 64) == f"http://registry.example.com:8080/v2/a/b/blobs/sha256:{'0' * 64}"


def test_bearer_challenge_is_parsed_with_commas_inside_quotes() -> None:
    scheme, params = parse_challenge(
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:team/model:pull,push"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.example.com/token", "service": "registry.example.com",
                      "scope": "repository:team/model:pull,push"}


# -- round trips through a real registry -----------------------------------------------------


def test_push_then_pull_gives_the_same_model(registry: RealRegistry, source_store: ModelStore,
                                             target_store: ModelStore) -> None:
    remote = ModelName.parse(f"{registry.host}/tests/tiny:v1")
    pushed = events_of(lambda p: push_model(source_store, "tiny", p, destination=remote.full))
    statuses = [e.status for e in pushed]
    assert statuses[0] == "retrieving manifest" and statuses[-2:] == ["pushing manifest", "success"]
    original = source_store.get("tiny")
    for layer in [*original.manifest.layers, original.manifest.config]:
        done = [e for e in pushed if e.digest == layer.digest]
        assert done and done[-1].completed == done[-1].total == layer.size

    pulled_events = events_of(lambda p: fetch_registry_model(target_store, remote, p))
    assert pulled_events[-1].status == "success"
    pulled = target_store.get(remote)
    # Same manifest bytes, hence the same model id, and the same blobs.
    assert pulled.digest == original.digest
    assert pulled.manifest.digests() == original.manifest.digests()
    assert pulled.licenses == [LICENSE] and pulled.system == SYSTEM
    assert pulled.model_path.read_bytes() == original.model_path.read_bytes()

    # The pulled model runs.
    request = GenerateRequest(model=remote.full, prompt="Hello", stream=False,
                              options=Options(num_predict=4, temperature=0, seed=1))
    runtime = Runtime(target_store)
    try:
        chunks = list(runtime.generate(request))
    finally:
        runtime.close()
    assert chunks[-1].done and chunks[-1].eval_count and chunks[-1].eval_count > 0

    # A second pull finds every blob in the store and downloads none.
    blob_gets = registry.count("GET", "/v2/tests/tiny/blobs/")
    again = events_of(lambda p: fetch_registry_model(target_store, remote, p))
    assert again[-1].status == "success"
    assert registry.count("GET", "/v2/tests/tiny/blobs/") == blob_gets + 2  # config + license only


def test_push_skips_blobs_the_registry_has(registry: RealRegistry, source_store: ModelStore) -> None:
    push_model(source_store, "tiny", destination=f"{registry.host}/tests/skip:v1")
    uploads = registry.count("POST", "/v2/tests/skip/blobs/uploads/")
    assert uploads == len(source_store.get("tiny").manifest.digests())
    push_model(source_store, "tiny", destination=f"{registry.host}/tests/skip:v2")
    assert registry.count("POST", "/v2/tests/skip/blobs/uploads/") == uploads
    assert registry.count("PUT", "/v2/tests/skip/manifests/v2") == 1


def test_chunked_upload_round_trip(registry: RealRegistry, source_store: ModelStore,
                                   target_store: ModelStore) -> None:
    remote = f"{registry.host}/tests/chunked:v1"
    push_model(source_store, "tiny", destination=remote, chunk_size=64 << 10)
    weights = source_store.get("tiny").model_layer
    assert registry.count("PATCH", "/v2/tests/chunked/blobs/uploads/") >= weights.size // (64 << 10)
    pulled = fetch_registry_model(target_store, ModelName.parse(remote))
    assert pulled.model_layer == weights
    assert pulled.model_path.read_bytes() == source_store.get("tiny").model_path.read_bytes()



class DroppingProxy:
    """Forwards to the real registry but breaks the connection on the Nth PATCH: ``before``
    drops the chunk unsent, ``after`` forwards it and loses the registry's answer."""

    def __init__(self, registry_port: int, drop_patch: int, mode: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.patches = 0
        self.dropped = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.command == "PATCH":
                    proxy.patches += 1
                    if proxy.patches == drop_patch:
                        proxy.dropped += 1
                        if mode == "after":
                            self._relay(body)[0].close()
                        self.close_connection = True
                        return
                connection, answer = self._relay(body)
                data = answer.read()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            def _relay(self, body: bytes):
                connection = http.client.HTTPConnection("127.0.0.1", registry_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                connection.request(self.command, self.path, body=body, headers=headers)
                return connection, connection.getresponse()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = forward  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("mode", ["before", "after"])
def test_chunked_upload_survives_a_dropped_chunk(registry: RealRegistry, source_store: ModelStore,
                                                 target_store: ModelStore, mode: str) -> None:
    proxy = DroppingProxy(registry.port, drop_patch=2, mode=mode)
    try:
        push_model(source_store, "tiny", destination=f"{proxy.host}/tests/dropped-{mode}:v1",
                   chunk_size=64 << 10)
    finally:
        proxy.close()
    assert proxy.dropped == 1
    # A chunk that never arrived resumes the same upload; one whose answer was lost leaves the
    # registry's upload state ahead of ours, so the weights start over in a fresh upload.
    uploads = registry.count("POST", f"/v2/tests/dropped-{mode}/blobs/uploads/")
    blobs = len(source_store.get("tiny").manifest.digests())
    assert uploads == {"before": blobs, "after": blobs + 1}[mode]
    pulled = fetch_registry_model(target_store, ModelName.parse(f"{registry.host}/tests/dropped-{mode}:v1"))
    assert pulled.model_path.read_bytes() == source_store.get("tiny").model_path.read_bytes()

def test_unknown_tag_is_model_not_found(registry: RealRegistry, target_store: ModelStore) -> None:
    with pytest.raises(ModelNotFound) as caught:
        fetch_registry_model(target_store, ModelName.parse(f"{registry.host}/tests/nothing:here"))
    assert caught.value.status_code == 404
    assert "has no tests/nothing:here" in caught.value.message
    assert store_is_empty(target_store)


def test_push_refuses_names_without_a_registry(source_store: ModelStore) -> None:
    with pytest.raises(InvalidRequest, match="names no registry"):
        push_model(source_store, "tiny")
    with pytest.raises(InvalidRequest, match="names no registry"):
        push_model(source_store, "tiny", destination="team/tiny:v1")
    with pytest.raises(ModelNotFound):
        push_model(source_store, "missing", destination="localhost:5000/a/b")


def test_offline_refuses_push_and_pull(source_store: ModelStore, target_store: ModelStore,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_OFFLINE", "1")
    with pytest.raises(PushFailed, match="HEARTH_OFFLINE"):
        push_model(source_store, "tiny", destination="localhost:9/a/b")
    with pytest.raises(DownloadFailed, match="HEARTH_OFFLINE"):
        fetch_registry_model(target_store, ModelName.parse("localhost:9/a/b"))


# -- hostile or broken registries (fake) -----------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    with FakeRegistry() as running:
        yield running


@pytest.fixture(scope="module")
def weights(tiny_model: Path) -> bytes:
    return tiny_model.read_bytes()


def name_on(fake: FakeRegistry, repository: str, tag: str) -> ModelName:
    return ModelName.parse(f"{fake.host}/{repository}:{tag}")


@pytest.mark.parametrize("where", ["layer", "config"])
def test_traversal_digest_in_manifest_is_refused(fake: FakeRegistry, target_store: ModelStore,
                                                 weights: bytes, where: str) -> None:
    manifest = fake.add_model("ns/evil", "v1", weights)
    hostile = "sha256:../../../../etc/passwd"
    if where == "layer":
        manifest["layers"][0]["digest"] = hostile
    else:
        manifest["config"]["digest"] = hostile
    fake.manifests[("ns/evil", "v1")] = json.dumps(manifest).encode()
    with pytest.raises(DownloadFailed, match="invalid manifest.*invalid digest"):
        fetch_registry_model(target_store, name_on(fake, "ns/evil", "v1"))
    assert store_is_empty(target_store)
    # Only the manifest was asked for: no URL was built from the hostile digest.
    assert [(method, path) for method, path, _ in fake.requests] == [("GET", "/v2/ns/evil/manifests/v1")]


def test_blob_missing_from_registry_is_named(fake: FakeRegistry, target_store: ModelStore,
                                             weights: bytes) -> None:
    manifest = fake.add_model("ns/gap", "v1", weights)
    missing = manifest["layers"][0]["digest"]
    del fake.blobs[missing]
    with pytest.raises(DownloadFailed, match=f"has no blob {missing}"):
        fetch_registry_model(target_store, name_on(fake, "ns/gap", "v1"))
    assert store_is_empty(target_store)


def test_blob_with_wrong_bytes_is_not_stored(fake: FakeRegistry, target_store: ModelStore,
                                             weights: bytes) -> None:
    manifest = fake.add_model("ns/bent", "v1", weights)
    digest = manifest["layers"][0]["digest"]
    fake.blobs[digest] = weights[:-1] + bytes([weights[-1] ^ 0xFF])  # same size, other bytes
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        fetch_registry_model(target_store, name_on(fake, "ns/bent", "v1"))
    assert store_is_empty(target_store)
    assert not target_store.blobs.has(digest_of(fake.blobs[digest]))


def test_weights_that_are_not_gguf_get_no_name(fake: FakeRegistry, target_store: ModelStore) -> None:
    fake.add_model("ns/notgguf", "v1", b"this is not a GGUF file at all" * 10)
    with pytest.raises(InvalidModelFile):
        fetch_registry_model(target_store, name_on(fake, "ns/notgguf", "v1"))
    assert target_store.list() == []


@pytest.mark.parametrize(("manifest", "message"), [
    ({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []},
     "image index, not a model"),
    ({"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:" + "a" * 64, "size": 2},
      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + "b" * 64,
                  "size": 3}]},
     "is not a model"),
    ({"schemaVersion": 1, "layers": []}, "invalid manifest"),
])
def test_manifests_that_are_not_models_are_refused(fake: FakeRegistry, target_store: ModelStore,
                                                   manifest: dict, message: str) -> None:
    fake.manifests[("ns/odd", "v1")] = json.dumps(manifest).encode()
    with pytest.raises(DownloadFailed, match=message):
        fetch_registry_model(target_store, name_on(fake, "ns/odd", "v1"))
    assert store_is_empty(target_store)


def test_unknown_tag_on_fake_registry_is_404(fake: FakeRegistry, target_store: ModelStore) -> None:
    with pytest.raises(ModelNotFound) as caught:
        fetch_registry_model(target_store, name_on(fake, "ns/none", "v9"))
    assert caught.value.status_code == 404


def test_bearer_token_challenge_and_redirect_to_storage(target_store: ModelStore, weights: bytes) -> None:
    with FakeRegistry(token="secret-token") as fake, FakeRegistry() as storage:
        manifest = fake.add_model("ns/locked", "v1", weights, license_text=LICENSE,
                                  config={"license_id": "Apache-2.0", "context_length": 256})
        storage.blobs.update(fake.blobs)
        fake.redirect_blobs_to = storage
        name = name_on(fake, "ns/locked", "v1")

        plan = fetch_registry_model(target_store, name, plan_only=True)
        assert plan.size == sum(layer["size"] for layer in manifest["layers"]) + manifest["config"]["size"]
        assert (plan.license_id, plan.context_length, plan.license_text) == ("Apache-2.0", 256, LICENSE)
        assert store_is_empty(target_store)
        assert fake.token_requests[0] == {"service": "fake-registry", "scope": "repository:ns/locked:pull"}

        model = fetch_registry_model(target_store, name)
        assert model.licenses == [LICENSE]
        assert model.config["license_id"] == "Apache-2.0"
        weights_digest = manifest["layers"][0]["digest"]
        assert model.model_layer.digest == weights_digest
        # The registry saw the token; the storage host it redirected to never did.
        assert any(h.get("Authorization") == "Bearer secret-token" for _, _, h in fake.requests)
        assert storage.blob_gets(weights_digest) == 1
        assert all("Authorization" not in headers for _, _, headers in storage.requests)


def test_second_pull_downloads_no_blob_again(fake: FakeRegistry, target_store: ModelStore,
                                             weights: bytes) -> None:
    manifest = fake.add_model("ns/twice", "v1", weights)
    fake.manifests[("ns/twice", "v2")] = fake.manifests[("ns/twice", "v1")]
    weights_digest = manifest["layers"][0]["digest"]
    fetch_registry_model(target_store, name_on(fake, "ns/twice", "v1"))
    assert fake.blob_gets(weights_digest) == 1
    events = events_of(lambda p: fetch_registry_model(target_store, name_on(fake, "ns/twice", "v2"), p))
    assert fake.blob_gets(weights_digest) == 1
    assert any(e.digest == weights_digest and e.completed == e.total == len(weights) for e in events)
    assert {m.name.tag for m in target_store.list()} == {"v1", "v2"}



def test_license_id_is_recognised_from_an_ollama_license_layer(fake: FakeRegistry, target_store: ModelStore,
                                                                weights: bytes) -> None:
    text = "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/\n"
    fake.add_model("ns/ollama-style", "v1", weights, license_text=text)  # config without license_id
    name = name_on(fake, "ns/ollama-style", "v1")
    assert fetch_registry_model(target_store, name, plan_only=True).license_id == "Apache-2.0"
    assert fetch_registry_model(target_store, name).config["license_id"] == "Apache-2.0"


def test_pull_pipeline_asks_for_an_unknown_license_before_downloading(
        fake: FakeRegistry, target_store: ModelStore, weights: bytes) -> None:
    from hearth.errors import LicenseNotAccepted

    manifest = fake.add_model("ns/custom", "v1", weights, license_text="Custom terms: be nice.")
    name = name_on(fake, "ns/custom", "v1")
    with pytest.raises(LicenseNotAccepted):
        pull_model(target_store, name)
    assert fake.blob_gets(manifest["layers"][0]["digest"]) == 0
    assert target_store.list() == []
    model = pull_model(target_store, name, accept_license=True)
    assert model.licenses == ["Custom terms: be nice."]


def test_ollama_layers_hearth_cannot_use_are_left_out(fake: FakeRegistry, target_store: ModelStore,
                                                      weights: bytes) -> None:
    projector = b"vision projector weights" * 100
    go_template = "{{ if .System }}<|system|>{{ .System }}{{ end }}{{ .Prompt }}"
    manifest = fake.add_model("ns/ollama", "v1", weights, extra_layers=[
        ("application/vnd.ollama.image.template", go_template.encode()),
        ("application/vnd.ollama.image.params", json.dumps({"temperature": 0, "mirostat": 2}).encode()),
        ("application/vnd.ollama.image.projector", projector),
        ("application/vnd.ollama.image.system", SYSTEM.encode()),
    ])
    name = name_on(fake, "ns/ollama", "v1")
    plan = fetch_registry_model(target_store, name, plan_only=True)
    assert plan.size == manifest["config"]["size"] + sum(
        layer["size"] for layer in manifest["layers"] if layer["mediaType"] != "application/vnd.ollama.image.projector")
    events = events_of(lambda p: fetch_registry_model(target_store, name, p))
    notes = [e.status for e in events if e.status.startswith("left out")]
    assert len(notes) == 3 and any("mirostat" in n for n in notes) and any("Go" in n for n in notes)
    assert fake.blob_gets(digest_of(projector)) == 0
    model = target_store.get(name)
    assert model.template is None and model.system == SYSTEM
    assert model.parameters == {"temperature": 0}
    runtime = Runtime(target_store)
    try:
        chunks = list(runtime.generate(GenerateRequest(model=name.full, prompt="Hi", stream=False,
                                                       options=Options(num_predict=2))))
    finally:
        runtime.close()
    assert chunks[-1].done

def test_push_without_a_login_says_how_to_log_in(source_store: ModelStore, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-docker-config"))
    with FakeRegistry(basic_auth=True) as fake, \
            pytest.raises(PushFailed, match=f"asks for a user name and password; log in with 'docker login {fake.host}'"):
        push_model(source_store, "tiny", destination=f"{fake.host}/ns/tiny:v1")


def docker_login(folder: Path, host: str, user: str, password: str) -> Path:
    """What `docker login HOST` leaves behind: DOCKER_CONFIG/config.json with the auth."""
    import base64
    import json

    folder.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (folder / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return folder


@pytest.fixture(scope="module")
def locked_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealRegistry]:
    """Debian's docker-registry behind htpasswd (Basic auth): user 'team', password 's3cret'."""
    import bcrypt

    root = tmp_path_factory.mktemp("locked-registry")
    htpasswd = root / "htpasswd"
    htpasswd.write_text("team:" + bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode() + "\n")
    running = RealRegistry(root, htpasswd=htpasswd)
    yield running
    running.stop()


def test_push_and_pull_with_a_docker_login(locked_registry: RealRegistry, source_store: ModelStore,
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    destination = f"{locked_registry.host}/team/tiny:v1"
    # No login: a clear error, nothing uploaded.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    with pytest.raises(PushFailed, match="docker login"):
        push_model(source_store, "tiny", destination=destination)
    # A wrong password is named as such.
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_login(tmp_path / "wrong", locked_registry.host, "team", "nope")))
    with pytest.raises(PushFailed, match="refused the user name and password"):
        push_model(source_store, "tiny", destination=destination)
    # The right login: push, then pull into another home (blob downloads carry it too).
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_login(tmp_path / "right", locked_registry.host, "team", "s3cret")))
    push_model(source_store, "tiny", destination=destination)
    other = ModelStore(tmp_path / "home-b")
    pulled = pull_model(other, destination, accept_license=True)
    assert pulled.model_layer.digest == source_store.get("tiny").model_layer.digest
    # Without the login the pull is refused before anything is stored.
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nobody"))
    third = ModelStore(tmp_path / "home-c")
    with pytest.raises(DownloadFailed, match="docker login"):
        pull_model(third, destination, accept_license=True)
    assert third.list() == []


# -- the command line and the server ---------------------------------------------------------


@pytest.mark.e2e
def test_cli_push_pull_and_show(registry: RealRegistry, source_store: ModelStore, tmp_path: Path) -> None:
    remote = f"{registry.host}/cli/tiny:v1"
    pushed = run_hearth(["push", "tiny", remote], hearth_env(source_store.home))
    assert pushed.returncode == 0, pushed.stderr
    assert "success" in pushed.stderr

    home_b = tmp_path / "home-cli"
    env_b = hearth_env(home_b)
    pulled = run_hearth(["pull", remote], env_b)
    assert pulled.returncode == 0, pulled.stderr
    shown = run_hearth(["show", remote], env_b)
    assert shown.returncode == 0, shown.stderr
    assert "llama" in shown.stdout
    assert ModelStore(home_b).get(remote).digest == source_store.get("tiny").digest

    missing = run_hearth(["push", "tiny", "team/tiny:v1"], hearth_env(source_store.home))
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: ") and "names no registry" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.e2e
def test_push_through_the_server(registry: RealRegistry, source_store: ModelStore,
                                 target_store: ModelStore) -> None:
    import ollama

    remote = f"{registry.host}/server/tiny:v1"
    source_store.copy("tiny", remote)
    server = HearthServer(source_store.home)
    try:
        # The official client's push (Ollama's wire format) ...
        statuses = [item.status for item in ollama.Client(host=server.url).push(remote, insecure=True, stream=True)]
        assert statuses[-1] == "success" and "pushing manifest" in statuses
        # ... and `hearth push` going through the running server.
        dest = f"{registry.host}/server/tiny:v2"
        via_cli = run_hearth(["push", "tiny", dest], server.env)
        assert via_cli.returncode == 0, via_cli.stderr
        refused = run_hearth(["push", "tiny", "team/tiny"], server.env)
        assert refused.returncode == 1 and "names no registry" in refused.stderr
    finally:
        server.stop()
    for tag in ("v1", "v2"):
        pulled = fetch_registry_model(target_store, ModelName.parse(f"{registry.host}/server/tiny:{tag}"))
        assert pulled.model_layer == source_store.get("tiny").model_layer

