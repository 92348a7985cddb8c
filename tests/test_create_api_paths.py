"""/api/create reads no file outside the store (Ollama's CVE-2024-39719 was exactly this).

Through the API a model comes from an installed model or from blobs uploaded with
POST /api/blobs (``files`` / ``adapters``, or ``@sha256:...`` in a modelfile); every path, in
``from`` or in a modelfile's FROM or ADAPTER, gets one 400 whose body is the same byte for byte
whether the path exists or not, and nothing is created. ``hearth create`` keeps reading the
user's own files: in-process, or uploading them to the server first.

Checked against a real ``hearth serve`` on loopback, started in a folder and with a HOME that
hold real GGUF files, so that ``./x.gguf``, ``../x.gguf`` and ``~/x.gguf`` exist for it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hearth.errors import InvalidRequest
from hearth.modelfile import PATHS_REFUSED, Sources, names_a_path
from tests.conftest import HearthServer, run_hearth
from tests.tinymodel import write_tiny_lora, write_tiny_model


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cwd = root / "work" / "cwd"        # the server's working directory
        self.home = root / "work" / "user-home"  # the server's HOME
        for folder in (self.cwd, self.home):
            folder.mkdir(parents=True)
        self.outside = write_tiny_model(root / "outside" / "secret.gguf", seed=11)
        self.outside_lora = write_tiny_lora(root / "outside" / "secret-lora.gguf", self.outside)
        # Real GGUF files where relative and ~ paths lead, for the server.
        for spot in (self.cwd / "x.gguf", self.cwd.parent / "x.gguf", self.home / "x.gguf"):
            spot.write_bytes(self.outside.read_bytes())
        self.missing = root / "outside" / "missing.gguf"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    return Setup(tmp_path_factory.mktemp("paths"))


@pytest.fixture(scope="module")
def server(setup: Setup) -> Iterator[HearthServer]:
    before = os.getcwd()
    os.chdir(setup.cwd)  # the child inherits it; Path.cwd() in the server is this folder
    try:
        running = HearthServer(setup.root / "hearth-home", HOME=str(setup.home))
    finally:
        os.chdir(before)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def http(server: HearthServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def upload(http: httpx.Client, path: Path) -> str:
    data = path.read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = http.post(f"/api/blobs/{digest}", content=data)
    assert response.status_code == 201, response.text
    return digest


def models(http: httpx.Client) -> set[str]:
    return {m["name"] for m in http.get("/api/tags").json()["models"]}


def blobs(server: HearthServer) -> set[str]:
    folder = server.home / "models" / "blobs"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def digest_of(path: Path) -> str:
    return "sha256-" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def base_model(http: httpx.Client, setup: Setup) -> str:
    """An installed model made the API's way (an uploaded blob), for FROM and ADAPTER."""
    base = write_tiny_model(setup.root / "client" / "base.gguf", seed=12)
    digest = upload(http, base)
    created = http.post("/api/create", json={"model": "base", "files": {"base.gguf": digest},
                                             "stream": False})
    assert created.status_code == 200, created.text
    return "base"


def path_requests(setup: Setup, base: str) -> dict[str, dict]:
    """Create requests that each name a path on the server, existing or missing."""
    existing, missing = str(setup.outside), str(setup.missing)
    lora = str(setup.outside_lora)
    return {
        "from existing": {"from": existing},
        "from missing": {"from": missing},
        "from ~ existing": {"from": "~/x.gguf"},
        "from ~ missing": {"from": "~/nothing.gguf"},
        "from .. existing": {"from": "../x.gguf"},
        "from .. missing": {"from": "../nothing.gguf"},
        "from ./ existing": {"from": "./x.gguf"},
        "from bare .gguf existing": {"from": "x.gguf"},
        "from file:// existing": {"from": "file://" + existing},
        "from file:// missing": {"from": "file://" + missing},
        "from dir/../ existing": {"from": "work/../x.gguf"},
        "modelfile FROM existing": {"modelfile": f"FROM {existing}\n"},
        "modelfile FROM missing": {"modelfile": f"FROM {missing}\n"},
        "modelfile FROM quoted existing": {"modelfile": f'FROM "{existing}"\nSYSTEM hi\n'},
        "modelfile FROM ~ existing": {"modelfile": "FROM ~/x.gguf\n"},
        "modelfile FROM ../ existing": {"modelfile": "FROM ../x.gguf\n"},
        "modelfile ADAPTER existing": {"modelfile": f"FROM {base}\nADAPTER {lora}\n"},
        "modelfile ADAPTER missing": {"modelfile": f"FROM {base}\nADAPTER {missing}\n"},
        "modelfile ADAPTER relative existing": {"modelfile": f"FROM {base}\nADAPTER x.gguf\n"},
        "from beside empty files": {"from": existing, "files": {}},
    }


def test_every_path_gets_one_answer_and_nothing_is_created(http, server, setup, base_model):
    before_models, before_blobs = models(http), blobs(server)
    answers: dict[str, bytes] = {}
    for label, fields in path_requests(setup, base_model).items():
        for stream in (False, True):
            body = {"model": "stolen", "stream": stream, **fields}
            response = http.post("/api/create", json=body)
            assert response.status_code == 400, (label, stream, response.text)
            answers[f"{label} stream={stream}"] = response.content
    # Byte-identical: an existing and a missing path cannot be told apart.
    assert set(answers.values()) == {answers["from existing stream=False"]}, answers
    assert httpx.Response(400, content=answers["from existing stream=False"]).json() == {
        "error": PATHS_REFUSED}
    assert models(http) == before_models
    assert blobs(server) == before_blobs
    assert digest_of(setup.outside) not in blobs(server)
    assert digest_of(setup.outside_lora) not in blobs(server)


