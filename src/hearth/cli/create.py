"""``hearth create``: a model from a Modelfile or straight from a GGUF file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "create",
        help="create a model from a Modelfile or a GGUF file",
        description="Create a model from a Modelfile (FROM a .gguf file or an existing model; "
        "PARAMETER, TEMPLATE, SYSTEM, LICENSE, MESSAGE) or directly from a GGUF file.",
    )
    parser.add_argument("model", help="name of the new model")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-f", "--file", help="path to the Modelfile (default: ./Modelfile)")
    source.add_argument("--from", dest="from_path", metavar="FILE.gguf", help="create from a GGUF file")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect
    from hearth.cli.output import ProgressPrinter
    from hearth.errors import InvalidRequest

    runtime = connect()
    with ProgressPrinter() as progress:
        if args.from_path:
            runtime.create(args.model, from_path=args.from_path, progress=progress)
            return 0
        path = Path(args.file or "Modelfile")
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read Modelfile {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        runtime.create(args.model, modelfile=text, base_dir=path.resolve().parent, progress=progress,
                       source=str(path))
    return 0
