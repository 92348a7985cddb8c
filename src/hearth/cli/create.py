"""``hearth create``: a model from a Modelfile or straight from a GGUF file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(commands: argparse._SubParsersAction) -> None:
    from hearth.quantization import QUANT_TYPES

    parser = commands.add_parser(
        "create",
        help="create a model from a Modelfile or a GGUF file",
        description="Create a model from a Modelfile (FROM a .gguf file or an existing model; "
        "PARAMETER, TEMPLATE, SYSTEM, LICENSE, MESSAGE, ADAPTER) or directly from a GGUF file, "
        "optionally re-quantized. Quantization types: " + ", ".join(QUANT_TYPES) + ".",
    )
    parser.add_argument("model", help="name of the new model")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-f", "--file", help="path to the Modelfile (default: ./Modelfile)")
    source.add_argument("--from", dest="from_path", metavar="FILE_OR_MODEL",
                        help="create from a GGUF file or an installed model")
    parser.add_argument("-q", "--quantize", metavar="TYPE",
                        help="re-quantize the weights with llama.cpp (e.g. Q4_K_M, Q8_0; list above)")
    parser.add_argument("--allow-requantize", action="store_true",
                        help="quantize even a model that is already low-bit (loses quality twice)")
    parser.set_defaults(handler=handle, engine_work=lambda args: f"creating {args.model}")


def handle(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect
    from hearth.cli.output import ProgressPrinter
    from hearth.errors import InvalidRequest
    from hearth.modelfile import Sources

    runtime = connect()
    # This is the user's own process: their files are theirs to read. In-process the runtime
    # reads them; through a server the client uploads them as blobs (the server reads no path).
    extra = {"quantize": args.quantize, "allow_requantize": args.allow_requantize,
             "sources": Sources.LOCAL_FILES}
    with ProgressPrinter() as progress:
        if args.from_path:
            candidate = Path(args.from_path).expanduser()
            if candidate.exists() or args.from_path.lower().endswith(".gguf"):
                runtime.create(args.model, from_path=args.from_path, progress=progress, **extra)
            else:
                # An installed model's name: FROM it, as a Modelfile would.
                runtime.create(args.model, modelfile=f"FROM {args.from_path}\n", progress=progress,
                               source="--from", **extra)
            return 0
        path = Path(args.file or "Modelfile")
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read Modelfile {path}: {getattr(exc, 'strerror', None) or exc}") from exc
        runtime.create(args.model, modelfile=text, base_dir=path.resolve().parent, progress=progress,
                       source=str(path), **extra)
    return 0