def test_the_error_does_not_name_the_path(http, setup):
    response = http.post("/api/create", json={"model": "m", "from": str(setup.outside), "stream": False})
    assert response.status_code == 400
    assert str(setup.outside) not in response.text and "secret" not in response.text


def test_create_from_an_uploaded_blob_works(http, setup):
    model = write_tiny_model(setup.root / "client" / "up.gguf", seed=5)
    digest = upload(http, model)
    created = http.post("/api/create", json={"model": "uploaded", "files": {"up.gguf": digest},
                                             "system": "be brief", "stream": False})
    assert created.status_code == 200, created.text
    shown = http.post("/api/show", json={"model": "uploaded"}).json()
    assert shown["system"] == "be brief"
    # Ollama's modelfile spelling for an uploaded blob works too, also streamed.
    with http.stream("POST", "/api/create", json={"model": "uploaded-mf",
                                                   "modelfile": f"FROM @{digest}\nSYSTEM hi\n"}) as streamed:
        assert streamed.status_code == 200
        lines = [line for line in streamed.iter_lines() if line.strip()]
    assert '"success"' in lines[-1]
    assert {"uploaded:latest", "uploaded-mf:latest"} <= models(http)
    missing = "sha256:" + "0" * 64
    refused = http.post("/api/create", json={"model": "nope", "files": {"m.gguf": missing}, "stream": False})
    assert refused.status_code == 400 and "not on the server" in refused.json()["error"]
    refused = http.post("/api/create", json={"model": "nope", "modelfile": f"FROM @{missing}\n",
                                             "stream": False})
    assert refused.status_code == 400 and "not on the server" in refused.json()["error"]
    assert "nope:latest" not in models(http)


def test_an_adapter_from_an_uploaded_blob_works(http, setup, base_model):
    base = setup.root / "client" / "base.gguf"
    lora = write_tiny_lora(setup.root / "client" / "lora.gguf", base, seed=3)
    digest = upload(http, lora)
    created = http.post("/api/create", json={"model": "tuned", "from": base_model,
                                             "adapters": {"lora.gguf": digest}, "stream": False})
    assert created.status_code == 200, created.text
    shown = http.post("/api/show", json={"model": "tuned"}).json()
    assert len(shown["adapters"]) == 1 and digest.replace(":", "-") in shown["adapters"][0]
    created = http.post("/api/create", json={"model": "tuned-mf", "stream": False,
                                             "modelfile": f"FROM {base_model}\nADAPTER @{digest}\n"})
    assert created.status_code == 200, created.text
    assert len(http.post("/api/show", json={"model": "tuned-mf"}).json()["adapters"]) == 1


def test_the_cli_through_the_server_uploads_local_files(server, setup, tmp_path):
    """``hearth create -f Modelfile`` with a server: the CLI reads the user's files and uploads
    them (FROM and ADAPTER), the server reads none."""
    model = write_tiny_model(tmp_path / "mine.gguf", seed=9)
    write_tiny_lora(tmp_path / "mine-lora.gguf", model, seed=4)
    (tmp_path / "Modelfile").write_text("FROM ./mine.gguf\nADAPTER ./mine-lora.gguf\nSYSTEM local\n")
    created = run_hearth(["create", "cli-made", "-f", str(tmp_path / "Modelfile")], server.env)
    assert created.returncode == 0, created.stderr
    shown = run_hearth(["show", "cli-made", "--system"], server.env)
    assert shown.stdout.strip() == "local"
    assert digest_of(model) in blobs(server)


def test_the_runtime_refuses_paths_itself_when_store_only(tmp_path, setup):
    """The refusal lives in the runtime's create, not only in the route."""
    from hearth.runtime import Runtime
    from hearth.store import ModelStore

    runtime = Runtime(ModelStore(tmp_path / "home"))
    for options in ({"from_path": setup.outside}, {"modelfile": f"FROM {setup.outside}\n"},
                    {"modelfile": "FROM x.gguf\n", "base_dir": setup.cwd},
                    {"modelfile": f"FROM @sha256:{'0' * 64}\nADAPTER {setup.outside_lora}\n"}):
        with pytest.raises(InvalidRequest) as refused:
            runtime.create("m", sources=Sources.STORE_ONLY, **options)
        assert refused.value.message == PATHS_REFUSED, options
    assert runtime.list_models().models == []
    # The user's own process may still read their files.
    assert runtime.create("mine", from_path=setup.outside).name.short == "mine:latest"


@pytest.mark.parametrize("value", ["/x.gguf", "./x", "../x", "~/x", "~", "x.gguf", "sub/x.GGUF", ".",
                                   "..", "file:///x", "FILE:x", "C:\\x.bin", "c:/x", "a\\b",
                                   "a/../b", " /padded "])
def test_paths_are_told_by_their_spelling(value):
    assert names_a_path(value)


@pytest.mark.parametrize("value", ["smollm2", "llama3.2:1b", "library/tiny:latest",
                                   "hf.co/owner/repo:Q4_K_M", "@sha256:" + "a" * 64])
def test_names_and_blobs_are_not_paths(value):
    assert not names_a_path(value)
