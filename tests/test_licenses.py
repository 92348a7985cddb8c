"""The license knowledge base, how an installed model's license is found, the license policy
(HEARTH_LICENSE_POLICY) at pull, run and serve, `hearth license` and `hearth license audit`.

Models are tiny GGUF files written by the tests with a chosen `general.license`, created in a
temporary HEARTH_HOME; run and serve are the real `hearth` command and a real `hearth serve`.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from hearth.catalog.license_terms import COMMERCIAL_VALUES, all_licenses
from hearth.errors import LicenseBlocked, LicenseNotAccepted, LicensePolicyError
from hearth.licenses import (
    acceptance_prompt,
    check_policy,
    confirm_before_pull,
    license_id_of,
    license_summary,
    lookup,
    resolve_license,
)
from hearth.licenses.resolve import recognise_text
from hearth.runtime import Runtime
from hearth.store import ModelStore
from tests.conftest import HearthServer, hearth_env, run_hearth
from tests.tinymodel import write_tiny_model

# -- the knowledge base ---------------------------------------------------------------------


def test_every_license_entry_is_complete() -> None:
    licenses = all_licenses()
    ids = [terms.id for terms in licenses]
    assert len(ids) == len(set(ids))
    for terms in licenses:
        assert terms.name and terms.attribution and terms.redistribution and terms.modification, terms.id
        assert terms.commercial_use in COMMERCIAL_VALUES, terms.id
        assert terms.restrictions, terms.id
        assert terms.url.startswith("https://") or terms.id == "proprietary", terms.id
    required = {"MIT", "Apache-2.0", "Llama-2", "Llama-3", "Llama-3.1", "Llama-3.2", "Llama-3.3",
                "Gemma", "DeepSeek", "Qwen", "Qwen-Research", "MRL", "MNPL", "CC-BY-4.0",
                "CC-BY-NC-4.0", "OpenRAIL-M", "CreativeML-OpenRAIL-M", "BigScience-OpenRAIL-M",
                "BSD-3-Clause", "GPL-3.0"}
    assert required <= set(ids)


def test_no_two_licenses_share_a_spelling() -> None:
    from hearth.catalog.license_terms import alias_key

    seen: dict[str, str] = {}
    for terms in all_licenses():
        for spelling in {alias_key(s) for s in (terms.id, terms.name, *terms.aliases)}:
            assert seen.setdefault(spelling, terms.id) == terms.id, spelling


@pytest.mark.parametrize(("spelling", "expected"), [
    ("apache-2.0", "Apache-2.0"), ("Apache 2.0", "Apache-2.0"), ("Apache License, Version 2.0", "Apache-2.0"),
    ("mit", "MIT"), ("MIT License", "MIT"),
    ("llama3.1", "Llama-3.1"), ("Llama 3.1 Community License", "Llama-3.1"), ("llama3.2", "Llama-3.2"),
    ("llama3", "Llama-3"), ("llama2", "Llama-2"), ("Llama 3.3 Community License", "Llama-3.3"),
    ("gemma", "Gemma"), ("Gemma Terms of Use", "Gemma"),
    ("deepseek", "DeepSeek"), ("qwen", "Qwen"), ("qwen-research", "Qwen-Research"),
    ("mrl", "MRL"), ("mnpl", "MNPL"), ("cc-by-4.0", "CC-BY-4.0"), ("CC BY-NC 4.0", "CC-BY-NC-4.0"),
    ("openrail", "OpenRAIL"), ("openrail-m", "OpenRAIL-M"), ("creativeml-openrail-m", "CreativeML-OpenRAIL-M"),
    ("bigscience-openrail-m", "BigScience-OpenRAIL-M"), ("bsd-3-clause", "BSD-3-Clause"), ("gpl-3.0", "GPL-3.0"),
])
def test_lookup_normalises_aliases(spelling: str, expected: str) -> None:
    terms = lookup(spelling)
    assert terms is not None and terms.id == expected


@pytest.mark.parametrize("spelling", [None, "", "other", "unknown", "acme-model-license-1.0", "llama", "apache"])
def test_unknown_licenses_are_never_guessed(spelling: str | None) -> None:
    assert lookup(spelling) is None
    summary = license_summary(spelling)
    assert summary["known"] is False and summary["commercial_use"] == "unknown"
    assert summary["needs_acceptance"] is True and summary["restrictions"] == []


def test_summary_of_a_known_license() -> None:
    summary = license_summary("llama3.1")
    assert summary["id"] == "Llama-3.1" and summary["known"] and not summary["osi_approved"]
    assert summary["commercial_use"] == "conditional" and summary["needs_acceptance"]
    assert any("700 million monthly active users" in r for r in summary["restrictions"])
    assert any('"Llama"' in r for r in summary["restrictions"])
    assert "Built with Llama" in summary["attribution"]
    apache = license_summary("apache-2.0")
    assert apache["osi_approved"] and apache["commercial_use"] == "yes" and not apache["needs_acceptance"]
    assert license_summary("cc-by-nc-4.0")["commercial_use"] == "no"
    assert license_summary("qwen-research")["commercial_use"] == "no"
    json.dumps(license_summary("gemma"))


def test_license_texts_are_recognised_by_their_distinctive_phrases() -> None:
    def seen(text: str) -> str | None:
        terms = recognise_text(text)
        return terms.id if terms else None

    assert seen("                                 Apache License\n   Version 2.0, January 2004\n") == "Apache-2.0"
    assert seen("LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: ...") == "Llama-3.1"
    assert seen("META LLAMA 3 COMMUNITY LICENSE AGREEMENT\n...") == "Llama-3"
    assert seen("Qwen RESEARCH LICENSE AGREEMENT\n\nQwen RESEARCH LICENSE AGREEMENT Release Date") == "Qwen-Research"
    assert seen("Qwen LICENSE AGREEMENT\n\nQwen LICENSE AGREEMENT Release Date") == "Qwen"
    assert seen("Creative Commons Attribution-NonCommercial 4.0 International Public License") == "CC-BY-NC-4.0"
    assert seen("GNU GENERAL PUBLIC LICENSE\n Version 3, 29 June 2007") == "GPL-3.0"
    assert seen("GNU LESSER GENERAL PUBLIC LICENSE Version 3, 29 June 2007 ... GNU General Public License") is None
    assert seen("MIT License\n\nCopyright (c) the tiny model's authors") is None  # no license text in it
    assert seen("Use it however you like, but be nice.") is None


# -- an installed model's license ------------------------------------------------------------


def make_model(home: Path, name: str, license: str | None, modelfile_license: str | None = None) -> None:
    """A tiny model under ``name`` whose GGUF says ``general.license = license``."""
    folder = home.parent / f"files-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_tiny_model(folder / "tiny.gguf", seed=1, license=license)
    modelfile = f'FROM "{path}"\n'
    if modelfile_license is not None:
        modelfile += f'LICENSE """{modelfile_license}"""\n'
    Runtime(ModelStore(home)).create(name, modelfile=modelfile, base_dir=folder)


@pytest.fixture(scope="module")
def licensed_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HEARTH_HOME with models under an OSI license, a non-commercial one, a conditional one,
    an unknown one and none at all (read-only use)."""
    home = tmp_path_factory.mktemp("licensed") / "home"
    make_model(home, "tiny-apache", "apache-2.0")
    make_model(home, "tiny-nc", "cc-by-nc-4.0")
    make_model(home, "tiny-llama", "llama3.2")
    make_model(home, "tiny-custom", "acme-model-license-1.0")
    make_model(home, "tiny-nolicense", None)
    return home


