"""The server's safe defaults, checked with raw HTTP against real `hearth serve` processes:
Host header, API key, CORS, body limits, bad input, the OpenAPI document, the bounded queue,
client disconnects, graceful shutdown and /metrics."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import ollama
import pytest

from tests.conftest import run_hearth

pytestmark = pytest.mark.e2e

KEY = "s3cret-key"
# Private servers that generate use one thread: llama.cpp's threads wait on each other by
# spinning, and on a CPU that other test runs share two threads can be 10-100x slower than one.
ONE_THREAD = {"HEARTH_NUM_THREAD": "1"}
# A raw prompt the default model continues for as long as it is allowed to.
ENDLESS = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True}


def generate_body(num_predict: int, stream: bool = True, **extra) -> dict:
    return {"model": "smollm2", "stream": stream,
            "options": {"temperature": 0, "num_predict": num_predict}, **ENDLESS, **extra}


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def assert_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    return body["error"]


# -- Host header ---------------------------------------------------------------------------


def test_host_header_refuses_foreign_names(server):
    port = port_of(server.url)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert_error(client.get("/api/version", headers={"Host": "evil.example"}), 403)
        assert_error(client.get("/api/tags", headers={"Host": f"evil.example:{port}"}), 403)
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
            response = client.get("/api/version", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)


def test_allowed_hosts_setting(start_server):
    private = start_server(HEARTH_ALLOWED_HOSTS="myhost.lan")
    port = port_of(private.url)
    with httpx.Client(base_url=private.url, timeout=30) as client:
        for host in ("myhost.lan", f"myhost.lan:{port}", f"localhost:{port}"):
            assert client.get("/api/version", headers={"Host": host}).status_code == 200, host
        assert_error(client.get("/api/version", headers={"Host": "other.lan"}), 403)


# -- API key -------------------------------------------------------------------------------


def test_api_key(start_server):
    private = start_server(HEARTH_API_KEY=KEY, **ONE_THREAD)
    chat = {"model": "smollm2", "stream": False, "messages": [{"role": "user", "content": "Hi"}],
            "options": {"num_predict": 2}}
    protected = [("GET", "/api/tags", None), ("POST", "/api/chat", chat), ("GET", "/v1/models", None),
                 ("GET", "/metrics", None)]
    with httpx.Client(base_url=private.url, timeout=60) as client:
        assert client.get("/").status_code == 200
        assert client.get("/api/version").status_code == 200
        # Browsers send CORS preflights without credentials.
        assert preflight(client, "http://localhost:3000").status_code == 200
        for method, path, body in protected:
            for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": KEY},
                            {"Authorization": f"Basic {KEY}"}):
                response = client.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers, response.text)
                assert "error" in response.json()
            response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {KEY}"})
            assert response.status_code == 200, (method, path, response.text)

    listed = ollama.Client(host=private.url, headers={"Authorization": f"Bearer {KEY}"}).list()
    assert "smollm2:latest" in [m.model for m in listed.models]
    with pytest.raises(ollama.ResponseError) as refused:
        ollama.Client(host=private.url).list()
    assert refused.value.status_code == 401

    assert KEY not in private.log_path.read_text(errors="replace")
    shown = run_hearth(["config"], private.env, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "HEARTH_API_KEY" in shown.stdout
    assert KEY not in shown.stdout + shown.stderr


# -- CORS ----------------------------------------------------------------------------------


def preflight(client: httpx.Client, origin: str) -> httpx.Response:
    return client.options("/api/chat", headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "content-type"})


def test_cors_allows_local_origins_only(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        allowed = preflight(client, "http://localhost:3000")
        assert allowed.status_code == 200
        assert allowed.headers.get("access-control-allow-origin") == "http://localhost:3000"
        simple = client.get("/api/version", headers={"Origin": "http://127.0.0.1:8080"})
        assert simple.headers.get("access-control-allow-origin") == "http://127.0.0.1:8080"

        refused = preflight(client, "https://evil.example")
        assert "access-control-allow-origin" not in refused.headers
        simple = client.get("/api/version", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in simple.headers


def test_cors_origins_setting(start_server):
    private = start_server(HEARTH_ORIGINS="https://app.example")
    with httpx.Client(base_url=private.url, timeout=30) as client:
        allowed = preflight(client, "https://app.example")
        assert allowed.status_code == 200
        assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
        assert "access-control-allow-origin" not in preflight(client, "https://other.example").headers


# -- body size -----------------------------------------------------------------------------


@pytest.fixture
def small_body_server(start_server):
    return start_server(HEARTH_MAX_REQUEST_BYTES="2048")


def big_body() -> bytes:
    return json.dumps({"model": "smollm2", "prompt": "x" * 10_000}).encode()


def test_body_limit_with_content_length(small_body_server):
    with httpx.Client(base_url=small_body_server.url, timeout=30) as client:
        assert "too large" in assert_error(client.post("/api/generate", content=big_body()), 413)
        assert client.get("/api/version").status_code == 200
        # Under the limit is fine.
        assert client.post("/api/show", json={"model": "smollm2"}).status_code == 200
        # Blob uploads stream to disk and are not bound by the limit.
        blob = os.urandom(10_000)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        assert client.post(f"/api/blobs/{digest}", content=blob).status_code == 201
        assert client.head(f"/api/blobs/{digest}").status_code == 200


def test_body_limit_with_chunked_body(small_body_server):
    def chunks():
        data = big_body()
        for start in range(0, len(data), 1000):
            yield data[start:start + 1000]

    with httpx.Client(base_url=small_body_server.url, timeout=30) as client:
        response = client.post("/api/generate", content=chunks())
        assert "content-length" not in response.request.headers
        try:
            assert_error(response, 413)
        finally:
            assert client.get("/api/version").status_code == 200


# -- bad input -----------------------------------------------------------------------------


def test_bad_requests_get_json_errors(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert "JSON" in assert_error(client.post("/api/generate", content=b'{"model": "smollm2",'), 400)
        assert_error(client.post("/api/chat", content=b"not json at all"), 400)
        for body in (
            {"model": 5},
            {"model": "smollm2", "prompt": ["a"]},
            {"model": "smollm2", "options": {"temperature": "hot"}},
            {"model": "smollm2", "options": {"hotness": 3}},
            {"model": "smollm2", "options": {"num_predict": 1.5}},
            {"prompt": "no model"},
        ):
            assert_error(client.post("/api/generate", json=body), 400)
        assert_error(client.post("/api/chat", json={"model": "smollm2", "messages": [{"role": "wizard"}]}), 400)
        assert_error(client.post("/api/show", json={}), 400)
        assert_error(client.post("/api/generate", json={"model": "../../etc/passwd"}), 400)
        missing = assert_error(client.post("/api/generate", json={"model": "no-such-model", "prompt": "Hi"}), 404)
        assert "not found" in missing
        assert "not found" in assert_error(client.post("/api/show", json={"model": "no-such-model"}), 404)
        assert_error(client.get("/api/no-such-route"), 404)
        # curl -d sends a form content type; Ollama reads the body as JSON all the same.
        form = client.post("/api/show", content=b'{"model": "smollm2"}',
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert form.status_code == 200, form.text
        assert_error(client.post("/no/such/route"), 404)
        assert server.process.poll() is None
        assert client.get("/api/version").status_code == 200


# -- OpenAPI -------------------------------------------------------------------------------


def test_openapi_lists_every_route(server):
    from hearth.server import ollama_routes, openai_routes

    defined = set()
    for router in (ollama_routes.router, openai_routes.router):
        for route in router.routes:
            # OpenAPI writes a converter-typed parameter ({name:path}) as plain {name}.
            path = re.sub(r"\{(\w+):\w+\}", r"{\1}", getattr(route, "path", ""))
            if getattr(route, "include_in_schema", False) and path.startswith(("/api", "/v1")):
                defined |= {(path, method.lower()) for method in route.methods}
    assert ("/api/chat", "post") in defined

    document = httpx.get(server.url + "/openapi.json", timeout=30).json()
    documented = {(path, method) for path, item in document["paths"].items() for method in item
                  if path.startswith(("/api", "/v1"))}
    assert defined <= documented, defined - documented

    body = document["paths"]["/api/chat"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("/ChatRequest")
    assert "messages" in document["components"]["schemas"]["ChatRequest"]["properties"]


# -- queue ---------------------------------------------------------------------------------


def test_full_queue_answers_503(start_server):
    # One request decoded at a time: one runs, one waits, the rest find the queue full.
    private = start_server(HEARTH_MAX_QUEUE="1", HEARTH_NUM_PARALLEL="1", **ONE_THREAD)
    with httpx.Client(base_url=private.url, timeout=60) as client:
        # Loaded first, so the requests below queue for the model rather than for the load.
        assert client.post("/api/generate", json={"model": "smollm2", "stream": False}).status_code == 200

    start = threading.Barrier(4)
    results: list[tuple[int, dict[str, str], list[dict]]] = []

    def one() -> None:
        with httpx.Client(base_url=private.url, timeout=120) as client:
            start.wait()
            with client.stream("POST", "/api/generate", json=generate_body(100)) as response:
                response.read()
                lines = [json.loads(line) for line in response.text.splitlines() if line.strip()]
                results.append((response.status_code, dict(response.headers), lines))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert len(results) == 4

    busy = [r for r in results if r[0] == 503]
    done = [r for r in results if r[0] == 200]
    assert busy, [r[0] for r in results]
    assert len(busy) + len(done) == 4, [r[0] for r in results]
    for _, headers, lines in busy:
        assert int(headers["retry-after"]) >= 1
        assert lines == [lines[0]] and "busy" in lines[0]["error"]
    assert done
    for _, _, lines in done:
        assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 100
        assert not any("error" in line for line in lines)


# -- client disconnect ---------------------------------------------------------------------


def wait_until_idle(url: str, timeout: float) -> float:
    """Seconds until no loaded model is in use (fails after ``timeout``)."""
    started = time.monotonic()
    while True:
        models = httpx.get(url + "/api/ps", timeout=30).json()["models"]
        if all(m["in_use"] == 0 for m in models):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, models
        time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def runner_pids(url: str) -> list[int]:
    models = httpx.get(url + "/api/ps", timeout=30).json()["models"]
    return [m["runner_pid"] for m in models if m.get("runner_pid")]


def test_client_disconnect_cancels_generation(server):
    with httpx.Client(base_url=server.url, timeout=60) as client, \
            client.stream("POST", "/api/generate", json=generate_body(2000)) as response:
        assert response.status_code == 200, response.read()
        lines = response.iter_lines()
        next(lines)
        next(lines)
        # Leaving the block closes the half-read connection.
    # A cancelled stream frees the model at its next token; 2000 tokens take 15 s or more.
    idle_after = wait_until_idle(server.url, timeout=12)
    # ...and its runner stops decoding: it uses (almost) no CPU while nothing is asked of it.
    for pid in runner_pids(server.url):
        before = cpu_seconds(pid)
        time.sleep(1.0)
        assert cpu_seconds(pid) - before < 0.3, "the runner still decodes the abandoned request"

    after = httpx.post(server.url + "/api/generate", json=generate_body(5, stream=False), timeout=120)
    assert after.status_code == 200, after.text
    final = after.json()
    assert final["eval_count"] == 5
    # Other processes may share these CPUs, so also judge by the speed the server has now:
    # the model was free long before it could have produced the 2000 tokens.
    per_second = final["eval_count"] / (final["eval_duration"] / 1e9)
    assert idle_after * per_second < 1000, (idle_after, per_second)
    # total_duration counts from arrival, so a wait for the model shows up in it.
    waited = (final["total_duration"] - final["load_duration"] - final["prompt_eval_duration"]
              - final["eval_duration"]) / 1e9
    assert waited * per_second < 100, (waited, per_second)
    wait_until_idle(server.url, timeout=5)


# -- shutdown ------------------------------------------------------------------------------


def test_sigterm_ends_streams_and_exits_cleanly(start_server):
    private = start_server(**ONE_THREAD)
    lines: list[dict] = []
    with httpx.Client(base_url=private.url, timeout=60) as client, \
            client.stream("POST", "/api/generate", json=generate_body(3000)) as response:
        assert response.status_code == 200
        for text in response.iter_lines():
            if text.strip():
                lines.append(json.loads(text))
            if len(lines) == 3:
                runners = runner_pids(private.url)
                signalled = time.monotonic()
                threading.Thread(target=private.process.send_signal, args=(signal.SIGTERM,)).start()
    assert len(lines) > 3
    assert lines[-1] == {"error": "server is shutting down"}, lines[-3:]
    assert sum(len(line.get("response", "")) for line in lines) < 3000

    private.process.wait(timeout=15)
    assert time.monotonic() - signalled < 10
    assert private.process.returncode in (0, -signal.SIGTERM), private.log()
    # The model's runner process goes with it.
    assert runners
    deadline = time.monotonic() + 10
    while not all(process_gone(pid) for pid in runners) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(process_gone(pid) for pid in runners)

    blobs = private.home / "models" / "blobs"
    assert not [p.name for p in blobs.iterdir() if p.name.startswith(".tmp-")]
    for blob in blobs.iterdir():
        assert blob.name == "sha256-" + file_sha256(blob)
    assert not list((private.home / "models").rglob(".tmp-*"))


def test_sigterm_exit_code_is_zero(start_server):
    private = start_server()
    private.process.send_signal(signal.SIGTERM)
    assert private.process.wait(timeout=15) == 0, private.log()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -- metrics -------------------------------------------------------------------------------


def metric_values(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_after_a_generation(server):
    generated = httpx.post(server.url + "/api/generate", json=generate_body(4, stream=False), timeout=60)
    assert generated.status_code == 200
    response = httpx.get(server.url + "/metrics", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = metric_values(response.text)
    assert values['hearth_requests_total{method="POST",route="/api/generate",status="200"}'] >= 1
    assert values["hearth_generated_tokens_total"] > 0
    assert values["hearth_prompt_tokens_total"] > 0
    assert values["hearth_loaded_models"] >= 1
    assert "hearth_queue_depth" in values
    assert values['hearth_loaded_model_bytes{model="smollm2:latest"}'] > 0
    # Unknown paths share one label, so a scanner cannot grow the metrics without bound.
    httpx.get(server.url + "/api/probe-a1b2c3", timeout=30)
    assert "probe-a1b2c3" not in httpx.get(server.url + "/metrics", timeout=30).text


def test_raw_socket_path_games_stay_inside(server):
    """A request line httpx would normalize: sent as is, it must not reach a file outside."""
    port = port_of(server.url)
    for target in ("/api/blobs/sha256:../../x", "/api/blobs/sha256:..%2F..%2Fx"):
        with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
            conn.sendall(f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 3\r\n"
                         "Connection: close\r\n\r\nabc".encode())
            reply = b""
            while chunk := conn.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 404), reply
        assert b'"error"' in reply
    assert not (server.home / "models" / "x").exists() and not (server.home / "x").exists()
