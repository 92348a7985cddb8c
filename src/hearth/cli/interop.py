"""``hearth export MODEL out.gguf`` and ``hearth import --ollama [DIR]``: models out to other
GGUF tools and in from an Ollama store. Both work on the local store (HEARTH_HOME) directly."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "export", help="write a model as a plain GGUF file (for llama.cpp, LM Studio, ...)",
        description="Write an installed model as one GGUF file. The model's own chat template "
        "and license id go into the file's metadata when they differ from the GGUF's; system "
        "prompt, parameters and messages have no place in a GGUF and are listed as not carried. "
        "Models with LoRA adapters are refused.")
    parser.add_argument("model")
    parser.add_argument("destination", metavar="OUT.gguf", help="file to write (or a folder)")
    parser.add_argument("--force", action="store_true", help="replace the file if it exists")
    parser.set_defaults(handler=handle_export)

    parser = commands.add_parser(
        "import", help="import the models of an existing Ollama store",
        description="Import every model of an Ollama store into hearth's store: names are kept "
        "(registry.ollama.ai/library/MODEL:TAG), models already present are skipped, every blob "
        "is checked by sha256 and hard-linked when both stores are on one file system (copied "
        "otherwise). Exit status 1 when any model failed.")
    parser.add_argument("--ollama", nargs="?", const="", default=None, metavar="DIR",
                        help="the Ollama models folder (default: $OLLAMA_MODELS or ~/.ollama/models)")
    parser.add_argument("--short-names", action="store_true",
                        help="name registry.ollama.ai/library/MODEL:TAG models MODEL:TAG")
    parser.set_defaults(handler=handle_import)


def handle_export(args: argparse.Namespace) -> int:
    from hearth.cli.output import ProgressPrinter
    from hearth.runtime import Runtime
    from hearth.units import human_size

    with ProgressPrinter() as progress:
        result = Runtime().export(args.model, args.destination, force=args.force, progress=progress)
    how = ("copied unchanged, sha256 verified" if result.unchanged_copy
           else "metadata set: " + ", ".join(result.written_metadata))
    print(f"exported '{args.model}' to {result.path} ({human_size(result.size)}; {how})")
    if result.not_carried:
        print("not carried (set them in the other tool): " + "; ".join(result.not_carried))
    return 0


def handle_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hearth.cli.output import ProgressPrinter, print_columns
    from hearth.errors import InvalidRequest
    from hearth.runtime import Runtime

    if args.ollama is None:
        raise InvalidRequest("say where to import from: hearth import --ollama [DIR] (a GGUF file "
                             "is imported with: hearth create NAME --from FILE.gguf)")
    given = Path(args.ollama).expanduser() if args.ollama else None
    with ProgressPrinter() as progress:
        root, outcomes = Runtime().import_ollama(given, progress, short_names=args.short_names)
    rows = [["STATUS", "NAME", "DETAIL"]]
    for outcome in outcomes:
        detail = outcome.detail
        if outcome.status == "imported":
            detail = f"{outcome.linked} blob(s) linked, {outcome.copied} copied"
        rows.append([outcome.status, outcome.name or outcome.source, detail])
        rows.extend(["", "", f"note: {note}"] for note in outcome.notes)
    if outcomes:
        print_columns(rows)
    counts = {status: sum(o.status == status for o in outcomes)
              for status in ("imported", "skipped", "failed")}
    print(f"{len(outcomes)} model(s) in {root}: {counts['imported']} imported, "
          f"{counts['skipped']} skipped, {counts['failed']} failed")
    return 1 if counts["failed"] else 0
