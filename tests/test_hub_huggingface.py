"""Pulls from Hugging Face (hf.co/OWNER/REPO[:QUANT] and huggingface.co URLs) against a fake
Hub on loopback ports (tests/fake_huggingface.py) that huggingface_hub itself talks to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.errors import (
    DigestMismatch,
    DownloadFailed,
    InvalidRequest,
    LicenseNotAccepted,
    ModelNotFound,
)
from hearth.hub.huggingface import HFReference, parse_reference
from hearth.hub.pull import pull_model
from hearth.store import MediaType, ModelStore
from tests.conftest import hearth_env, run_hearth
from tests.fake_huggingface import COMMIT, FakeHub, FakeRepo, fake_hub
from tests.tinymodel import write_tiny_model

TOKEN = "hf_test_token_123"


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Tiny GGUFs under several quantization names (each file is different)."""
    folder = tmp_path_factory.mktemp("hf-ggufs")
    return {quant: write_tiny_model(folder / f"{quant}.gguf", seed=i, license=None).read_bytes()
            for i, quant in enumerate(["Q2_K", "Q4_K_M", "Q8_0", "Q5_K_M", "Q3_K_M"])}


@pytest.fixture
def hub(hearth_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(hearth_home.parent / "hf-home"))  # no saved token is found
    with fake_hub(token=TOKEN) as running:
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        yield running


@pytest.fixture
def store(hearth_home: Path) -> ModelStore:
    return ModelStore(hearth_home)


def quant_repo(ggufs: dict[str, bytes], quants: list[str], **options) -> FakeRepo:
    files = {f"Tiny-Chat-{q}.gguf": ggufs[q] for q in quants}
    files["README.md"] = b"# Tiny chat\n"
    return FakeRepo(files=files, **options)


def test_default_pull_takes_q4_k_m_and_records_the_license(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(
        ggufs, ["Q2_K", "Q4_K_M", "Q8_0"], card={"license": "apache-2.0"}, gguf={"context_length": 256}))
    hub.repos["tests/tiny-chat-gguf"].files["LICENSE"] = b"Apache License 2.0 (test copy)\n"
    events = []
    model = pull_model(store, "hf.co/Tests/Tiny-Chat-GGUF", events.append)
    assert model.name.full == "hf.co/tests/tiny-chat-gguf:latest"
    assert model.model_path.read_bytes() == ggufs["Q4_K_M"]
    assert model.config["license_id"] == "apache-2.0"
    assert model.config["source"] == f"hf:Tests/Tiny-Chat-GGUF/Tiny-Chat-Q4_K_M.gguf@{COMMIT}"
    assert model.licenses == ["Apache License 2.0 (test copy)\n"]
    assert events[-1].status == "success"
    assert any(e.total == len(ggufs["Q4_K_M"]) and e.completed == e.total for e in events)
    # the file was fetched at the commit the model info named, through the redirect to the CDN
    resolved = [p for m, p, _ in hub.requests if "/resolve/" in p]
    assert f"/Tests/Tiny-Chat-GGUF/resolve/{COMMIT}/Tiny-Chat-Q4_K_M.gguf" in resolved
    assert hub.cdn_gets() == 1


def test_quant_in_the_name_picks_the_file(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(ggufs, ["Q2_K", "Q4_K_M", "Q8_0"],
                                                    card={"license": "mit"}))
    model = pull_model(store, "hf.co/Tests/Tiny-Chat-GGUF:q8_0")
    assert model.name.short == "hf.co/tests/tiny-chat-gguf:q8_0"
    assert model.model_path.read_bytes() == ggufs["Q8_0"]


def test_without_q4_k_m_the_closest_quantization_is_taken(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Other-GGUF", quant_repo(ggufs, ["Q8_0", "Q5_K_M", "Q3_K_M"],
                                                tags=["license:apache-2.0"]))
    model = pull_model(store, "hf.co/Tests/Other-GGUF")
    assert model.model_path.read_bytes() == ggufs["Q5_K_M"]
    assert model.config["license_id"] == "apache-2.0"  # from the license:xxx tag


