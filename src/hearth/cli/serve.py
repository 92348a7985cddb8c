"""``hearth serve``: the Ollama- and OpenAI-compatible local server."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="start the local API server (Ollama and OpenAI compatible)",
        description="Serve Ollama's API under /api and OpenAI's under /v1. Binds 127.0.0.1:11435 "
        "by default (HEARTH_HOST).",
    )
    parser.add_argument("--host", help="HOST:PORT to listen on (default: HEARTH_HOST)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth.server.serve import serve

    return serve(args.host, args.log_level)