def test_license_of_installed_models(licensed_home: Path) -> None:
    store = ModelStore(licensed_home)
    assert license_id_of(store, store.get("tiny-apache")) == "Apache-2.0"
    assert resolve_license(store, store.get("tiny-nc")).license_id == "CC-BY-NC-4.0"
    assert license_id_of(store, store.get("tiny-llama")) == "Llama-3.2"
    # Stated but unknown: reported as stated, and unknown to the knowledge base.
    assert license_id_of(store, store.get("tiny-custom")) == "acme-model-license-1.0"
    assert lookup("acme-model-license-1.0") is None
    assert resolve_license(store, store.get("tiny-nolicense")).license_id is None


def test_license_layer_text_beats_an_uninformative_header(tmp_path: Path) -> None:
    home = tmp_path / "home"
    text = "Qwen RESEARCH LICENSE AGREEMENT\n\nQwen RESEARCH LICENSE AGREEMENT Release Date: ..."
    make_model(home, "tiny-qwen", "other", modelfile_license=text)
    store = ModelStore(home)
    resolved = resolve_license(store, store.get("tiny-qwen"))
    assert (resolved.license_id, resolved.origin) == ("Qwen-Research", "license text")


# -- the policy -------------------------------------------------------------------------------


def write_policy(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch | None = None) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    if monkeypatch is not None:
        monkeypatch.setenv("HEARTH_LICENSE_POLICY", str(path))
    return path


