"""``hearth push``: upload a stored model to an OCI / Ollama registry with progress bars."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Upload a model to a registry (the Docker/OCI registry v2 protocol, Ollama's layout).

DEST (or MODEL itself) must name a registry: HOST[:PORT]/NAMESPACE/MODEL[:TAG].
https is used, except for localhost/127.x hosts or with --insecure (plain http).

examples:
  hearth push tiny localhost:5000/me/tiny:v1
  hearth push registry.example.com/team/assistant:latest
"""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("push", help="upload a model to an OCI / Ollama registry",
                                 description=DESCRIPTION,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the stored model to upload")
    parser.add_argument("destination", nargs="?", default=None,
                        help="registry name to push as (default: MODEL itself)")
    parser.add_argument("--insecure", action="store_true",
                        help="use plain http instead of https for this registry")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect
    from hearth.cli.output import ProgressPrinter

    backend = connect()
    with ProgressPrinter() as progress:
        backend.push(args.model, progress, destination=args.destination, insecure=args.insecure)
    return 0
