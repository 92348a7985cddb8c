"""The web app: its static files and JSON routes (in-process, with the guard), and the app in a
real headless chromium (Debian's, through Playwright) against real `hearth serve` processes.

Every browser test saves screenshots under tests/artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, HearthServer, copy_home, hearth_env
from tests.fake_provider import FakeProvider
from tests.tinymodel import write_tiny_model

ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
# The machine has no internet: chromium must not try to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
KEY = "web-s3cret"
ONE_THREAD = {"HEARTH_NUM_THREAD": "1"}


def without_provider_keys() -> dict[str, str]:
    """Blank out the preset providers' keys of whoever runs the tests (no real service is called)."""
    return {name: "" for name in os.environ if name.endswith("_API_KEY") and not name.startswith("HEARTH_")}


# -- in-process: static files and JSON routes behind the guard --------------------------------


@pytest.fixture
def app_client(hearth_home: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch):
    from fastapi.testclient import TestClient

    from hearth.runtime import Runtime
    from hearth.server.app import create_app

    for name in without_provider_keys():
        monkeypatch.delenv(name, raising=False)
    runtime = Runtime()
    runtime.create("tiny", from_path=tiny_model)
    with TestClient(create_app(runtime), base_url="http://127.0.0.1:11435") as client:
        yield client
    runtime.close()


def test_static_files_have_their_types_and_a_content_security_policy(app_client):
    expected = {
        "/app/js/main.js": "text/javascript",
        "/app/js/markdown.js": "text/javascript",
        "/app/style.css": "text/css",
        "/app/icon.svg": "image/svg+xml",
        "/app/index.html": "text/html",
    }
    for path, media_type in expected.items():
        response = app_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].split(";")[0] == media_type, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "script-src 'self'" in response.headers["content-security-policy"]
    # HEAD answers the same headers without a body.
    head = app_client.head("/app/style.css")
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(app_client.get("/app/style.css").content)


def test_root_serves_the_app_to_browsers_and_text_to_api_clients(app_client):
    page = app_client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "Accept" in page.headers["vary"]
    assert '<script type="module" src="/app/js/main.js">' in page.text
    # No inline script or style anywhere in the page (the policy would block them).
    assert not re.search(r"<script(?![^>]*\bsrc=)", page.text) and "style=" not in page.text

    for accept in (None, "*/*", "application/json"):
        headers = {"Accept": accept} if accept else {}
        plain = app_client.get("/", headers=headers)
        assert plain.status_code == 200 and plain.text == "hearth is running", accept
        assert "content-security-policy" not in plain.headers


def test_static_file_lookup_refuses_traversal_hidden_and_unknown_files():
    from hearth.server.web_routes import WEB_ROOT, web_file

    assert web_file("js/main.js") == WEB_ROOT / "js" / "main.js"
    for bad in ("../server/app.py", "js/../../server/app.py", "..", "", "/etc/passwd", "js//main.js",
                ".hidden.js", "js/.x.js", "js\\..\\main.js", "index.html\x00.js", "js", "missing.js",
                "../../../../pyproject.toml", "js/main.py", "./index.html"):
        assert web_file(bad) is None, bad


def test_missing_static_file_is_a_json_404(app_client):
    response = app_client.get("/app/nope.js")
    assert response.status_code == 404
    assert "nope.js" in response.json()["error"]