def test_no_policy_allows_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_LICENSE_POLICY", raising=False)
    for license_id in ("cc-by-nc-4.0", None, "acme"):
        check_policy(license_id, action="run")


def test_policy_allow_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_policy(tmp_path, 'allowed = ["apache-2.0", "MIT", "acme-model-license-1.0"]\n', monkeypatch)
    check_policy("Apache 2.0", action="pull")
    check_policy("mit", action="run")
    check_policy("acme-model-license-1.0", action="run")  # listed by name, though unknown to hearth
    with pytest.raises(LicenseBlocked) as blocked:
        check_policy("llama3.1", action="run", model="llama3.1:8b")
    assert blocked.value.status_code == 403 and blocked.value.license_id == "llama3.1"
    assert blocked.value.reason == "license Llama-3.1 is not in the policy's allowed list"
    assert "running 'llama3.1:8b' (Llama-3.1) is blocked by the license policy" in blocked.value.message
    for unknown in (None, "some-other-license"):
        with pytest.raises(LicenseBlocked) as blocked:
            check_policy(unknown, action="serve")
        assert blocked.value.reason == "unknown license"


def test_policy_deny_list_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_policy(tmp_path, 'allowed = ["cc-by-nc-4.0", "mit"]\ndenied = ["CC BY-NC 4.0"]\n', monkeypatch)
    with pytest.raises(LicenseBlocked) as blocked:
        check_policy("cc-by-nc-4.0", action="pull")
    assert blocked.value.reason == "license CC-BY-NC-4.0 is denied by the policy"
    check_policy("MIT", action="pull")
    write_policy(tmp_path, 'denied = ["gemma"]\n', monkeypatch)
    check_policy(None, action="run")  # a deny list alone says nothing about unknown licenses


def test_policy_commercial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_policy(tmp_path, "commercial = true\n", monkeypatch)
    check_policy("apache-2.0", action="run")
    check_policy("llama3.3", action="run")  # commercial use allowed, with conditions
    for license_id, reason in (("cc-by-nc-4.0", "license CC-BY-NC-4.0 does not allow commercial use"),
                               ("mnpl", "license MNPL does not allow commercial use"),
                               ("qwen-research", "license Qwen-Research does not allow commercial use"),
                               ("acme", "unknown license"), (None, "unknown license")):
        with pytest.raises(LicenseBlocked) as blocked:
            check_policy(license_id, action="run")
        assert blocked.value.reason == reason
    path.write_text("commercial = true\nallow_conditional = false\n")
    with pytest.raises(LicenseBlocked, match="allows commercial use only with conditions"):
        check_policy("llama3.3", action="run")


