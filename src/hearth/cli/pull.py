"""``hearth pull``: download a model into the store with progress bars."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("pull", help="download a model (e.g. smollm2)")
    parser.add_argument("model")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect
    from hearth.cli.output import ProgressPrinter

    backend = connect()
    with ProgressPrinter() as progress:
        backend.pull(args.model, progress)
    return 0
