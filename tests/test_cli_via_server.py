"""The CLI talks to a running server when one answers at HEARTH_HOST."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.conftest import run_hearth

pytestmark = pytest.mark.e2e


def loaded_models(server) -> list[dict]:
    with urllib.request.urlopen(server.url + "/api/ps") as response:
        return json.load(response)["models"]


def test_run_goes_through_the_server_and_the_model_stays_loaded(start_server, tmp_path):
    server = start_server()
    env = server.env
    first = run_hearth(["run", "smollm2", "Name a colour.", "-o", "temperature=0", "-o", "num_predict=12",
                        "--verbose"], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip()
    # Loaded in the server, not in the CLI process: it is still there after the CLI exits.
    assert [m["name"] for m in loaded_models(server)] == ["smollm2:latest"]
    second = run_hearth(["run", "smollm2", "Name a colour.", "-o", "temperature=0", "-o", "num_predict=12",
                         "--verbose"], env)
    assert second.stdout == first.stdout
    load_line = next(line for line in second.stderr.splitlines() if line.startswith("load duration:"))
    assert load_line.split()[2] == "0.000s"

    ps = run_hearth(["ps"], env)
    assert "smollm2:latest" in ps.stdout and "CONTEXT" in ps.stdout
    assert run_hearth(["stop", "smollm2"], env).returncode == 0
    assert loaded_models(server) == []

    listed = run_hearth(["list"], env)
    assert "smollm2:latest" in listed.stdout
    assert run_hearth(["cp", "smollm2", "copy-of-smollm2"], env).returncode == 0
    assert "copy-of-smollm2:latest" in run_hearth(["list"], env).stdout
    shown = run_hearth(["show", "copy-of-smollm2", "--license"], env)
    assert "Apache License" in shown.stdout
    assert run_hearth(["rm", "copy-of-smollm2"], env).returncode == 0
    assert "copy-of-smollm2" not in run_hearth(["list"], env).stdout
    missing = run_hearth(["run", "no-such-model", "hi"], env)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_create_uploads_a_local_gguf_to_the_server(start_server, tiny_model, tmp_path):
    server = start_server()
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM {tiny_model}\nSYSTEM be brief\nPARAMETER temperature 0\n")
    created = run_hearth(["create", "tiny-remote", "-f", str(modelfile)], server.env)
    assert created.returncode == 0, created.stderr
    shown = run_hearth(["show", "tiny-remote", "--system"], server.env)
    assert shown.stdout.strip() == "be brief"
    # The server stored the weights in its own HEARTH_HOME.
    digest = tiny_model.read_bytes()
    import hashlib

    blob = server.home / "models" / "blobs" / f"sha256-{hashlib.sha256(digest).hexdigest()}"
    assert blob.is_file()
    answer = run_hearth(["run", "tiny-remote", "hello", "-o", "num_predict=4"], server.env)
    assert answer.returncode == 0, answer.stderr


def test_ps_and_stop_without_a_server(tmp_path):
    from tests.conftest import hearth_env

    env = hearth_env(tmp_path / "home")
    ps = run_hearth(["ps"], env)
    assert ps.returncode == 0 and "no hearth server" in ps.stderr
    stop = run_hearth(["stop", "smollm2"], env)
    assert stop.returncode == 1 and "no hearth server" in stop.stderr
