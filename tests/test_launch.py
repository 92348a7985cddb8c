"""``hearth launch claude|codex`` against real ``hearth serve`` processes.

The real agents cannot run in the test suite (they need node, npm and a network login), so a
small Python script stands in for them on PATH: it records the arguments and environment it
was started with and exits with a chosen status. Everything else is real: the server, the
model (pulled, loaded, its context read back from /api/ps) and the CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import copy_home, run_hearth
from tests.fake_registry import FakeRegistry
from tests.tinymodel import write_tiny_model

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

FAKE_AGENT = """#!{python}
import json, os, sys
with open({record!r}, "w") as handle:
    json.dump({{"argv": sys.argv[1:], "env": dict(os.environ)}}, handle)
sys.exit({status})
"""

CLAUDE_MODEL_VARIABLES = ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "ANTHROPIC_DEFAULT_SONNET_MODEL",
                          "ANTHROPIC_DEFAULT_HAIKU_MODEL", "ANTHROPIC_SMALL_FAST_MODEL",
                          "CLAUDE_CODE_SUBAGENT_MODEL")


class FakeAgent:
    """``claude`` or ``codex`` on a PATH of its own: records how it was started."""

    def __init__(self, folder: Path, name: str, status: int = 0) -> None:
        self.bin = folder / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.record = folder / f"{name}-record.json"
        script = self.bin / name
        script.write_text(FAKE_AGENT.format(python=sys.executable, record=str(self.record), status=status))
        script.chmod(0o755)

    def env(self, base: dict[str, str], **extra: str) -> dict[str, str]:
        return {**base, "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", **extra}

    @property
    def ran(self) -> bool:
        return self.record.exists()

    def received(self) -> dict:
        return json.loads(self.record.read_text())


def codex_settings(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    """The ``-c key=value`` overrides Codex was given, read as Codex reads them (TOML values),
    and the arguments after them."""
    settings: dict[str, object] = {}
    while len(argv) >= 2 and argv[0] == "-c":
        key, _, value = argv[1].partition("=")
        settings[key] = tomllib.loads(f"value = {value}")["value"]
        argv = argv[2:]
    return settings, argv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# -- the command line --------------------------------------------------------------------


def test_help_names_the_agents_their_install_commands_and_the_options(tmp_path: Path) -> None:
    from tests.conftest import hearth_env

    env = hearth_env(tmp_path / "home")
    result = run_hearth(["launch", "--help"], env)
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for expected in ("{claude,codex}", "--model", "--host", "--print-config", "--yes", "-- AGENT_ARGS",
                     "npm install -g @anthropic-ai/claude-code", "npm install -g @openai/codex",
                     "HEARTH_CONTEXT_LENGTH", "hearth app --stop", "exit status is the agent's"):
        assert expected in text, expected
    listed = run_hearth(["--help"], env)
    assert "launch" in listed.stdout and "Claude Code" in listed.stdout
    # The same help after the agent's name (read by the second parser).
    again = run_hearth(["launch", "claude", "--help"], env)
    assert again.returncode == 0 and "npm install -g @openai/codex" in " ".join(again.stdout.split())


def test_an_unknown_agent_is_a_usage_error(tmp_path: Path) -> None:
    from tests.conftest import hearth_env

    result = run_hearth(["launch", "aider"], hearth_env(tmp_path / "home"))
    assert result.returncode == 2
    assert "invalid choice: 'aider'" in result.stderr


@pytest.mark.parametrize(("agent", "package"), [("claude", "@anthropic-ai/claude-code"),
                                                ("codex", "@openai/codex")])
def test_a_missing_agent_is_a_clear_error_and_starts_nothing(tmp_path: Path, agent: str,
                                                             package: str) -> None:
    from tests.conftest import hearth_env

    port = free_port()
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = hearth_env(tmp_path / "home", HEARTH_HOST=f"127.0.0.1:{port}", PATH=str(empty))
    result = run_hearth(["launch", agent], env)
    assert result.returncode == 1
    assert f"no `{agent}` on PATH" in result.stderr
    assert f"npm install -g {package}" in result.stderr
    assert not answers(f"http://127.0.0.1:{port}")  # no server was started for an agent that is not there
    assert not (tmp_path / "home" / "app-server.pid").exists()


# -- Claude Code ---------------------------------------------------------------------------


def test_claude_code_gets_hearth_in_its_environment_and_its_exit_status_comes_back(
        server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude", status=7)
    # A real Anthropic key in the user's shell must not reach the agent pointed at hearth.
    env = fake.env(server.env, ANTHROPIC_API_KEY="sk-ant-users-own-key")
    result = run_hearth(["launch", "claude", "--", "-p", "hello", "--model", "other"], env)
    assert result.returncode == 7, result.stderr
    got = fake.received()
    assert got["argv"] == ["-p", "hello", "--model", "other"]  # after `--`: the agent's, untouched
    agent_env = got["env"]
    assert agent_env["ANTHROPIC_BASE_URL"] == server.url
    assert agent_env["ANTHROPIC_AUTH_TOKEN"] == "hearth"
    assert agent_env["ANTHROPIC_API_KEY"] == ""
    for variable in CLAUDE_MODEL_VARIABLES:
        assert agent_env[variable] == "smollm2", variable
    assert answers(agent_env["ANTHROPIC_BASE_URL"])  # the URL it got is the running hearth
    assert "using the hearth server" in result.stderr and "started" not in result.stderr


def test_claude_code_warns_that_a_small_model_context_will_not_fit(server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "claude", "--model", "smollm2"], fake.env(server.env))
    assert result.returncode == 0, result.stderr
    warning = " ".join(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    # smollm2 was trained for 8192 tokens, and the server gives it its default 4096.
    assert "smollm2 gets a context of 4096 tokens" in warning
    assert "Claude Code needs about 64k" in warning
    assert "trained for 8192 tokens at most" in warning
    assert fake.ran  # a warning, not a refusal


def test_the_api_key_reaches_the_agents_and_print_config_does_not_show_it(start_server,
                                                                          tmp_path: Path) -> None:
    private = start_server(HEARTH_API_KEY="launch-secret")
    claude = FakeAgent(tmp_path / "claude", "claude")
    result = run_hearth(["launch", "claude"], claude.env(private.env))
    assert result.returncode == 0, result.stderr
    token = claude.received()["env"]["ANTHROPIC_AUTH_TOKEN"]
    assert token == "launch-secret"
    tags = httpx.get(f"{private.url}/api/tags", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert tags.status_code == 200

    codex = FakeAgent(tmp_path / "codex", "codex")
    result = run_hearth(["launch", "codex"], codex.env(private.env))
    assert result.returncode == 0, result.stderr
    got = codex.received()
    settings, _ = codex_settings(got["argv"])
    assert settings["model_providers.hearth.env_key"] == "HEARTH_API_KEY"
    assert got["env"]["HEARTH_API_KEY"] == "launch-secret"

    printed = run_hearth(["launch", "claude", "--print-config"], claude.env(private.env))
    assert printed.returncode == 0, printed.stderr
    assert 'export ANTHROPIC_AUTH_TOKEN="$HEARTH_API_KEY"' in printed.stdout.splitlines()
    assert "launch-secret" not in printed.stdout + printed.stderr


def test_print_config_prints_the_run_instead_of_starting_the_agent(server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "--print-config", "claude", "--", "-p", "two words"],
                        fake.env(server.env))
    assert result.returncode == 0, result.stderr
    assert not fake.ran
    lines = result.stdout.strip().splitlines()
    exported = dict(shlex.split(line)[1].split("=", 1) for line in lines[:-1])
    assert all(line.startswith("export ") for line in lines[:-1])
    assert exported["ANTHROPIC_BASE_URL"] == server.url
    assert exported["ANTHROPIC_AUTH_TOKEN"] == "hearth"
    assert exported["ANTHROPIC_API_KEY"] == ""
    assert exported["ANTHROPIC_MODEL"] == "smollm2"
    assert shlex.split(lines[-1]) == ["claude", "-p", "two words"]
    # Nothing printed to stdout but the shell text: the notes and the warning go to stderr.
    assert "warning:" in result.stderr and "warning:" not in result.stdout


def test_print_config_needs_no_installed_agent(server, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    env = {**server.env, "PATH": str(empty)}
    result = run_hearth(["launch", "codex", "--print-config"], env)
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout.strip().splitlines()[-1])
    assert command[0] == "codex"
    settings, rest = codex_settings(command[1:])
    assert settings["model_provider"] == "hearth" and rest == []


# -- Codex ---------------------------------------------------------------------------------


def test_codex_gets_a_responses_provider_on_its_command_line(server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "codex", status=3)
    # hearth's options after the agent's name, the agent's own after `--`.
    result = run_hearth(["launch", "codex", "--model", "smollm2", "--", "exec", "--json", "fix it"],
                        fake.env(server.env))
    assert result.returncode == 3, result.stderr
    got = fake.received()
    settings, rest = codex_settings(got["argv"])
    assert rest == ["exec", "--json", "fix it"]
    assert settings["model_provider"] == "hearth"
    assert settings["model_providers.hearth.name"] == "hearth"
    assert settings["model_providers.hearth.base_url"] == f"{server.url}/v1"
    assert settings["model_providers.hearth.wire_api"] == "responses"
    assert settings["model"] == "smollm2"
    assert settings["model_context_window"] == 4096  # what the server gives smollm2 (its default)
    assert "model_providers.hearth.env_key" not in settings  # no key on this server
    assert answers(server.url)
    warning = " ".join(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    assert "Codex needs about 32k" in warning


def test_codex_model_names_stay_strings(server, tmp_path: Path) -> None:
    # A tag that TOML would read as a number must reach Codex as the model's name.
    created = run_hearth(["cp", "smollm2", "1.5"], server.env)
    assert created.returncode == 0, created.stderr
    try:
        fake = FakeAgent(tmp_path, "codex")
        result = run_hearth(["launch", "codex", "--model", "1.5"], fake.env(server.env))
        assert result.returncode == 0, result.stderr
        settings, _ = codex_settings(fake.received()["argv"])
        assert settings["model"] == "1.5"
    finally:
        run_hearth(["rm", "1.5"], server.env)


# -- the model and its context ---------------------------------------------------------------


@pytest.fixture
def long_context_server(start_server, tmp_path: Path):
    """A server that gives 64k tokens, with a tiny model trained for 128k and a copy of it
    limited to 8k by its Modelfile."""
    private = start_server(HEARTH_CONTEXT_LENGTH="65536", HEARTH_NUM_PARALLEL="1")
    model = write_tiny_model(tmp_path / "long.gguf", context_length=131072)
    created = run_hearth(["create", "tiny-long", "--from", str(model)], private.env)
    assert created.returncode == 0, created.stderr
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text("FROM tiny-long\nPARAMETER num_ctx 8192\n")
    created = run_hearth(["create", "tiny-8k", "-f", str(modelfile)], private.env)
    assert created.returncode == 0, created.stderr
    return private


def test_no_warning_when_the_context_is_large_enough(long_context_server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "claude", "--model", "tiny-long"], fake.env(long_context_server.env))
    assert result.returncode == 0, result.stderr
    assert "warning:" not in result.stderr
    assert fake.received()["env"]["ANTHROPIC_MODEL"] == "tiny-long"


def test_the_warning_reads_the_context_the_runtime_gives_not_only_the_trained_one(
        long_context_server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "claude", "--model", "tiny-8k"], fake.env(long_context_server.env))
    assert result.returncode == 0, result.stderr
    warning = " ".join(line for line in result.stderr.splitlines() if line.startswith("warning:"))
    # Trained for 128k, but its PARAMETER num_ctx gives a request 8192: the fix is a setting.
    assert "tiny-8k gets a context of 8192 tokens" in warning
    assert "restart the server with HEARTH_CONTEXT_LENGTH=65536" in warning
    assert "trained for" not in warning


def test_a_missing_model_is_pulled_before_the_agent_starts(start_server, tmp_path: Path) -> None:
    private = start_server()
    weights = write_tiny_model(tmp_path / "reg.gguf", seed=3).read_bytes()
    with FakeRegistry() as registry:
        registry.add_model("tests/agent-model", "v1", weights)
        name = f"{registry.host}/tests/agent-model:v1"
        fake = FakeAgent(tmp_path, "codex")
        result = run_hearth(["launch", "codex", "--model", name, "--yes"], fake.env(private.env))
    assert result.returncode == 0, result.stderr
    settings, _ = codex_settings(fake.received()["argv"])
    assert settings["model"] == name
    listed = httpx.get(f"{private.url}/api/tags", timeout=10).json()["models"]
    assert name in [m["name"] for m in listed]


def test_an_unknown_model_is_an_error_and_the_agent_does_not_run(server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "claude", "--model", "no-such-model-anywhere"], fake.env(server.env))
    assert result.returncode == 1
    assert "no-such-model-anywhere" in result.stderr and "not found" in result.stderr
    assert not fake.ran


# -- the server ------------------------------------------------------------------------------


def test_a_server_is_started_in_the_background_when_none_answers(smollm2_home: Path,
                                                                  tmp_path: Path) -> None:
    from tests.conftest import hearth_env

    home = copy_home(smollm2_home, tmp_path / "home")
    port = free_port()
    env = hearth_env(home, HEARTH_HOST=f"127.0.0.1:{port}")
    fake = FakeAgent(tmp_path, "claude")
    try:
        result = run_hearth(["launch", "claude"], fake.env(env))
        assert result.returncode == 0, result.stderr
        assert f"started hearth serve at 127.0.0.1:{port} in the background" in result.stderr
        assert "hearth app --stop" in result.stderr
        base = fake.received()["env"]["ANTHROPIC_BASE_URL"]
        assert base == f"http://127.0.0.1:{port}"
        assert answers(base)  # it outlived the command that started it
    finally:
        stopped = run_hearth(["app", "--stop"], env)
    assert stopped.returncode == 0, stopped.stderr
    assert not answers(f"http://127.0.0.1:{port}")


def test_host_option_picks_the_server(server, tmp_path: Path) -> None:
    fake = FakeAgent(tmp_path, "claude")
    env = fake.env(server.env, HEARTH_HOST="127.0.0.1:1")  # nothing there; --host says where
    result = run_hearth(["launch", "claude", "--host", f"127.0.0.1:{server.port}"], env)
    assert result.returncode == 0, result.stderr
    assert fake.received()["env"]["ANTHROPIC_BASE_URL"] == server.url


def test_an_address_that_is_not_host_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    from tests.conftest import hearth_env

    fake = FakeAgent(tmp_path, "claude")
    result = run_hearth(["launch", "claude", "--host", "localhost:http"], fake.env(hearth_env(tmp_path / "home")))
    assert result.returncode == 1
    assert "expected HOST:PORT" in result.stderr
    assert not fake.ran and not (tmp_path / "home" / "logs").exists()