def test_hearth_routes_follow_the_guard(app_client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HEARTH_API_KEY", KEY)
    routes = ["/api/hearth/models", "/api/hearth/catalog?q=smollm2", "/api/hearth/remote?list=false",
              "/api/hearth/license?model=tiny", "/api/hearth/fit?model=tiny", "/api/hearth/doctor"]
    for path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            refused = app_client.get(path, headers=headers)
            assert refused.status_code == 401, (path, headers)
            assert "API key" in refused.json()["error"]
        allowed = app_client.get(path, headers={"Authorization": f"Bearer {KEY}"})
        assert allowed.status_code == 200, (path, allowed.text)
        foreign = app_client.get(path, headers={"Authorization": f"Bearer {KEY}", "Host": "evil.example"})
        assert foreign.status_code == 403, path
    # The app's page and files load without the key (the browser asks for the key afterwards);
    # a file path cannot be bent into a protected route.
    assert app_client.get("/", headers={"Accept": "text/html"}).status_code == 200
    assert app_client.get("/app/js/api.js").status_code == 200
    assert app_client.get("/app/style.css", headers={"Host": "evil.example"}).status_code == 403
    assert app_client.post("/app/js/api.js").status_code in (401, 405)


def test_doctor_route_reports_what_the_cli_does(app_client, hearth_home: Path):
    report = app_client.get("/api/hearth/doctor").json()
    assert report["ok"], report["problems"]
    assert report["home"]["path"] == str(hearth_home.resolve()) and report["home"]["models"] == 1
    assert report["self_test"]["ok"] and report["self_test"]["tokens_per_second"] > 0
    assert "CPU" in report["engine"]["backends"]


def test_installed_models_route_reports_license_fit_and_shape(app_client):
    models = app_client.get("/api/hearth/models").json()["models"]
    tiny = next(m for m in models if m["name"] == "tiny:latest")
    assert tiny["error"] is None
    assert tiny["architecture"] == "llama"
    assert tiny["context_length"] == 256
    assert tiny["parameter_count"] > 0
    assert tiny["license_id"] == "Apache-2.0"
    assert tiny["license"]["commercial_use"] == "yes" and tiny["license"]["known"] is True
    assert tiny["fit"]["verdict"] in ("fits", "tight", "too large", "unknown")
    assert tiny["fit"]["total_bytes"] >= tiny["fit"]["weights_bytes"] > 0


def test_catalog_route_adds_license_fit_and_installed(app_client):
    found = app_client.get("/api/hearth/catalog", params={"q": "smollm2"}).json()
    smollm2 = next(e for e in found["entries"] if e["model"] == "smollm2")
    assert smollm2["license_summary"]["id"] == "Apache-2.0"
    assert smollm2["license_summary"]["commercial_use"] == "yes"
    tag = smollm2["tags"][0]
    assert tag["fit"]["verdict"] in ("fits", "tight", "too large", "unknown")
    assert tag["installed"] is False and tag["size"] > 0
    assert app_client.get("/api/hearth/catalog", params={"q": "zzz-no-such-model"}).json()["entries"] == []
    assert app_client.get("/api/hearth/catalog", params={"q": "x" * 300}).status_code == 400


def test_license_and_fit_routes_for_installed_catalog_and_unknown_models(app_client):
    assert app_client.get("/api/hearth/license", params={"model": "tiny"}).json()["id"] == "Apache-2.0"
    assert app_client.get("/api/hearth/license", params={"model": "smollm2"}).json()["commercial_use"] == "yes"
    assert app_client.get("/api/hearth/fit", params={"model": "tiny", "ctx": 128}).json()["context_length"] == 128
    assert app_client.get("/api/hearth/fit", params={"model": "smollm2"}).json()["weights_bytes"] > 90_000_000
    for route in ("license", "fit"):
        missing = app_client.get(f"/api/hearth/{route}", params={"model": "no-such-model"})
        assert missing.status_code == 404 and "no-such-model" in missing.json()["error"]
        invalid = app_client.get(f"/api/hearth/{route}", params={"model": "../etc"})
        assert invalid.status_code == 400 and invalid.json()["error"]
    assert app_client.get("/api/hearth/fit", params={"model": "tiny", "ctx": 1}).status_code == 400


def test_remote_route_lists_configured_providers(app_client, hearth_home: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeProvider(models=("fake-model", "gpt-4o")) as fake:
        (hearth_home / "providers.toml").write_text(f'[providers.fake]\nbase_url = "{fake.base_url}"\n')
        body = app_client.get("/api/hearth/remote").json()
        assert body["offline"] is False
        by_name = {p["name"]: p for p in body["providers"]}
        assert by_name["fake"]["ready"] is True and by_name["fake"]["error"] is None
        assert [m["name"] for m in by_name["fake"]["models"]] == ["fake/fake-model", "fake/gpt-4o"]
        assert by_name["fake"]["models"][0]["context_length"] == 8192
        # A preset without its key is listed as not ready, and is never called.
        assert by_name["groq"]["ready"] is False and by_name["groq"]["key_env"] == "GROQ_API_KEY"
        calls = len(fake.requests)

        assert app_client.get("/api/hearth/remote?list=false").json()["providers"]
        monkeypatch.setenv("HEARTH_OFFLINE", "1")
        offline = app_client.get("/api/hearth/remote").json()
        assert offline["offline"] is True
        assert len(fake.requests) == calls, "nothing may be asked of a provider offline or with list=false"


def test_openapi_documents_the_hearth_routes(app_client):
    document = app_client.get("/openapi.json").json()
    for path, schema in [("/api/hearth/catalog", "CatalogSearchResponse"), ("/api/hearth/models", "InstalledModelsResponse"),
                         ("/api/hearth/license", "LicenseSummary"), ("/api/hearth/fit", "FitInfo"),
                         ("/api/hearth/remote", "RemoteModelsResponse")]:
        ok = document["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith("/" + schema), path
    assert not any(path.startswith("/app") for path in document["paths"])


def raw_get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """GET with the path sent exactly as given (HTTP clients would normalise ``..``)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        response = b""
        while chunk := connection.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


TRAVERSALS = [
    "/app/../../pyproject.toml", "/app/js/../../server/app.py", "/app/%2e%2e/server/app.py",
    "/app/%2E%2E/%2E%2E/config.py", "/app/js%2f..%2f..%2fserver%2fapp.py", "/app/..%5c..%5cerrors.py",
    "/app/..%2f..%2f..%2fpyproject.toml", "/app/.%2e/cli/app.py", "/app//etc/passwd", "/app/%00index.html",
    "/app/../api/tags",
]


# -- hearth app ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_hearth_app_starts_a_server_once_and_prints_the_url(tmp_path: Path):
    port = free_port()
    home = tmp_path / "home"
    env = hearth_env(home, HEARTH_HOST=f"127.0.0.1:{port}")
    run = [sys.executable, "-m", "hearth", "app", "--no-browser"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    pid = None
    try:
        assert first.returncode == 0, first.stderr
        found = re.search(r"\(pid (\d+), log (.+)\)", first.stdout)
        assert found, first.stdout
        pid = int(found.group(1))
        assert Path(found.group(2)) == home / "logs" / "server.log"
        assert f"web app: http://127.0.0.1:{port}/" in first.stdout
        page = httpx.get(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"}, timeout=10)
        assert page.status_code == 200 and "/app/js/main.js" in page.text

        again = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout and "pid" not in again.stdout

        stop = [sys.executable, "-m", "hearth", "app", "--stop"]
        stopped = subprocess.run(stop, env=env, capture_output=True, text=True, timeout=60)
        assert stopped.returncode == 0 and f"stopped hearth serve (pid {pid})" in stopped.stdout
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/api/version", timeout=5)
        assert not (home / "app-server.pid").exists()
        pid = None
        nothing = subprocess.run(stop, env=env, capture_output=True, text=True, timeout=60)
        assert nothing.returncode == 1 and "no server started by `hearth app`" in nothing.stderr
    finally:
        if pid:
            os.kill(pid, 15)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)


def test_hearth_app_reports_a_server_that_cannot_start(tmp_path: Path):
    # Port 1 needs root to bind (and nothing answers there): the started server exits at once.
    env = hearth_env(tmp_path / "home", HEARTH_HOST="127.0.0.1:1")
    if os.geteuid() == 0:
        env["HEARTH_HOST"] = "192.0.2.1:9"  # TEST-NET: not an address of this machine
    result = subprocess.run([sys.executable, "-m", "hearth", "app", "--no-browser", "--timeout", "30"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: hearth serve exited"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- in the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class App:
    """One browser tab on the app, in a fresh profile (its own localStorage). JavaScript errors
    on the page fail the test."""

    def __init__(self, browser, url: str, *, width: int = 1280, height: int = 860, scheme: str = "light",
                 route: str = "#/chat") -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, color_scheme=scheme,
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        # A blocked script, style or connection would show here (the page's CSP).
        self.page.on("console", lambda message: self.errors.append(message.text)
                     if message.type == "error" and "Failed to load resource" not in message.text else None)
        self.url = url
        self.page.goto(f"{url}/{route}")
        self.page.wait_for_selector("#server-version:not(:empty)")

    def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"webapp-{name}.png"
        self.page.screenshot(path=str(path), animations="disabled")
        return path

    def goto(self, route: str) -> None:
        self.page.evaluate(f"location.hash = '{route}'")

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


@pytest.fixture
def open_app(browser) -> Iterator:
    opened: list[App] = []

    def make(url: str, **options) -> App:
        app = App(browser, url, **options)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture(scope="module")
def web_server(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    home = copy_home(smollm2_home, tmp_path_factory.mktemp("web") / "home")
    running = HearthServer(home, **ONE_THREAD, **without_provider_keys())
    yield running
    running.stop()


LAST_ANSWER = "[...document.querySelectorAll('.msg.assistant')].pop()"
# At temperature 0 the default model answers this with hundreds of tokens (time to stop it).
LONG_PROMPT = "Write the numbers from 1 to 500 separated by commas."


def set_parameters(page, *, num_predict: int | None = None, temperature: float | None = None,
                   system: str | None = None) -> None:
    if page.get_attribute("#toggle-params", "aria-expanded") != "true":
        page.click("#toggle-params")
    if num_predict is not None:
        page.fill("#param-num-predict", str(num_predict))
    if temperature is not None:
        page.fill("#param-temperature", str(temperature))
    if system is not None:
        page.fill("#param-system", system)


def send(page, text: str) -> None:
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def wait_for_answer(page, timeout: float = 120_000) -> str:
    page.wait_for_function(f"() => {{ const a = {LAST_ANSWER}; return a && /tokens\\/s|stopped/.test("
                           f"a.querySelector('.msg-stats').textContent) }}", timeout=timeout)
    return page.evaluate(f"{LAST_ANSWER}.querySelector('.msg-stats').textContent")


@pytest.mark.e2e
def test_chat_streams_a_markdown_answer_with_speed_figures(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    page.select_option("#model-picker", "smollm2:latest")
    assert "Apache-2.0" in page.inner_text("#model-badges")
    assert re.search(r"fits|tight|too large", page.inner_text("#model-badges"))
    set_parameters(page, num_predict=48, temperature=0)
    send(page, "Write a Python function that adds two numbers, in a code block.")
    # Text appears while the answer is still being generated (the Stop button is showing).
    page.wait_for_function(f"() => {{ const a = {LAST_ANSWER}; return a && !document.querySelector('#stop').hidden"
                           " && a.querySelector('.msg-body').textContent.trim().length > 0 && !a.querySelector('.typing') }")
    streamed = page.evaluate(f"{LAST_ANSWER}.querySelector('.msg-body').textContent")
    stats = wait_for_answer(page)
    final = page.evaluate(f"{LAST_ANSWER}.querySelector('.msg-body').textContent")
    assert streamed and len(final) >= len(streamed)
    tokens_per_second = float(re.search(r"([\d.]+) tokens/s", stats).group(1))
    assert tokens_per_second > 0
    assert re.search(r"first token [\d.]+ s", stats)
    assert 0 < int(re.match(r"(\d+) tokens ·", stats).group(1)) <= 48
    assert page.is_hidden("#stop") and page.is_visible("#send")
    # The conversation is kept in this browser under the first words of the prompt.
    assert "Write a Python function" in page.inner_text("#conversation-list")
    app.shot("chat-light")


@pytest.mark.e2e
def test_stop_with_escape_then_regenerate(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    set_parameters(page, num_predict=3000, temperature=0)
    send(page, LONG_PROMPT)
    page.wait_for_function(f"() => {LAST_ANSWER}.querySelector('.msg-body').textContent.trim().length > 20")
    page.keyboard.press("Escape")
    stats = wait_for_answer(page, timeout=30_000)
    assert "stopped by you" in stats
    stopped_text = page.evaluate(f"{LAST_ANSWER}.querySelector('.msg-body').textContent")
    assert stopped_text
    # The server let go of the request: nothing stays busy.
    deadline = time.monotonic() + 20
    while any(m["in_use"] for m in httpx.get(web_server.url + "/api/ps").json()["models"]):
        assert time.monotonic() < deadline, "the stopped request still holds the model"
        time.sleep(0.1)

    set_parameters(page, num_predict=16, temperature=0)
    page.click(".regenerate")
    stats = wait_for_answer(page)
    assert 0 < int(re.match(r"(\d+) tokens ·", stats).group(1)) <= 16 and "stopped by you" not in stats
    assert page.locator(".msg.assistant").count() == 1, "regenerate replaces the last answer"
    assert page.locator(".msg.user").count() == 1
    app.shot("chat-regenerated")


@pytest.mark.e2e
def test_conversations_persist_rename_export_and_delete(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    set_parameters(page, num_predict=8, temperature=0, system="You answer briefly.")
    send(page, "Say hello")
    wait_for_answer(page)
    page.click("#new-chat")
    send(page, "Name a colour")
    wait_for_answer(page)
    assert page.locator("#conversation-list li").count() == 2

    # Kept across a reload (localStorage), newest first.
    page.reload()
    page.wait_for_selector("#conversation-list li")
    assert page.locator("#conversation-list .conv-open").all_inner_texts() == ["Name a colour", "Say hello"]

    page.click("#conversation-list li:nth-child(2) .conv-open")
    assert page.inner_text(".msg.user .msg-body") == "Say hello"
    page.click("#conversation-list li:nth-child(2) button[title='Rename']")
    page.fill("#conversation-list input.rename", "Greeting test")
    page.press("#conversation-list input.rename", "Enter")
    page.wait_for_selector("#conversation-list .conv-open:text('Greeting test')")
    page.click("#conversation-list .conv-open:text('Greeting test')")

    with page.expect_download() as download_info:
        page.click("#export-json")
    exported = json.loads(Path(download_info.value.path()).read_text())
    assert exported["title"] == "Greeting test" and exported["system"] == "You answer briefly."
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant"]
    assert exported["messages"][1]["content"] and exported["options"]["num_predict"] == 8
    assert download_info.value.suggested_filename == "Greeting-test.json"
    with page.expect_download() as download_info:
        page.click("#export-md")
    markdown = Path(download_info.value.path()).read_text()
    assert markdown.startswith("# Greeting test") and "## User\n\nSay hello" in markdown
    app.shot("conversations")

    page.click("#conversation-list li.current button[title='Delete']")
    page.click("dialog button:text('Delete')")
    page.wait_for_function("() => document.querySelectorAll('#conversation-list .conv-open').length === 1")
    assert page.locator("#conversation-list .conv-open").all_inner_texts() == ["Name a colour"]
    stored = page.evaluate("JSON.parse(localStorage.getItem('hearth.conversations.v1'))")
    assert [c["title"] for c in stored] == ["Name a colour"]


@pytest.mark.e2e
def test_markdown_renderer_keeps_model_text_inert(web_server, open_app):
    app = open_app(web_server.url)
    rendered = app.page.evaluate("""async () => {
        const { renderMarkdown } = await import('/app/js/markdown.js');
        const box = document.createElement('div');
        box.append(renderMarkdown([
          '# Title <img src=x onerror="window.pwned=1">',
          '<script>window.pwned=2</script> **bold** and *it* and `x<y`',
          '[click](javascript:window.pwned=3) [ok](https://example.org/a?b=1) <https://example.com>',
          '- one', '- two', '  1. nested', '',
          '| a | b |', '|---|--:|', '| <b>1</b> | 2 |', '',
          '```python', 'def f(x):  # <i>c</i>', '    return "s" + 1', '```',
        ].join('\\n')));
        document.body.append(box);
        await new Promise((r) => setTimeout(r, 100));
        return {
          pwned: window.pwned || null,
          dangerous: box.querySelectorAll('img, script, iframe, b, i, [onerror]').length,
          hrefs: [...box.querySelectorAll('a')].map((a) => a.getAttribute('href')),
          text: box.textContent,
          tags: [...box.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()),
          spans: [...box.querySelectorAll('pre span')].map((s) => s.className + ':' + s.textContent),
        };
    }""")
    assert rendered["pwned"] is None and rendered["dangerous"] == 0
    assert rendered["hrefs"] == ["https://example.org/a?b=1", "https://example.com"]
    assert "<script>window.pwned=2</script>" in rendered["text"] and "<b>1</b>" in rendered["text"]
    for tag in ("h1", "strong", "em", "code", "ul", "ol", "table", "pre"):
        assert tag in rendered["tags"], tag
    assert "tok-keyword:def" in rendered["spans"] and "tok-keyword:return" in rendered["spans"]
    assert 'tok-string:"s"' in rendered["spans"] and "tok-comment:# <i>c</i>" in rendered["spans"]

    # Even a script element that got into the page would not run: the CSP allows files only.
    ran = app.page.evaluate("""() => { const s = document.createElement('script');
        s.textContent = 'window.inline = 1'; document.body.append(s); return window.inline || null }""")
    assert ran is None
    assert any("Content Security Policy" in error for error in app.errors)
    app.errors.clear()


@pytest.mark.e2e
def test_models_page_shows_facts_details_and_unloads(web_server, open_app):
    # Loaded first, so the page has something to unload.
    httpx.post(web_server.url + "/api/generate", json={"model": "smollm2", "stream": False}, timeout=120)
    app = open_app(web_server.url, route="#/models")
    page = app.page
    card = page.locator(".model-card[data-model='smollm2:latest']")
    card.wait_for()
    page.wait_for_selector(".model-card[data-model='smollm2:latest'] .badge:text('loaded')")
    text = card.inner_text()
    assert "98.4 MB" in text and "Q4_1" in text and "8,192 context" in text and "parameters" in text
    assert "Apache-2.0" in text and "commercial use: yes" in text
    assert re.search(r"\bfits\b|\btight\b|too large", text)
    app.shot("models")

    card.locator("button:text('Details')").click()
    dialog = page.locator("dialog.details-dialog")
    dialog.wait_for()
    assert "Apache License" in dialog.locator("details:has(summary:text('License text')) pre").inner_text()
    dialog.locator("summary:text('Chat template')").click()
    assert "im_start" in dialog.locator("details:has(summary:text('Chat template')) pre").inner_text()
    dialog.locator("summary:has-text('Metadata')").click()
    assert "llama.context_length" in dialog.inner_text()
    app.shot("model-details")
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")

    card.locator("button:text('Unload')").click()
    page.wait_for_selector(".model-card[data-model='smollm2:latest'] .badge:text('not loaded')")
    assert httpx.get(web_server.url + "/api/ps").json()["models"] == []


@pytest.mark.e2e
def test_server_page_shows_load_speed_and_working_snippets(web_server, open_app):
    httpx.post(web_server.url + "/api/generate", json={"model": "smollm2", "prompt": "Hi", "stream": False,
                                                       "options": {"num_predict": 8}}, timeout=120)
    app = open_app(web_server.url, route="#/server")
    page = app.page
    page.wait_for_selector("#loaded-models tr[data-model='smollm2:latest']")
    row = page.inner_text("#loaded-models tr[data-model='smollm2:latest']")
    assert re.search(r"\d+ min \d+ s", row), row
    first = page.inner_text("#loaded-models .countdown")
    page.wait_for_function(f"() => document.querySelector('#loaded-models .countdown').textContent !== {json.dumps(first)}",
                           timeout=5000)
    speed = page.inner_text(".tile[data-metric='Tokens/s (last)'] .tile-value")
    assert float(speed) > 0
    assert page.inner_text(".tile[data-metric='Queue depth'] .tile-value") == "0"
    assert "GROQ_API_KEY" in page.inner_text("#providers-list")
    # The system check: hearth doctor's facts, with the test decode on the default model.
    page.wait_for_selector("#doctor .doctor-status", timeout=120_000)
    assert page.inner_text("#doctor .doctor-status") == "All good"
    assert re.search(r"smollm2: \d+ tokens at [\d.]+ tok/s", page.inner_text("#doctor dd[data-fact='Self-test']"))
    assert "CPU" in page.inner_text("#doctor dd[data-fact='Backends']")
    app.shot("server")
    page.locator("#doctor").scroll_into_view_if_needed()
    app.shot("server-doctor")

    # The snippets run as they are shown, against this server.
    for client in ("openai", "ollama"):
        code = page.inner_text(f".snippet[data-client='{client}'] code")
        assert web_server.url in code
        code = code.replace('"Why is the sky blue?"', '"Say hi"')
        code = code.replace("messages=[", 'options={"num_predict": 8}, messages=[' if client == "ollama"
                            else "max_tokens=8, messages=[")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip(), client


@pytest.mark.e2e
def test_unknown_models_are_explained(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    # A conversation whose model was deleted since: the picker says so, the server's 404 is shown.
    page.evaluate("""localStorage.setItem('hearth.conversations.v1', JSON.stringify([{
        id: 'c1', title: 'Old chat', titled: true, model: 'gone-model:latest', system: '', options: {},
        messages: [], created: 1, updated: 1}]))""")
    page.reload()
    page.wait_for_selector("#model-badges .badge:text('not installed')")
    assert page.input_value("#model-picker") == "gone-model:latest"
    send(page, "Hello?")
    error = page.locator(".msg.assistant .msg-error")
    error.wait_for()
    assert "gone-model" in error.inner_text() and "not found" in error.inner_text()
    app.shot("error-unknown-model")

    app.goto("#/discover")
    page.fill("#pull-input", "no-such-model-xyz")
    page.press("#pull-input", "Enter")
    failed = page.locator("#pull-progress .download[data-state='failed']")
    failed.wait_for()
    assert "no-such-model-xyz" in failed.locator(".error").inner_text()
    assert "catalog" in failed.locator(".error").inner_text()


@pytest.mark.e2e
def test_busy_server_is_explained(start_server, open_app):
    busy = start_server(HEARTH_MAX_QUEUE="1", HEARTH_NUM_PARALLEL="1", **ONE_THREAD)
    httpx.post(busy.url + "/api/generate", json={"model": "smollm2", "stream": False}, timeout=120)
    stop = threading.Event()

    def hold() -> None:
        # A raw count the model continues until it is stopped.
        body = {"model": "smollm2", "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "raw": True,
                "options": {"temperature": 0, "num_predict": 20000}}
        with httpx.Client(base_url=busy.url, timeout=120) as client, \
                client.stream("POST", "/api/generate", json=body) as response:
            for _ in response.iter_lines():
                if stop.is_set():
                    return

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(2)]
    try:
        for holder in holders:
            holder.start()
            time.sleep(0.5)
        deadline = time.monotonic() + 30
        while "hearth_queue_depth 1" not in httpx.get(busy.url + "/metrics").text:
            assert time.monotonic() < deadline, "the second request never queued"
            time.sleep(0.1)
        app = open_app(busy.url)
        page = app.page
        page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
        send(page, "Hello")
        error = page.locator(".msg.assistant .msg-error")
        error.wait_for()
        assert error.inner_text().startswith("The server is busy")
        assert "Try again in" in error.inner_text()
        app.shot("error-busy")
    finally:
        stop.set()
        for holder in holders:
            holder.join(timeout=60)


@pytest.mark.e2e
def test_raw_paths_cannot_leave_the_web_folder(web_server):
    for path in TRAVERSALS:
        status, body = raw_get(web_server.url, path)
        assert status in (400, 404), (path, status)
        assert b"[project]" not in body and b"import" not in body and b"root:" not in body, path
        assert b"smollm2" not in body, path
    status, body = raw_get(web_server.url, "/app/js/main.js")
    assert status == 200 and b"import" in body


@pytest.mark.e2e
def test_api_key_is_asked_for_and_used(start_server, open_app):
    private = start_server(HEARTH_API_KEY=KEY, **ONE_THREAD)
    # The app's files load without the key; no path through them reaches a protected route.
    assert raw_get(private.url, "/app/style.css")[0] == 200
    for path in ("/app/../api/tags", "/app/%2e%2e/api/tags", "/app/..%2fapi%2ftags"):
        status, body = raw_get(private.url, path)
        assert status == 404 and b"smollm2" not in body, path
    assert raw_get(private.url, "/api/tags")[0] == 401
    app = open_app(private.url)
    page = app.page
    banner = page.locator("#banner")
    banner.wait_for()
    assert "API key" in banner.inner_text()
    page.click("#settings-open")
    assert page.evaluate("document.activeElement.id") == "settings-api-key"
    page.keyboard.type(KEY)
    page.keyboard.press("Enter")
    banner.wait_for(state="hidden")
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    set_parameters(page, num_predict=8)
    send(page, "Hi")
    assert "tokens/s" in wait_for_answer(page)
    assert page.evaluate("localStorage.getItem('hearth.apiKey')") == KEY
    app.goto("#/server")
    assert "HEARTH_API_KEY" in page.locator(".snippet[data-client='openai'] code").inner_text()


@pytest.mark.e2e
def test_cloud_models_are_marked_in_the_picker(smollm2_home: Path, tmp_path: Path, open_app):
    with FakeProvider(models=("fake-model",), delay=0.1) as fake:
        home = copy_home(smollm2_home, tmp_path / "home")
        (home / "providers.toml").write_text(f'[providers.fake]\nbase_url = "{fake.base_url}"\n')
        server = HearthServer(home, **without_provider_keys())
        try:
            app = open_app(server.url)
            page = app.page
            page.wait_for_selector("#model-picker option[value='fake/fake-model']", state="attached")
            group = page.locator("#model-picker optgroup:has(option[value='fake/fake-model'])")
            assert group.get_attribute("label") == "Cloud: data leaves this machine"
            assert "cloud: data leaves this machine" in page.inner_text("#model-picker option[value='fake/fake-model']")
            assert page.is_hidden("#cloud-warning")
            page.select_option("#model-picker", "fake/fake-model")
            assert page.is_visible("#cloud-warning") and fake.base_url in page.inner_text("#cloud-warning")
            assert "cloud: data leaves this machine" in page.inner_text("#model-badges")
            send(page, "Hello cloud")
            stats = wait_for_answer(page)
            assert page.evaluate(f"{LAST_ANSWER}.querySelector('.msg-body').textContent") == "Hello from the fake provider."
            assert f"answered by {fake.base_url}" in stats
            app.shot("cloud-model")
            assert fake.posts()[-1].body["messages"][-1]["content"] == "Hello cloud"
        finally:
            server.stop()


@pytest.mark.e2e
def test_keyboard_narrow_window_and_themes(web_server, open_app):
    app = open_app(web_server.url, width=390, height=780, scheme="dark")
    page = app.page
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(22, 21, 20)"
    # Shift+Enter is a new line, Enter sends.
    page.click("#prompt")
    page.keyboard.type("Hello")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("there")
    assert page.input_value("#prompt") == "Hello\nthere" and page.locator(".msg").count() == 0
    set_parameters(page, num_predict=12)
    page.click("#toggle-params")
    page.focus("#prompt")
    page.keyboard.press("Enter")
    wait_for_answer(page)
    assert page.inner_text(".msg.user .msg-body") == "Hello\nthere"
    fits = "document.documentElement.scrollWidth <= window.innerWidth"
    assert page.evaluate(fits)
    assert page.is_hidden("#conversations .conv-open") or not page.is_visible("#new-chat")
    app.shot("narrow-dark-chat")
    page.click("#toggle-conversations")
    page.wait_for_selector("#conversations.open #new-chat")
    assert page.evaluate("document.activeElement.id") == "new-chat"
    app.shot("narrow-dark-conversations")
    page.keyboard.press("Escape")
    page.wait_for_selector("#conversations:not(.open)", state="attached")
    assert page.evaluate("document.activeElement.id") == "toggle-conversations"
    for route in ("models", "discover", "server"):
        app.goto(f"#/{route}")
        page.wait_for_timeout(800)
        assert page.evaluate(fits), route
        app.shot(f"narrow-dark-{route}")

    # The toggle switches to light and the choice outlives a reload.
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.reload()
    page.wait_for_selector("#server-version:not(:empty)")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(247, 246, 243)"
    app.shot("narrow-light-server")

    # Tab order from the top: brand, the four sections, theme, settings.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("Tab")
    order = []
    for _ in range(7):
        order.append(page.evaluate("document.activeElement.textContent.trim() || document.activeElement.id"))
        page.keyboard.press("Tab")
    assert order[1:5] == ["Chat", "Models", "Discover", "Server"], order


@pytest.mark.e2e
def test_download_license_dialog_progress_cancel_and_delete(smollm2_home: Path, package_index, tmp_path: Path,
                                                            open_app):
    from tests.file_server import serve_files

    weights = next((smollm2_home / "models" / "blobs").glob("sha256-b179c952*"))
    restricted = write_tiny_model(tmp_path / "tiny-chat.gguf", license="llama3.1")
    rate = 4_000_000
    with serve_files(bytes_per_second=rate) as slow, serve_files() as fast:
        slow_url = slow.add("/models/SmolLM2-135M-Instruct.Q4_1.gguf", weights)
        restricted_url = fast.add("/models/tiny-chat.gguf", restricted)
        server = HearthServer(tmp_path / "home", **ONE_THREAD, **package_index.pip_env(), **without_provider_keys())
        try:
            app = open_app(server.url, route="#/discover")
            page = app.page
            box = page.locator("#pull-progress .download")

            # A license that must be accepted: declining stops before anything is stored.
            page.fill("#pull-input", restricted_url)
            page.press("#pull-input", "Enter")
            dialog = page.locator("dialog.license-dialog")
            dialog.wait_for()
            assert "Llama 3.1" in dialog.inner_text() and "Commercial use" in dialog.inner_text()
            app.shot("license-dialog")
            dialog.locator("button:text('Cancel')").click()
            page.wait_for_selector("#pull-progress .download[data-state='cancelled']")
            assert "license not accepted" in box.inner_text()
            assert httpx.get(server.url + "/api/tags").json()["models"] == []
            # Accepted: the pull goes ahead.
            page.press("#pull-input", "Enter")
            dialog.wait_for()
            dialog.locator("button:text('Accept and download')").click()
            page.wait_for_selector("#pull-progress .download[data-state='done']")
            assert [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]] == ["tiny-chat:latest"]

            # A live progress bar (bytes, speed, time left); Cancel stops the transfer on the server.
            page.fill("#pull-input", slow_url)
            page.press("#pull-input", "Enter")
            page.wait_for_function("() => document.querySelector('#pull-progress progress').value > 3")
            numbers = box.locator(".download-numbers").inner_text()
            assert re.search(r"[\d.]+ MB of 98.4 MB · [\d.]+ MB/s · .+ left", numbers), numbers
            app.shot("download-progress")
            box.locator("button:text('Cancel')").click()
            page.wait_for_selector("#pull-progress .download[data-state='cancelled']")
            time.sleep(1.5)
            sent = slow.bytes_sent
            time.sleep(2)
            assert slow.bytes_sent - sent <= rate // 2, "the server kept downloading after the cancel"
            assert sent < weights.stat().st_size // 2
            assert len(httpx.get(server.url + "/api/tags").json()["models"]) == 1

            # From the catalog: the chosen quantization downloads to 100%.
            page.fill("#search-input", "smollm2")
            page.press("#search-input", "Enter")
            card = page.locator(".catalog-card[data-model='smollm2']")
            card.wait_for()
            assert "Apache-2.0" in card.inner_text() and "commercial use: yes" in card.inner_text()
            assert re.search(r"\bfits\b|\btight\b|too large", card.inner_text())
            # One download per card at a time: the button waits for this one to end.
            assert card.locator("button:text('Download')").evaluate("b => { b.click(); return b.disabled }")
            card.locator(".download[data-state='done']").wait_for(timeout=120_000)
            assert card.locator(".download").count() == 1
            assert card.locator("progress").evaluate("bar => bar.value") == 100
            assert card.locator(".download-percent").inner_text() == "100%"
            assert card.locator(".download-status").inner_text() == "downloaded"
            assert "installed" in card.locator("select option").first.inner_text()
            app.shot("download-done")
            names = {m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]}
            assert names == {"smollm2:135m", "tiny-chat:latest"}, names

            # The new model is in the picker, and deleting it (confirmed) removes it.
            app.goto("#/chat")
            page.wait_for_selector("#model-picker option[value='smollm2:135m']", state="attached")
            app.goto("#/models")
            model_card = page.locator(".model-card[data-model='smollm2:135m']")
            model_card.locator("button:text('Delete')").click()
            confirm = page.locator("dialog")
            confirm.wait_for()
            assert "smollm2:135m" in confirm.inner_text()
            app.shot("delete-confirm")
            confirm.locator("button:text('Delete')").click()
            model_card.wait_for(state="detached")
            assert page.locator(".model-card").count() == 1
            assert [m["name"] for m in httpx.get(server.url + "/api/tags").json()["models"]] == ["tiny-chat:latest"]
        finally:
            server.stop()


@pytest.mark.e2e
def test_damaged_stored_conversations_do_not_stop_the_app(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    # Storage from an older version, another tab or a hand edit: the app starts, repairs what it
    # can (as text: a title or model name is never markup) and drops the rest.
    xss = '<img src=x onerror="window.pwned=1">'
    page.evaluate("""(xss) => localStorage.setItem('hearth.conversations.v1', JSON.stringify([
        null, 1, 'text', {title: 'no id'},
        {id: 'c1', title: xss, model: xss, system: null, options: 'x', messages: 'oops', updated: 2},
        {id: 'c"]2', title: 7, messages: [{role: 'user', content: 5}, {role: 'assistant', content: 'Hi', pending: true},
                                         {role: 'tool'}, null], updated: 1},
    ]))""", xss)
    page.evaluate("localStorage.setItem('hearth.defaults', '[1')")
    page.reload()
    page.wait_for_selector("#server-version:not(:empty)")
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    assert page.locator("#conversation-list .conv-open").all_inner_texts() == [xss, "Untitled"]
    assert page.evaluate("window.pwned || null") is None and page.locator("img[src=x]").count() == 0
    assert page.input_value("#model-picker") == xss
    page.click("#conversation-list .conv-open:text('Untitled')")
    assert page.locator(".msg").count() == 2
    assert page.inner_text(".msg.user .msg-body") == ""
    assert "cut short" in page.inner_text(".msg.assistant .msg-error")
    # A title that is not a valid CSS selector can still be renamed.
    page.click("#conversation-list li.current button[title='Rename']")
    page.fill("#conversation-list input.rename", "Repaired")
    page.press("#conversation-list input.rename", "Enter")
    page.wait_for_selector("#conversation-list .conv-open:text('Repaired')")
    # And a new chat still works.
    page.click("#new-chat")
    set_parameters(page, num_predict=8, temperature=0)
    send(page, "Hi")
    assert "tokens/s" in wait_for_answer(page)


@pytest.mark.e2e
def test_answer_survives_a_reload_and_a_switch_of_conversation(web_server, open_app):
    app = open_app(web_server.url)
    page = app.page
    page.wait_for_selector("#model-picker option[value='smollm2:latest']", state="attached")
    set_parameters(page, num_predict=3000, temperature=0)
    send(page, LONG_PROMPT)
    page.wait_for_function(f"() => {LAST_ANSWER}.querySelector('.msg-body').textContent.trim().length > 20")
    # Esc in another view does not stop the answer.
    app.goto("#/discover")
    page.focus("#search-input")
    page.keyboard.press("Escape")
    app.goto("#/chat")
    assert page.is_visible("#stop")

    # A reload mid-answer keeps the question and what had arrived, marked as cut short.
    page.reload()
    page.wait_for_selector("#conversation-list .conv-open:text('Write the numbers from 1 to 500')")
    assert page.locator(".msg.user").count() == 1
    assert page.inner_text(".msg.assistant .msg-body").strip()
    assert "cut short" in page.inner_text(".msg.assistant .msg-error")
    deadline = time.monotonic() + 20
    while any(m["in_use"] for m in httpx.get(web_server.url + "/api/ps").json()["models"]):
        assert time.monotonic() < deadline, "the abandoned request still holds the model"
        time.sleep(0.1)

    # A new chat while an answer streams: the old answer stops, the new chat can send at once.
    page.click(".regenerate")
    page.wait_for_function(f"() => {LAST_ANSWER}.querySelector('.msg-body').textContent.trim().length > 20")
    page.click("#new-chat")
    assert page.is_visible("#send") and page.is_hidden("#stop")
    set_parameters(page, num_predict=8)
    send(page, "Say hi")
    assert "tokens/s" in wait_for_answer(page)
    page.click("#conversation-list .conv-open:text('Write the numbers from 1 to 500')")
    assert "stopped by you" in page.inner_text(".msg.assistant .msg-stats")
    stored = page.evaluate("JSON.parse(localStorage.getItem('hearth.conversations.v1'))")
    assert sorted(len(c["messages"]) for c in stored) == [2, 2]
    assert not any(m.get("pending") for c in stored for m in c["messages"])