def test_unknown_quantization_lists_those_available(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(ggufs, ["Q2_K", "Q4_K_M", "Q8_0"]))
    with pytest.raises(ModelNotFound, match=r"these quantizations: Q8_0, Q4_K_M, Q2_K"):
        pull_model(store, "hf.co/Tests/Tiny-Chat-GGUF:IQ2_XS")
    assert hub.cdn_gets() == 0


def test_license_needing_acceptance_is_asked_before_downloading(hub, store, ggufs) -> None:
    hub.add_repo("Meta/Tiny-Llama-GGUF", quant_repo(
        ggufs, ["Q4_K_M"], card={"license": "other", "license_name": "llama3.1"}))
    with pytest.raises(LicenseNotAccepted, match="Llama-3.1"):
        pull_model(store, "hf.co/Meta/Tiny-Llama-GGUF")
    assert hub.cdn_gets() == 0
    model = pull_model(store, "hf.co/Meta/Tiny-Llama-GGUF", accept_license=True)
    assert model.config["license_id"] == "llama3.1"


def test_hf_token_is_sent_to_the_hub_but_not_to_the_cdn(hub, store, ggufs, monkeypatch) -> None:
    hub.add_repo("Private/Tiny-GGUF", quant_repo(ggufs, ["Q4_K_M"], private=True, card={"license": "mit"}))
    with pytest.raises(ModelNotFound, match="HF_TOKEN"):
        pull_model(store, "hf.co/Private/Tiny-GGUF")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    model = pull_model(store, "hf.co/Private/Tiny-GGUF")
    assert model.model_path.read_bytes() == ggufs["Q4_K_M"]
    def authorization(headers: dict[str, str]) -> str | None:
        return {k.lower(): v for k, v in headers.items()}.get("authorization")

    # the model info call (huggingface_hub) and the file request (hearth) both carried it
    last_two = [headers for _m, path, headers in hub.requests][-2:]
    assert [authorization(h) for h in last_two] == [f"Bearer {TOKEN}"] * 2
    assert hub.cdn.requests and all(authorization(h) is None for _m, _p, h in hub.cdn.requests)


def test_gated_repository_explains_what_to_do(hub, store, ggufs) -> None:
    hub.add_repo("Gated/Tiny-GGUF", quant_repo(ggufs, ["Q4_K_M"], gated=True, card={"license": "mit"}))
    with pytest.raises(Exception, match="access denied"):
        pull_model(store, "hf.co/Gated/Tiny-GGUF")
    assert list(store.list()) == []


def test_unreachable_hub_is_one_clear_error(store, monkeypatch) -> None:
    # huggingface_hub's connection errors come from httpx/httpx2 and are no OSErrors.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:1")
    with pytest.raises(DownloadFailed, match="cannot reach Hugging Face at http://127.0.0.1:1"):
        pull_model(store, "hf.co/Tests/Tiny-GGUF")


def test_wrong_lfs_sha256_stores_nothing(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Bad-GGUF", quant_repo(ggufs, ["Q4_K_M"], card={"license": "mit"},
                                              lie_about={"Tiny-Chat-Q4_K_M.gguf"}))
    with pytest.raises(DigestMismatch, match="nothing was stored"):
        pull_model(store, "hf.co/Tests/Bad-GGUF")
    assert list(store.list()) == []
    blobs = list(store.blobs.root.iterdir()) if store.blobs.root.exists() else []
    assert [b for b in blobs if b.stat().st_size == len(ggufs["Q4_K_M"])] == []


