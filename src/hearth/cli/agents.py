"""The coding agents ``hearth launch`` starts, and how each one is pointed at hearth.

Claude Code speaks the Anthropic Messages API and is configured by environment variables;
Codex speaks the OpenAI Responses API and gets a model provider as ``-c`` overrides on its
command line. Both are settings of one run: nothing is written to the agents' own files
(``~/.claude``, ``~/.codex/config.toml``), so the agent works as before once it exits.
"""

from __future__ import annotations

import json
import shutil

from hearth.errors import HearthError

# The variable that holds hearth's API key, by name: `--print-config` writes "$HEARTH_API_KEY"
# instead of the secret itself, and Codex reads it from the environment by this name.
API_KEY_ENV = "HEARTH_API_KEY"


class AgentMissing(HearthError):
    """The agent's command is not on PATH."""


class Launch:
    """One run of an agent: environment variables to set and arguments before the user's.
    ``secret`` names the variables whose value is the API key."""

    def __init__(self, env: dict[str, str], args: list[str], secret: frozenset[str] = frozenset()) -> None:
        self.env = env
        self.args = args
        self.secret = secret


class Agent:
    def __init__(self, name: str, title: str, npm_package: str, context_needed: int,
                 first_request: str) -> None:
        self.name = name  # also the command on PATH
        self.title = title
        self.npm_package = npm_package
        self.context_needed = context_needed  # tokens a session needs (its prompt and an answer)
        self.first_request = first_request  # why: what its first request holds

    def find(self) -> str:
        """The agent's executable on PATH, or a clear error with the command that installs it."""
        path = shutil.which(self.name)
        if path is None:
            raise AgentMissing(f"{self.title} is not installed here (no `{self.name}` on PATH); "
                               f"install it with: npm install -g {self.npm_package}")
        return path

    def configure(self, base_url: str, model: str, api_key: str | None,
                  context: int | None) -> Launch:
        raise NotImplementedError


class ClaudeCode(Agent):
    def configure(self, base_url: str, model: str, api_key: str | None,
                  context: int | None) -> Launch:
        env = {
            # Claude Code adds /v1/messages itself.
            "ANTHROPIC_BASE_URL": base_url,
            # Sent as "Authorization: Bearer": hearth's key when the server wants one; any
            # text otherwise, since Claude Code will not start without a credential.
            "ANTHROPIC_AUTH_TOKEN": api_key or "hearth",
            # Emptied, not inherited: a real Anthropic key in this shell must not reach a local
            # server, and two credentials make Claude Code ask which one to use.
            "ANTHROPIC_API_KEY": "",
        }
        # Every model slot Claude Code fills (the main model, its aliases, the small fast model
        # for titles and summaries, subagents) names the one hearth model.
        for variable in ("ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL",
                         "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
                         "ANTHROPIC_SMALL_FAST_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL"):
            env[variable] = model
        secret = frozenset({"ANTHROPIC_AUTH_TOKEN"}) if api_key else frozenset()
        return Launch(env, [], secret)


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's): Codex reads every ``-c`` value as TOML,
    and an unquoted name such as ``true`` or ``1.5`` would become a bool or a number."""
    return json.dumps(text)


class Codex(Agent):
    def configure(self, base_url: str, model: str, api_key: str | None,
                  context: int | None) -> Launch:
        settings = [
            ("model_provider", toml_string("hearth")),
            ("model_providers.hearth.name", toml_string("hearth")),
            ("model_providers.hearth.base_url", toml_string(f"{base_url}/v1")),
            # Codex accepts only the Responses API for a custom provider ("chat" is gone).
            ("model_providers.hearth.wire_api", toml_string("responses")),
            ("model", toml_string(model)),
        ]
        if api_key:
            # Codex reads the key from this variable, which the agent inherits.
            settings.append(("model_providers.hearth.env_key", toml_string(API_KEY_ENV)))
        if context:
            # Codex does not know a local model's window; told it, it compacts the
            # conversation before a request would overflow instead of failing.
            settings.append(("model_context_window", str(context)))
        args: list[str] = []
        for key, value in settings:
            args += ["-c", f"{key}={value}"]
        return Launch({}, args)


AGENTS: dict[str, Agent] = {
    "claude": ClaudeCode("claude", "Claude Code", "@anthropic-ai/claude-code", 65536,
                         "its first request alone is about 21k tokens, 18k of them tool definitions"),
    "codex": Codex("codex", "Codex", "@openai/codex", 32768,
                   "its instructions and tools are about 10k tokens before any work"),
}