@pytest.mark.parametrize(("text", "problem"), [
    ("allowed = [\n", "is not valid TOML"),
    ('allow = ["mit"]\n', "unknown key(s) allow"),
    ('allowed = "mit"\n', "'allowed' must be a list of license ids"),
    ('commercial = "yes"\n', "'commercial' must be true or false"),
])
def test_malformed_policy_is_a_clear_error(text: str, problem: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_policy(tmp_path, text, monkeypatch)
    with pytest.raises(LicensePolicyError) as error:
        check_policy("mit", action="run")
    assert problem in error.value.message and str(tmp_path / "policy.toml") in error.value.message


def test_missing_policy_file_blocks_rather_than_allows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_LICENSE_POLICY", str(tmp_path / "nowhere.toml"))
    with pytest.raises(LicensePolicyError, match="cannot be read"):
        check_policy("mit", action="run")


# -- the gate before a pull ---------------------------------------------------------------


def test_confirm_before_pull_osi_license_needs_no_acceptance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_LICENSE_POLICY", raising=False)
    asked: list[str] = []
    confirm_before_pull("smollm2", "Apache-2.0", accept_license=False, ask=lambda p: asked.append(p) or False)
    assert asked == []


def test_confirm_before_pull_asks_for_other_licenses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_LICENSE_POLICY", raising=False)
    with pytest.raises(LicenseNotAccepted) as refused:
        confirm_before_pull("llama3.2", "llama3.2", accept_license=False, ask=None)
    assert isinstance(refused.value, LicenseBlocked) and refused.value.status_code == 403
    assert refused.value.license_id == "llama3.2" and "--accept-license" in refused.value.message
    confirm_before_pull("llama3.2", "llama3.2", accept_license=True, ask=None)
    prompts: list[str] = []
    confirm_before_pull("llama3.2", "llama3.2", accept_license=False, ask=lambda p: prompts.append(p) or True)
    assert "Llama 3.2 Community License Agreement" in prompts[0] and "700 million" in prompts[0]
    with pytest.raises(LicenseNotAccepted):
        confirm_before_pull("llama3.2", "llama3.2", accept_license=False, ask=lambda p: False)
    with pytest.raises(LicenseNotAccepted) as refused:
        confirm_before_pull("mystery", None, accept_license=False, ask=None)
    assert refused.value.license_id is None
    assert "does not know" in acceptance_prompt("mystery", "acme-1.0")


def test_confirm_before_pull_applies_the_policy_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_policy(tmp_path, "commercial = true\n", monkeypatch)
    with pytest.raises(LicenseBlocked) as blocked:
        # Accepting a license does not override the team's policy.
        confirm_before_pull("codestral", "MNPL", accept_license=True, ask=lambda p: True)
    assert not isinstance(blocked.value, LicenseNotAccepted)
    assert "pulling 'codestral' (MNPL) is blocked" in blocked.value.message
    confirm_before_pull("smollm2", "Apache-2.0", accept_license=False, ask=None)


# -- run, serve, license and audit through the real command ---------------------------------


def error_line(result) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_run_refuses_a_model_the_policy_forbids(licensed_home: Path, tmp_path: Path) -> None:
    policy = write_policy(tmp_path, "commercial = true\n")
    env = hearth_env(licensed_home, HEARTH_LICENSE_POLICY=str(policy))
    line = error_line(run_hearth(["run", "tiny-nc", "Hello", "-o", "num_predict=2"], env))
    assert line == (f"Error: running 'tiny-nc:latest' (CC-BY-NC-4.0) is blocked by the license policy "
                    f"{policy}: license CC-BY-NC-4.0 does not allow commercial use")
    allowed = run_hearth(["run", "tiny-apache", "Hello", "-o", "num_predict=2", "-o", "temperature=0"], env)
    assert allowed.returncode == 0, allowed.stderr
    # Without the policy the same model runs.
    free = run_hearth(["run", "tiny-nc", "Hello", "-o", "num_predict=2"], hearth_env(licensed_home))
    assert free.returncode == 0, free.stderr
    policy.write_text("commercial = [\n")
    assert "is not valid TOML" in error_line(run_hearth(["run", "tiny-apache", "Hello"], env))


def test_serve_refuses_requests_for_forbidden_models(licensed_home: Path, tmp_path: Path) -> None:
    import shutil

    home = tmp_path / "home"
    shutil.copytree(licensed_home, home)
    policy = write_policy(tmp_path, 'allowed = ["apache-2.0", "mit"]\n')
    server = HearthServer(home, HEARTH_LICENSE_POLICY=str(policy))
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            body = {"model": "tiny-nc", "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
            refused = client.post("/api/generate", json=body)
            assert refused.status_code == 403
            assert refused.json()["error"].endswith("license CC-BY-NC-4.0 is not in the policy's allowed list")
            assert "serving 'tiny-nc:latest'" in refused.json()["error"]
            chat = {"model": "tiny-custom", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
            refused = client.post("/api/chat", json=chat)
            assert refused.status_code == 403 and refused.json()["error"].endswith("unknown license")
            openai_body = {"model": "tiny-llama", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
            assert client.post("/v1/chat/completions", json=openai_body).status_code == 403
            ok = client.post("/api/generate", json={**body, "model": "tiny-apache"})
            assert ok.status_code == 200 and ok.json()["done"] is True
        log = server.log()
        for name, license_text in (("tiny-nc:latest", "CC-BY-NC-4.0"), ("tiny-llama:latest", "Llama-3.2"),
                                   ("tiny-nolicense:latest", "no license stated")):
            assert f"warning: '{name}' ({license_text}) fails the license policy" in log
        assert "'tiny-apache:latest'" not in log
    finally:
        server.stop()


def test_serve_will_not_start_with_a_malformed_policy(licensed_home: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    policy = write_policy(tmp_path, "denied = 3\n")
    env = hearth_env(licensed_home, HEARTH_LICENSE_POLICY=str(policy), HEARTH_HOST=f"127.0.0.1:{port}")
    line = error_line(run_hearth(["serve"], env, timeout=60))
    assert "'denied' must be a list of license ids" in line


def test_license_command_shows_installed_catalog_and_id(licensed_home: Path, tmp_path: Path) -> None:
    env = hearth_env(licensed_home)
    shown = run_hearth(["license", "tiny-nc"], env)
    assert shown.returncode == 0, shown.stderr
    assert "tiny-nc:latest (installed model, license from its config)" in shown.stdout
    assert "CC-BY-NC-4.0 · not OSI · commercial: no" in shown.stdout
    assert "https://creativecommons.org/licenses/by-nc/4.0/legalcode" in shown.stdout
    custom = run_hearth(["license", "tiny-custom"], env).stdout
    assert "acme-model-license-1.0 · unknown license · commercial: unknown" in custom
    catalog = run_hearth(["license", "gemma3"], env).stdout
    assert "gemma3:4b (catalog model)" in catalog and "Gemma Terms of Use" in catalog
    assert "Gemma Prohibited Use Policy" in catalog
    closed = run_hearth(["license", "gpt-4o"], env).stdout
    assert "gpt-4o (closed catalog model)" in closed and "proprietary" in closed
    by_id = run_hearth(["license", "apache-2.0"], env).stdout
    assert "Apache-2.0 · OSI · commercial: yes" in by_id
    data = json.loads(run_hearth(["license", "llama3.3", "--json"], env).stdout)
    assert data["license"]["id"] == "Llama-3.3" and data["kind"] == "catalog model"
    policy = write_policy(tmp_path, 'denied = ["llama3.3"]\n')
    blocked = run_hearth(["license", "llama3.3"], {**env, "HEARTH_LICENSE_POLICY": str(policy)}).stdout
    assert f"blocked by {policy}: license Llama-3.3 is denied by the policy" in blocked
    assert "not found" in error_line(run_hearth(["license", "no-such-thing"], env))


def test_audit_exit_codes(licensed_home: Path, tmp_path: Path) -> None:
    env = hearth_env(licensed_home)
    plain = run_hearth(["license", "audit"], env)
    assert plain.returncode == 0, plain.stderr  # nothing to check against
    assert "tiny-custom:latest" in plain.stdout and "unknown license" in plain.stdout

    commercial = run_hearth(["license", "audit", "--commercial", "--json"], env)
    assert commercial.returncode == 1
    rows = {row["model"]: row for row in json.loads(commercial.stdout)["models"]}
    assert rows["tiny-apache:latest"]["verdict"] == "ok"
    assert rows["tiny-llama:latest"]["verdict"] == "ok"
    assert rows["tiny-llama:latest"]["reason"] == "commercial use allowed with conditions"
    assert rows["tiny-nc:latest"]["verdict"] == "violation"
    assert rows["tiny-nc:latest"]["reason"] == "license CC-BY-NC-4.0 does not allow commercial use"
    assert rows["tiny-custom:latest"]["reason"] == "unknown license"
    assert rows["tiny-nolicense:latest"]["license"] is None

    table = run_hearth(["license", "audit", "--commercial"], env)
    assert table.returncode == 1
    assert "3 of 5 models violate the license rules" in table.stdout
    [nc_line] = [line for line in table.stdout.splitlines() if line.startswith("tiny-nc:latest")]
    assert nc_line.split()[:3] == ["tiny-nc:latest", "CC-BY-NC-4.0", "violation"]

    policy = write_policy(tmp_path, 'denied = ["cc-by-nc-4.0"]\n')
    with_policy = {**env, "HEARTH_LICENSE_POLICY": str(policy)}
    assert run_hearth(["license", "audit"], with_policy).returncode == 1
    policy.write_text('allowed = ["apache-2.0", "cc-by-nc-4.0", "llama3.2", "acme-model-license-1.0"]\n')
    result = run_hearth(["license", "audit"], with_policy)
    assert result.returncode == 1 and "1 of 5 models" in result.stdout  # tiny-nolicense
    # An id the knowledge base does not know is allowed (a team's own license) but named.
    assert "hearth does not know: acme-model-license-1.0" in result.stderr
    policy.write_text('denied = ["cc-by-nc-4.O"]\n')  # a typo: the letter O
    typo = run_hearth(["license", "audit"], with_policy)
    assert "hearth does not know: cc-by-nc-4.O (a typo?" in typo.stderr
    policy.write_text("denied = []\n")
    assert run_hearth(["license", "audit"], with_policy).returncode == 0
    policy.write_text("denied = [\n")
    assert "is not valid TOML" in error_line(run_hearth(["license", "audit"], with_policy))