def test_split_and_missing_ggufs_are_refused_clearly(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Split-GGUF", FakeRepo(files={
        "Big-Q4_K_M-00001-of-00002.gguf": ggufs["Q4_K_M"], "Big-Q4_K_M-00002-of-00002.gguf": b"x"},
        card={"license": "mit"}))
    with pytest.raises(InvalidRequest, match="split into 2 files"):
        pull_model(store, "hf.co/Tests/Split-GGUF")
    hub.add_repo("Tests/No-GGUF", FakeRepo(files={"model.safetensors": b"x"}, card={"license": "mit"}))
    with pytest.raises(ModelNotFound, match="no GGUF files"):
        pull_model(store, "hf.co/Tests/No-GGUF")
    with pytest.raises(ModelNotFound, match="no such repository"):
        pull_model(store, "hf.co/Tests/Absent")


def test_repository_and_file_urls(hub, store, ggufs) -> None:
    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(ggufs, ["Q2_K", "Q4_K_M"], card={"license": "mit"}))
    model = pull_model(store, f"{hub.url}/Tests/Tiny-Chat-GGUF")
    assert model.name.short == "hf.co/tests/tiny-chat-gguf:latest"
    model = pull_model(store, f"{hub.url}/Tests/Tiny-Chat-GGUF/blob/main/Tiny-Chat-Q2_K.gguf")
    assert model.name.short == "hf.co/tests/tiny-chat-gguf:q2_k"
    assert model.model_path.read_bytes() == ggufs["Q2_K"]


@pytest.mark.parametrize(("text", "expected"), [
    ("hf.co/Owner/Repo", HFReference("Owner/Repo")),
    ("hf.co/Owner/Repo:q4_k_m", HFReference("Owner/Repo", quant="Q4_K_M")),
    ("huggingface.co/Owner/Repo:latest", HFReference("Owner/Repo")),
    ("https://huggingface.co/Owner/Repo", HFReference("Owner/Repo")),
    ("https://huggingface.co/Owner/Repo/resolve/main/sub/F-Q8_0.gguf?download=true",
     HFReference("Owner/Repo", filename="sub/F-Q8_0.gguf", revision="main")),
    ("https://example.com/Owner/Repo", None),
    ("smollm2", None),
])
def test_references_are_parsed(text: str, expected, monkeypatch) -> None:
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert parse_reference(text) == expected


def test_catalog_entries_with_hf_sources(hub, store, ggufs) -> None:
    import hashlib

    from hearth.catalog.entries import CatalogTag
    from hearth.hub.pull import run_plan
    from hearth.hub.source_catalog import catalog_plan
    from hearth.names import ModelName

    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(ggufs, ["Q8_0"], card={"license": "mit"}))
    data = ggufs["Q8_0"]
    tag = CatalogTag(model="tinychat", tag="q8", publisher="tests", family="tiny", description="",
                     license="MIT", weights="open", context_length=256, parameter_size="70K",
                     quantization="Q8_0", size=len(data),
                     source={"type": "hf", "repo": "Tests/Tiny-Chat-GGUF", "file": "Tiny-Chat-Q8_0.gguf",
                             "sha256": hashlib.sha256(data).hexdigest()},
                     parameters={"temperature": 0.5})
    name = ModelName.parse("tinychat:q8")
    plan = catalog_plan(store, name, tag)
    assert (plan.size, plan.license_id, plan.context_length) == (len(data), "MIT", 256)
    model = run_plan(store, plan)
    assert model.model_path.read_bytes() == data
    assert model.parameters == {"temperature": 0.5}
    assert model.manifest.layer(MediaType.MODEL).size == len(data)


def test_cli_pulls_from_the_hub_with_progress(hub, ggufs, tmp_path) -> None:
    hub.add_repo("Tests/Tiny-Chat-GGUF", quant_repo(ggufs, ["Q4_K_M"], card={"license": "apache-2.0"}))
    home = tmp_path / "cli-home"
    env = hearth_env(home, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"))
    result = run_hearth(["pull", "hf.co/Tests/Tiny-Chat-GGUF:Q4_K_M"], env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "success" in result.stderr
    assert f"/ {len(ggufs['Q4_K_M']) / 1000:.1f} KB (100%)" in result.stderr
    listed = run_hearth(["list"], env)
    assert "hf.co/tests/tiny-chat-gguf:q4_k_m" in listed.stdout
