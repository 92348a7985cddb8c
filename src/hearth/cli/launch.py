"""``hearth launch claude|codex``: a coding agent, pointed at hearth for one run.

Finds the server at HEARTH_HOST (or starts ``hearth serve`` in the background, as ``hearth
app`` does), makes sure the model is there (pulling it as ``hearth run`` does), loads it to
learn the context a request gets, warns when that is smaller than the agent needs, and then
becomes the agent (``agents.py`` says how each one is pointed at hearth). The agent gets the
terminal, Ctrl+C and the exit status; nothing permanent is changed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT_MODEL = "smollm2"

USAGE = ("hearth launch {claude,codex} [--model MODEL] [--host HOST:PORT] [--print-config] "
         "[--yes] [-- AGENT_ARGS...]")

DESCRIPTION = """\
Run a coding agent on a local model: Claude Code (through hearth's Anthropic Messages API) or
Codex (through its OpenAI Responses API). The agent must be installed:
  npm install -g @anthropic-ai/claude-code      (claude)
  npm install -g @openai/codex                  (codex)

Uses the hearth server at HEARTH_HOST, or starts `hearth serve` in the background when none
answers (it keeps running; `hearth app --stop` stops it). Pulls the model if it is missing,
warns when its context is smaller than the agent needs (Claude Code about 64k tokens, Codex
about 32k; raise it with HEARTH_CONTEXT_LENGTH for the server), then runs the agent with
settings for this run only: environment variables for Claude Code, `-c` overrides for Codex.
No file of the agent's is changed. The exit status is the agent's.

examples:
  hearth launch claude --model llama3.1:8b
  hearth launch codex --model qwen3:8b -- exec "add a test for the parser"
  hearth launch claude --print-config          the environment and command, to run yourself
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", default=DEFAULT_MODEL, metavar="MODEL",
                        help=f"the local model the agent uses (default {DEFAULT_MODEL}: it shows "
                             "the wiring, but is far too small for real agent work)")
    parser.add_argument("--host", metavar="HOST:PORT",
                        help="the hearth server to use or start (default: HEARTH_HOST)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the environment and command instead of running the agent")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="answer yes for the model's license if it has to be pulled")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "launch", help="run Claude Code or Codex on a local model (starts the server if needed)",
        usage=USAGE, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser)
    # Everything from the agent's name on is read again by `command_line` below: argparse alone
    # cannot take options after the name and also pass `-- ARGS` through untouched.
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="{claude,codex} [-- AGENT_ARGS]",
                        help="the agent to run; arguments after `--` go to it unchanged")
    parser.set_defaults(handler=handle)


