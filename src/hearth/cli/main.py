"""Entry point: builds the argument parser from the command modules and turns expected errors
into one line on stderr and exit status 1."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from hearth.cli import app as app_cmd
from hearth.cli import (
    compare,
    config_cmd,
    create,
    doctor,
    generate,
    launch,
    models,
    pull,
    quality,
    run,
    serve,
)
from hearth.cli import fit as fit_cmd
from hearth.cli import interop as interop_cmd
from hearth.cli import license as license_cmd
from hearth.cli import push as push_cmd
from hearth.cli import search as search_cmd
from hearth.version import __version__

# The order `hearth --help` lists them in: using models, getting them, making them, serving.
COMMAND_MODULES = [
    run, generate, search_cmd, pull, push_cmd, models, license_cmd, fit_cmd, create, quality,
    interop_cmd, compare, serve, app_cmd, launch, config_cmd, doctor,
]

DESCRIPTION = """\
Run open-weight LLMs on your own machine.

examples:
  hearth run smollm2 "The sky is"        stream an answer (pulls the model if missing)
  hearth run smollm2                     interactive chat
  hearth generate -m model.gguf -p Hi    raw completion on a GGUF file
  hearth list                            installed models
  hearth search qwen                     find models: license, sizes, open or closed
  hearth pull hf.co/OWNER/REPO:Q4_K_M    a GGUF from Hugging Face (or a URL, a registry)
  hearth license llama3.2                what the license allows, before you ship it
  hearth fit llama3.1:8b                 will it run on this machine?
  hearth app                             the web app in your browser
  hearth launch claude --model M         Claude Code (or codex) on a local model
  hearth doctor                          something wrong? check the engine and this machine
  hearth run groq/llama-3.3-70b-versatile Hi   a remote provider's model (leaves your machine)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # pydantic scans every installed package for plugins at import; the CLI uses none.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    if args.debug:
        os.environ["HEARTH_DEBUG"] = "1"
    describe = getattr(args, "engine_work", None)
    if describe is not None:
        from hearth.cli.crash_guard import run_guarded

        return run_guarded(lambda: run_handler(args), describe(args))
    return run_handler(args)


def run_handler(args: argparse.Namespace) -> int:
    """The command's exit status, with expected failures as one line on stderr."""
    from hearth import config
    from hearth.errors import HearthError

    try:
        return int(args.handler(args) or 0)
    except HearthError as exc:
        if config.debug():
            raise
        print(exc.cli_message(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `hearth run ... | head`): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
