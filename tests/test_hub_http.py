"""HTTP downloads into the store (hub/transfer.py) and pulls of URLs and local files, against a
real file server on a loopback port that drops connections, fails and throttles on purpose."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from hearth.errors import DigestMismatch, DownloadFailed, InvalidRequest, StoreError
from hearth.hub import ranged_parts, retries, transfer
from hearth.hub.pull import pull_model
from hearth.hub.retries import DownloadCancelled
from hearth.hub.source_files import name_from_filename
from hearth.hub.transfer import download_to_blob
from hearth.store import ModelStore
from tests.file_server import serve_files
from tests.tinymodel import write_tiny_model


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(hearth_home: Path) -> ModelStore:
    return ModelStore(hearth_home)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retries, "RETRY_DELAY", 0.01)


def leftovers(home: Path) -> list[Path]:
    tmp = home / "tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


def downloads(server, path: str) -> int:
    """GETs of ``path`` other than the peek at its first 256 KiB (the GGUF header, for the license)."""
    return sum(1 for r in ranges_asked(server, path) if r != "bytes=0-262143")


def ranges_asked(server, path: str) -> list[str]:
    return [headers.get("Range", "") for method, p, headers in server.requests if method == "GET" and p == path]


def test_download_resumes_after_dropped_connections(store: ModelStore) -> None:
    data = os.urandom(1_500_000)
    events = []
    with serve_files(drop_after=400_000, drops=2) as server:
        url = server.add("/blob", data)
        digest, size = download_to_blob(store, url, expected_digest=digest_of(data), progress=events.append,
                                        status="pulling blob")
    assert (digest, size) == (digest_of(data), len(data))
    assert store.blobs.path(digest).read_bytes() == data
    assert ranges_asked(server, "/blob") == ["bytes=0-", "bytes=400000-", "bytes=800000-"]
    assert events[-1].completed == events[-1].total == len(data)
    assert leftovers(store.home) == []


def test_wrong_sha256_stores_nothing(store: ModelStore) -> None:
    data = os.urandom(300_000)
    with serve_files() as server:
        url = server.add("/blob", data)
        with pytest.raises(DigestMismatch, match="nothing was stored"):
            download_to_blob(store, url, expected_digest=digest_of(b"other bytes"), progress=print,
                             status="pulling")
    assert not store.blobs.root.exists() or list(store.blobs.root.iterdir()) == []
    assert leftovers(store.home) == []


def test_transfer_that_never_recovers_fails_clearly_and_a_later_pull_resumes(store: ModelStore) -> None:
    data = os.urandom(1_000_000)
    with serve_files(drop_after=600_000, drops=1, fail_after_total=600_000) as server:
        url = server.add("/blob", data)
        with pytest.raises(DownloadFailed, match="stopped at 600000 of 1000000 bytes.*pull again to resume"):
            download_to_blob(store, url, expected_digest=digest_of(data), progress=print, status="pulling")
        assert not store.blobs.has(digest_of(data))
        partials = [p for p in leftovers(store.home) if "-dl-" in p.name and not p.name.endswith(".json")]
        assert len(partials) == 1 and partials[0].stat().st_size == 600_000
        server.fail_after_total = None
        digest, _ = download_to_blob(store, url, expected_digest=digest_of(data), progress=print,
                                     status="pulling")
    assert store.blobs.path(digest).read_bytes() == data
    assert ranges_asked(server, "/blob")[-1] == "bytes=600000-"
    assert server.bytes_sent == len(data)  # nothing was fetched twice
    assert leftovers(store.home) == []


def test_partial_left_by_a_dead_process_is_resumed_and_prune_keeps_live_ones(store: ModelStore) -> None:
    data = os.urandom(800_000)
    key = digest_of(data)[7:]
    tmp = store.home / "tmp"
    tmp.mkdir(parents=True)
    dead_pid = 4_000_000  # above pid_max: no such process
    partial = tmp / f".tmp-{dead_pid}-dl-{key}"
    partial.write_bytes(data[:300_000])
    (tmp / f"{partial.name}.json").write_text(json.dumps({"total": len(data), "validator": None}))
    live = tmp / f".tmp-{os.getpid()}-dl-{'0' * 64}"
    live.write_bytes(b"a download in progress")
    with serve_files() as server:
        url = server.add("/blob", data)
        download_to_blob(store, url, expected_digest=digest_of(data), progress=print, status="pulling")
    assert ranges_asked(server, "/blob") == ["bytes=300000-"]
    assert store.blobs.path(digest_of(data)).read_bytes() == data
    assert not partial.exists()
    # prune removes what dead processes left and nothing a running pull still owns
    stale = tmp / f".tmp-{dead_pid}-dl-{'1' * 64}"
    stale.write_bytes(b"abandoned")
    report = store.prune()
    assert report.temp_files_removed == 1 and not stale.exists() and live.exists()


def test_max_speed_caps_the_transfer(store: ModelStore) -> None:
    data = os.urandom(400_000)
    rate = 1_000_000
    with serve_files() as server:
        url = server.add("/blob", data)
        started = time.monotonic()
        download_to_blob(store, url, expected_digest=digest_of(data), progress=print, status="pulling",
                         max_speed=rate)
        elapsed = time.monotonic() - started
    assert elapsed >= len(data) / rate * 0.8
    assert store.blobs.path(digest_of(data)).read_bytes() == data


def test_large_file_comes_in_parallel_ranged_parts(store: ModelStore, monkeypatch) -> None:
    monkeypatch.setattr(transfer, "PARALLEL_MIN_BYTES", 100_000)
    monkeypatch.setattr(transfer, "CHUNK", 64 << 10)
    monkeypatch.setattr(ranged_parts, "CHUNK", 64 << 10)
    data = os.urandom(2_000_000)
    with serve_files(drop_after=150_000, drops=2) as server:
        url = server.add("/big", data)
        digest, size = download_to_blob(store, url, expected_digest=None, progress=print, status="pulling")
    assert (digest, size) == (digest_of(data), len(data))
    assert store.blobs.path(digest).read_bytes() == data
    asked = ranges_asked(server, "/big")
    part_starts = {r.split("=")[1].split("-")[0] for r in asked}
    assert {"0", "500000", "1000000", "1500000"} <= part_starts
    assert any(r.endswith("-999999") for r in asked)
    assert leftovers(store.home) == []


def test_cancelled_parallel_download_keeps_its_parts_for_a_resume(store: ModelStore, monkeypatch) -> None:
    monkeypatch.setattr(transfer, "PARALLEL_MIN_BYTES", 100_000)
    monkeypatch.setattr(transfer, "CHUNK", 16 << 10)
    monkeypatch.setattr(ranged_parts, "CHUNK", 16 << 10)
    data = os.urandom(1_600_000)
    seen = []
    with serve_files(bytes_per_second=200_000) as server:  # per connection
        url = server.add("/big", data)
        with pytest.raises(DownloadCancelled, match="pull again to resume"):
            download_to_blob(store, url, expected_digest=digest_of(data), progress=seen.append,
                             status="pulling", cancelled=lambda: bool(seen) and seen[-1].completed > 200_000)
        sent_before = server.bytes_sent
        assert not store.blobs.has(digest_of(data))
        meta = [p for p in leftovers(store.home) if p.name.endswith(".json")]
        parts = json.loads(meta[0].read_text())["parts"]
        assert len(parts) == 4 and 0 < sum(p[2] for p in parts) < len(data)
        server.bytes_per_second = 0
        download_to_blob(store, url, expected_digest=digest_of(data), progress=print, status="pulling")
    assert store.blobs.path(digest_of(data)).read_bytes() == data
    assert server.bytes_sent - sent_before < len(data)  # the second pull fetched only what was missing
    assert leftovers(store.home) == []


def test_two_downloads_of_one_file_at_once_fetch_it_once(store: ModelStore) -> None:
    data = os.urandom(500_000)
    results = []
    with serve_files(bytes_per_second=2_000_000) as server:
        url = server.add("/blob", data)

        def fetch() -> None:
            results.append(download_to_blob(store, url, expected_digest=None, progress=lambda e: None,
                                            status="pulling"))

        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert results == [(digest_of(data), len(data))] * 2
    assert server.gets("/blob") == 1


def test_two_pulls_of_one_url_at_once_download_once_and_both_succeed(store: ModelStore, tmp_path) -> None:
    model = write_tiny_model(tmp_path / "Tiny-Q8_0.gguf")
    results: list = []
    errors: list = []
    with serve_files(bytes_per_second=1_000_000) as server:
        url = server.add("/m/Tiny-Q8_0.gguf", model.read_bytes())

        def pull() -> None:
            try:
                results.append(pull_model(store, url, accept_license=True).name.short)
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=pull) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert results == ["tiny:q8_0", "tiny:q8_0"]
    assert downloads(server, "/m/Tiny-Q8_0.gguf") == 1


def test_pull_of_a_url_names_the_model_after_the_file(store: ModelStore, tmp_path) -> None:
    model = write_tiny_model(tmp_path / "Tiny-Chat-Q4_K_M.gguf", license="mit")
    events = []
    with serve_files() as server:
        url = server.add("/files/Tiny-Chat-Q4_K_M.gguf", model.read_bytes())
        stored = pull_model(store, url, events.append, accept_license=True)
    assert stored.name.short == "tiny-chat:q4_k_m"
    assert stored.model_path.read_bytes() == model.read_bytes()
    assert stored.config["source"] == f"url:{server.url}/files/Tiny-Chat-Q4_K_M.gguf"
    assert stored.config["license_id"] == "mit"
    statuses = [e.status for e in events]
    assert statuses[-2:] == ["stored as tiny-chat:q4_k_m", "success"]


def test_license_is_settled_before_any_byte_is_downloaded(store: ModelStore, tmp_path) -> None:
    from hearth.errors import LicenseNotAccepted

    model = write_tiny_model(tmp_path / "Tiny-Q4_0.gguf", license=None)
    asked = []
    with serve_files() as server:
        url = server.add("/Tiny-Q4_0.gguf", model.read_bytes())
        with pytest.raises(LicenseNotAccepted, match="--accept-license"):
            pull_model(store, url, ask=lambda prompt: asked.append(prompt) or False)
        assert downloads(server, "/Tiny-Q4_0.gguf") == 0
        assert asked and "Accept the license" in asked[0]
        pull_model(store, url, ask=lambda prompt: True)
    assert store.exists("tiny:q4_0")


def test_license_in_the_gguf_header_is_known_before_the_download(store: ModelStore, tmp_path) -> None:
    from hearth.hub.pull import plan_pull

    model = write_tiny_model(tmp_path / "Tiny-Q4_0.gguf", license="mit", context_length=512)
    with serve_files() as server:
        url = server.add("/Tiny-Q4_0.gguf", model.read_bytes())
        plan = plan_pull(store, url)
        assert (plan.license_id, plan.context_length, plan.size) == ("mit", 512, model.stat().st_size)
        assert downloads(server, "/Tiny-Q4_0.gguf") == 0
        stored = pull_model(store, url)  # MIT is OSI-approved: nothing to accept
    assert stored.config["license_id"] == "mit"


def test_bad_urls_fail_before_anything_is_stored(store: ModelStore, monkeypatch) -> None:
    with serve_files() as server:
        with pytest.raises(DownloadFailed, match="not found"):
            pull_model(store, server.url + "/missing/Foo-Q4_0.gguf", accept_license=True)
        with pytest.raises(InvalidRequest, match="does not name a .gguf file"):
            pull_model(store, server.url + "/model.bin", accept_license=True)
        with pytest.raises(InvalidRequest, match="ftp:// URLs are not supported"):
            pull_model(store, "ftp://example.org/Foo-Q4_0.gguf", accept_license=True)
        with pytest.raises(InvalidRequest, match="split GGUF"):
            pull_model(store, server.url + "/Foo-Q4_0-00001-of-00002.gguf", accept_license=True)
        server.add("/Garbage-Q4_0.gguf", b"this is not a gguf file" * 100)
        garbage = server.url + "/Garbage-Q4_0.gguf"
        # The first bytes give it away: refused before the download, named by its URL.
        with pytest.raises(InvalidRequest, match=f"^{garbage} is not a GGUF file.*nothing was downloaded"):
            pull_model(store, garbage, accept_license=True)
        # A file whose header looks right but whose body is broken is caught after the
        # download; the message names the URL, not the blob's path inside the store.
        broken = server.add("/Broken-Q4_0.gguf", b"GGUF" + b"\xff" * 3000)
        with pytest.raises(Exception, match=f"^{broken} is not a valid GGUF.*nothing was stored"):
            pull_model(store, broken, accept_license=True)
        monkeypatch.setenv("HEARTH_OFFLINE", "1")
        with pytest.raises(DownloadFailed, match="HEARTH_OFFLINE"):
            pull_model(store, server.url + "/Garbage-Q4_0.gguf", accept_license=True)
    assert list(store.list()) == []
    assert not store.blobs.root.exists() or [p for p in store.blobs.root.iterdir()
                                             if p.name.startswith("sha256-") and p.stat().st_size > 5000] == []


def test_catalog_entry_with_a_url_source(store: ModelStore, tmp_path) -> None:
    from hearth.catalog.entries import CatalogTag
    from hearth.hub.pull import run_plan
    from hearth.hub.source_catalog import catalog_plan
    from hearth.names import ModelName

    data = write_tiny_model(tmp_path / "t.gguf").read_bytes()
    with serve_files() as server:
        url = server.add("/t.gguf", data)

        def tag(sha256: str) -> CatalogTag:
            return CatalogTag(model="tiny", tag="f32", publisher="tests", family="tiny", description="",
                              license="Apache-2.0", weights="open", context_length=256,
                              parameter_size="70K", quantization="F32", size=len(data),
                              source={"type": "url", "url": url, "sha256": sha256})

        name = ModelName.parse("tiny:f32")
        with pytest.raises(DigestMismatch):
            run_plan(store, catalog_plan(store, name, tag("0" * 64)))
        assert not store.exists(name)
        model = run_plan(store, catalog_plan(store, name, tag(digest_of(data)[7:])))
    assert model.model_path.read_bytes() == data
    assert model.config["license_id"] == "Apache-2.0"


def test_local_file_is_imported_under_its_file_name(store: ModelStore, tmp_path) -> None:
    model = write_tiny_model(tmp_path / "My-Model.Q5_K_M.gguf")
    stored = pull_model(store, str(model))
    assert stored.name.short == "my-model:q5_k_m"
    assert stored.model_path.read_bytes() == model.read_bytes()
    with pytest.raises(InvalidRequest, match="no such file"):
        pull_model(store, str(tmp_path / "absent.gguf"))


@pytest.mark.parametrize(("filename", "expected"), [
    ("Foo-7B-Instruct-Q4_K_M.gguf", "foo-7b-instruct:q4_k_m"),
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct:q4_1"),
    ("model.gguf", "model:latest"),
    ("Weird Name (v2)-IQ3_XXS.gguf", "weird-name-v2:iq3_xxs"),
    ("phi-3-mini-fp16.gguf", "phi-3-mini:f16"),
])
def test_names_made_from_file_names(filename: str, expected: str) -> None:
    assert name_from_filename(filename).short == expected


def test_pull_into_a_disk_that_is_too_small_fails_before_downloading(tmp_path, monkeypatch) -> None:
    import subprocess

    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()}); needs root")
    try:
        home = mount_point / "home"
        monkeypatch.setenv("HEARTH_HOME", str(home))
        store = ModelStore(home)
        with serve_files() as server:
            url = server.add("/Big-Q4_0.gguf", b"GGUF" + os.urandom(3_000_000))
            with pytest.raises(StoreError, match="not enough disk space"):
                pull_model(store, url, accept_license=True)
            assert downloads(server, "/Big-Q4_0.gguf") == 0
            # download_to_blob checks too, for callers that plan nothing (registry blobs)
            with pytest.raises(StoreError, match="not enough disk space"):
                download_to_blob(store, url, expected_digest=None, progress=print, status="pulling")
        left = [p for p in home.rglob("*") if p.is_file()] if home.exists() else []
        assert left == []
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


def test_speed_text_is_parsed() -> None:
    from hearth.units import parse_rate

    assert parse_rate("10M") == 10_000_000
    assert parse_rate("500K") == 500_000
    assert parse_rate("2MiB/s") == 2 * 1024 * 1024
    assert parse_rate(1234) == 1234
    assert parse_rate(None) is None and parse_rate("0") is None
    with pytest.raises(InvalidRequest, match="10M, 500K"):
        parse_rate("fast")


def test_prune_removes_lock_files_nobody_holds(store: ModelStore) -> None:
    from hearth.hub import locks

    scratch = store.home / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    left_behind = scratch / "pull-0123.lock"  # what a killed pull leaves
    left_behind.write_text("")
    live = scratch / "pull-4567.lock"
    with locks.exclusive(live) as held:
        held.leave_note("in use")
        report = store.prune()
        assert not left_behind.exists()
        assert live.exists()  # a running pull keeps its lock
        assert report.temp_files_removed >= 1
    assert not live.exists()  # and removes it itself when done