def command_line(args: argparse.Namespace) -> argparse.Namespace:
    """The agent, hearth's options (before or after its name) and the agent's own arguments
    (everything after the first ``--``)."""
    rest = list(args.rest)
    cut = rest.index("--") if "--" in rest else len(rest)
    parser = argparse.ArgumentParser(prog="hearth launch", usage=USAGE, description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("agent", choices=["claude", "codex"], help="the agent to run")
    add_options(parser)
    # Options given before the agent's name are already in ``args``; later ones override them.
    parsed = parser.parse_args(rest[:cut], namespace=argparse.Namespace(**vars(args)))
    parsed.agent_args = rest[cut + 1:]
    return parsed


def handle(args: argparse.Namespace) -> int:
    from hearth import config
    from hearth.cli.agents import AGENTS
    from hearth.cli.remote import remote_target

    options = command_line(args)
    agent = AGENTS[options.agent]
    if options.host:
        # For this process, the server it may start and the agent (config.host() normalizes it).
        os.environ["HEARTH_HOST"] = options.host
    address = config.host()
    url = base_url(address)  # refuses an address that is not HOST:PORT before anything starts
    # Before anything starts: a missing agent is the first thing to fix.
    executable = None if options.print_config else agent.find()
    client, started = find_or_start_server(address)
    model = options.model
    context = None
    if remote_target(model) is None:
        ensure_model(client, model, options.yes)
        context = request_context(client, model)
        if context is not None and context < agent.context_needed:
            print(small_context_warning(agent, model, context, trained_context(client, model),
                                        restart=not started), file=sys.stderr)
    else:
        print(f"→ {model} is a remote model: what the agent sends leaves your machine",
              file=sys.stderr)
    launch = agent.configure(url, model, config.api_key() or None, context)
    if options.print_config:
        print(shell_lines(agent.name, launch, options.agent_args))
        return 0
    print(f"launching {agent.title} on {model} through hearth at {url}",
          file=sys.stderr, flush=True)
    return run_agent(executable, launch, options.agent_args)  # type: ignore[arg-type]


def base_url(address: str) -> str:
    """``http://HOST:PORT`` for the agent; a wildcard bind is reached on loopback."""
    from hearth.cli.app import app_url

    return app_url(address).rstrip("/")


def find_or_start_server(address: str) -> tuple[Any, bool]:
    """A client of the server at ``address`` and whether this command started it."""
    from hearth.cli.app import START_TIMEOUT, log_path, pid_path, start_server, wait_until_ready
    from hearth.client import Client

    client = Client.if_running()
    if client is not None:
        print(f"using the hearth server at {address}", file=sys.stderr)
        return client, False
    log = log_path()
    process = start_server(log)
    wait_until_ready(process, log, START_TIMEOUT)
    # The same record `hearth app` keeps, so that `hearth app --stop` ends this server too.
    pid_path().write_text(f"{process.pid}\n")
    print(f"started hearth serve at {address} in the background (pid {process.pid}, log {log}); "
          "it keeps running after the agent exits; `hearth app --stop` stops it", file=sys.stderr)
    client = Client.if_running()
    if client is None:
        from hearth.errors import ServerStartFailed

        raise ServerStartFailed(f"hearth serve started but stopped answering at {address} (log: {log})")
    return client, True


def ensure_model(client: Any, model: str, yes: bool) -> None:
    """Pull a missing model with progress bars, as ``hearth run`` does; a name no source
    knows ends here with the server's "not found" and what to pull instead."""
    from hearth.errors import ModelNotFound

    try:
        client.show(model)
        return
    except ModelNotFound:
        pass
    from hearth.cli.output import ProgressPrinter
    from hearth.cli.pull import ask_on_terminal

    with ProgressPrinter() as progress:
        client.ensure_model(model, progress, accept_license=yes,
                            ask=None if yes else ask_on_terminal(progress))


def request_context(client: Any, model: str) -> int | None:
    """The context one request to ``model`` gets from this server: the model is loaded (as the
    agent's first request would load it) and ``/api/ps`` says what the runtime chose from
    HEARTH_CONTEXT_LENGTH, the model's ``num_ctx`` and its trained length."""
    from hearth.api.types import GenerateRequest
    from hearth.names import ModelName

    for _ in client.generate(GenerateRequest(model=model)):  # an empty prompt only loads
        pass
    name = ModelName.parse(model).short
    sizes = [m.context_length for m in client.ps().models if m.name == name and m.context_length]
    # A model loaded twice (other options elsewhere): the smaller one is the safe answer.
    return min(sizes) if sizes else None


def trained_context(client: Any, model: str) -> int | None:
    """The longest context the model was trained for (``*.context_length`` in ``/api/show``)."""
    info = client.show(model).model_info or {}
    architecture = info.get("general.architecture")
    value = info.get(f"{architecture}.context_length")
    if value is None:
        value = next((v for k, v in info.items() if k.endswith(".context_length")), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def small_context_warning(agent: Any, model: str, context: int, trained: int | None, *,
                          restart: bool) -> str:
    need = agent.context_needed
    text = (f"warning: {model} gets a context of {context} tokens on this server, and {agent.title} "
            f"needs about {need // 1024}k ({agent.first_request}): its requests will not fit. ")
    if trained is not None and trained < need:
        return text + (f"{model} was trained for {trained} tokens at most: pick a model with a "
                       "longer context (--model).")
    start = "restart the server" if restart else "start the server"
    return text + (f"To give it more, {start} with HEARTH_CONTEXT_LENGTH={need}, or create a model "
                   f"with PARAMETER num_ctx {need} (`hearth create`).")


def shell_lines(command: str, launch: Any, extra: list[str]) -> str:
    """The run as shell text: ``export`` lines, then the command. The API key is written as
    ``"$HEARTH_API_KEY"``, never as itself."""
    import shlex

    from hearth.cli.agents import API_KEY_ENV

    lines = []
    for key, value in launch.env.items():
        shown = f'"${API_KEY_ENV}"' if key in launch.secret else shlex.quote(value)
        lines.append(f"export {key}={shown}")
    lines.append(shlex.join([command, *launch.args, *extra]))
    return "\n".join(lines)


def run_agent(executable: str, launch: Any, extra: list[str]) -> int:
    """Become the agent: its terminal, its Ctrl+C, its exit status."""
    argv = [executable, *launch.args, *extra]
    env = {**os.environ, **launch.env}
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "posix":
        os.execve(executable, argv, env)
    # Without exec (Windows): wait for it, leaving Ctrl+C to the agent.
    import signal
    import subprocess

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.call(argv, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
