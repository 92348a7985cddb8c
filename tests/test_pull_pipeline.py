"""The pull pipeline through its front ends: `hearth pull` as a subprocess and POST /api/pull on
a real `hearth serve`, with models served by loopback file servers and a fake Hugging Face."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import HearthServer, hearth_env, run_hearth
from tests.fake_huggingface import FakeRepo, fake_hub
from tests.file_server import serve_files
from tests.tinymodel import write_tiny_model


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # No license in the header: a URL pull of it must be accepted.
    return write_tiny_model(tmp_path_factory.mktemp("pull") / "Tiny-Test-Q4_K_M.gguf", license=None)


@pytest.fixture
def hub_server(tmp_path: Path, tiny_file: Path) -> Iterator[tuple[HearthServer, object]]:
    """A `hearth serve` whose HF_ENDPOINT is a fake Hub with a Llama-licensed repository."""
    with fake_hub() as hub:
        hub.add_repo("Meta/Tiny-GGUF", FakeRepo(files={"Tiny-Q4_K_M.gguf": tiny_file.read_bytes()},
                                                card={"license": "other", "license_name": "llama3.1"}))
        home = tmp_path / "home"
        server = HearthServer(home, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
        try:
            yield server, hub
        finally:
            server.stop()


def test_cli_pulls_a_url_with_progress_and_names_it(tmp_path: Path, tiny_file: Path) -> None:
    home = tmp_path / "home"
    with serve_files() as files:
        url = files.add("/models/Tiny-Test-Q4_K_M.gguf", tiny_file.read_bytes())
        refused = run_hearth(["pull", url], hearth_env(home))
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines()[-1].startswith("Error: ")
        assert "--accept-license" in refused.stderr
        result = run_hearth(["pull", url, "--accept-license", "--max-speed", "5M"], hearth_env(home))
    assert result.returncode == 0, result.stderr
    size_kb = f"{tiny_file.stat().st_size / 1000:.1f} KB"
    assert f"pulling Tiny-Test-Q4_K_M.gguf: {size_kb} / {size_kb} (100%)" in result.stderr
    assert "stored as tiny-test:q4_k_m" in result.stderr
    listed = run_hearth(["list"], hearth_env(home))
    assert "tiny-test:q4_k_m" in listed.stdout
    bad = run_hearth(["pull", url, "--max-speed", "fast"], hearth_env(home))
    assert bad.returncode == 1 and "invalid speed 'fast'" in bad.stderr


def test_cli_imports_a_local_file(tmp_path: Path, tiny_file: Path) -> None:
    home = tmp_path / "home"
    result = run_hearth(["pull", str(tiny_file)], hearth_env(home))
    assert result.returncode == 0, result.stderr
    assert "tiny-test:q4_k_m" in run_hearth(["list"], hearth_env(home)).stdout


def test_api_pull_answers_403_with_the_license_before_any_stream(hub_server) -> None:
    server, hub = hub_server
    response = httpx.post(server.url + "/api/pull", json={"model": "hf.co/Meta/Tiny-GGUF"}, timeout=60)
    assert response.status_code == 403
    body = response.json()
    assert body["needs_acceptance"] is True
    assert body["license"]["id"] == "Llama-3.1" and body["license"]["osi_approved"] is False
    assert "--accept-license" in body["error"] or "accept" in body["error"]
    assert hub.cdn_gets() == 0
    lines = []
    with httpx.stream("POST", server.url + "/api/pull", timeout=60,
                      json={"model": "hf.co/Meta/Tiny-GGUF", "accept_license": True}) as streamed:
        assert streamed.status_code == 200
        lines = [json.loads(line) for line in streamed.iter_lines() if line.strip()]
    assert lines[-1] == {"status": "success"}
    # The license is shown before any weight arrives.
    statuses = [line["status"] for line in lines]
    license_line = statuses.index("license: Llama-3.1 · not OSI · commercial: conditional")
    first_bytes = next(i for i, line in enumerate(lines) if line.get("completed"))
    assert license_line < first_bytes
    # Download events carry bytes done, total and speed.
    done = [line for line in lines if line.get("completed") and line.get("completed") == line.get("total")]
    assert done and done[-1]["speed"] > 0
    tags = httpx.get(server.url + "/api/tags").json()
    assert [m["name"] for m in tags["models"]] == ["hf.co/meta/tiny-gguf:latest"]


def test_cli_through_a_server_needs_acceptance_then_pulls(hub_server) -> None:
    server, _hub = hub_server
    refused = run_hearth(["pull", "hf.co/Meta/Tiny-GGUF"], server.env)
    assert refused.returncode == 1 and "Llama-3.1" in refused.stderr
    accepted = run_hearth(["pull", "hf.co/Meta/Tiny-GGUF", "--accept-license"], server.env)
    assert accepted.returncode == 0, accepted.stderr
    assert "success" in accepted.stderr


def test_api_pull_refuses_server_side_paths_and_bad_speeds(hub_server, tiny_file: Path) -> None:
    server, _hub = hub_server
    response = httpx.post(server.url + "/api/pull", json={"model": str(tiny_file)}, timeout=30)
    assert response.status_code == 400 and "upload it" in response.json()["error"]
    response = httpx.post(server.url + "/api/pull", json={"model": "hf.co/Meta/Tiny-GGUF",
                                                          "max_speed": "quick"}, timeout=30)
    assert response.status_code == 400 and "invalid speed" in response.json()["error"]


def test_client_that_goes_away_cancels_the_download_and_a_later_pull_resumes(tmp_path) -> None:
    server = HearthServer(tmp_path / "home")
    data = write_tiny_model(tmp_path / "Tiny-Test-Q4_K_M.gguf", n_embd=128, n_layers=2).read_bytes()
    peek = 256 << 10  # the plan reads the GGUF header first
    try:
        with serve_files(bytes_per_second=500_000) as files:
            url = files.add("/Tiny-Test-Q4_K_M.gguf", data)
            with httpx.stream("POST", server.url + "/api/pull", timeout=60,
                              json={"model": url, "accept_license": True, "max_speed": "1M"}) as streamed:
                for line in streamed.iter_lines():
                    event = json.loads(line)
                    if (event.get("completed") or 0) > 0:
                        break  # leaving the block closes the connection mid-stream
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sent = files.bytes_sent
                time.sleep(1.0)
                if files.bytes_sent == sent:
                    break
            assert files.bytes_sent - peek < len(data), "the download went on after the client left"
            partials = list((server.home / "tmp").glob(".tmp-*-dl-*"))
            assert [p for p in partials if not p.name.endswith(".json") and p.stat().st_size > 0]
            files.bytes_per_second = 0
            sent_before = files.bytes_sent
            response = httpx.post(server.url + "/api/pull", timeout=60,
                                  json={"model": url, "accept_license": True, "stream": False})
            assert response.status_code == 200, response.text
            assert files.bytes_sent - sent_before - peek < len(data)  # resumed, not started over
            assert httpx.get(server.url + "/api/tags").json()["models"][0]["name"] == "tiny-test:q4_k_m"
    finally:
        server.stop()


def test_an_unknown_tag_of_a_catalog_model_lists_the_tags_there_are(tmp_path: Path) -> None:
    from hearth.errors import ModelNotFound
    from hearth.hub.pull import pull_model
    from hearth.store import ModelStore

    with pytest.raises(ModelNotFound) as missing:
        pull_model(ModelStore(tmp_path / "home"), "smollm2:nosuchtag")
    assert "135m" in missing.value.message and "not in hearth's catalog" not in missing.value.message
    with pytest.raises(ModelNotFound) as unknown:
        pull_model(ModelStore(tmp_path / "home"), "nosuchmodel")
    assert "not in hearth's catalog" in unknown.value.message
    assert not (tmp_path / "home" / "models" / "manifests").exists()
