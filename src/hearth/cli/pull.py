"""``hearth pull``: download a model into the store with progress bars."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Download a model into the store. MODEL is one of:
  a catalog name             smollm2, smollm2:135m
  a Hugging Face GGUF repo   hf.co/OWNER/REPO[:QUANT]  (default quantization Q4_K_M, else the
                             closest), https://huggingface.co/OWNER/REPO[/blob/REV/FILE.gguf]
  a URL of a .gguf file      https://host/path/Foo-7B-Q4_K_M.gguf  (stored as foo-7b:q4_k_m)
  a local .gguf file         ./Foo-Q8_0.gguf  (imported as foo:q8_0)
  a registry name            HOST[:PORT]/NAMESPACE/MODEL:TAG, ollama.com/library/MODEL:TAG
An interrupted download resumes where it stopped when pulled again.
Hugging Face: HF_ENDPOINT picks another endpoint, HF_TOKEN is sent for private or gated repos."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "pull", help="download a model (catalog name, hf.co/OWNER/REPO, URL, file, registry)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="what to pull (see above)")
    parser.add_argument("--accept-license", action="store_true",
                        help="accept the model's license without being asked (needed for licenses "
                             "that are not OSI-approved when not on a terminal)")
    parser.add_argument("--max-speed", metavar="RATE",
                        help="cap the download speed in bytes per second: 10M, 500K, 2MiB")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a registry over plain HTTP")
    parser.set_defaults(handler=handle)


def ask_on_terminal(progress) -> object:  # type: ignore[no-untyped-def]
    """A yes/no question on the terminal (None without one: then only --accept-license works)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None

    def ask(prompt: str) -> bool:
        with progress.paused():
            try:
                answer = input(f"{prompt.rstrip()} [y/N] ")
            except EOFError:
                return False
        return answer.strip().lower() in ("y", "yes")

    return ask


def pull_if_missing(backend, model: str) -> None:  # type: ignore[no-untyped-def]
    """Pull a missing model that a source knows, with progress bars and the license question
    on the terminal, as ``hearth run`` and ``hearth compare`` do before they answer."""
    from hearth.cli.output import ProgressPrinter
    from hearth.errors import ModelNotFound

    try:
        backend.get_model(model)
    except ModelNotFound:
        with ProgressPrinter() as progress:
            backend.ensure_model(model, progress, ask=ask_on_terminal(progress))


def handle(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect
    from hearth.cli.output import ProgressPrinter
    from hearth.client import Client
    from hearth.references import is_local_path
    from hearth.units import parse_rate

    max_speed = parse_rate(args.max_speed)
    backend = connect()
    with ProgressPrinter() as progress:
        ask = None if args.accept_license else ask_on_terminal(progress)
        if is_local_path(args.model) and isinstance(backend, Client):
            # A running server cannot read this machine's files by path: upload the file.
            from hearth.runtime.library import name_for_file

            name = name_for_file(args.model)
            backend.create(name, from_path=args.model, progress=progress)
            print(f"imported {args.model} as {name}", file=sys.stderr)
            return 0
        backend.pull(args.model, progress, accept_license=args.accept_license, ask=ask,
                     max_speed=max_speed, insecure=args.insecure)
    return 0
