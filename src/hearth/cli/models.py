"""Model lifecycle commands: list, show, rm, cp, prune."""

from __future__ import annotations

import argparse

SHOW_SECTIONS = ("license", "modelfile", "parameters", "template", "system")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", aliases=["ls"], help="list installed models")
    parser.set_defaults(handler=handle_list)

    parser = commands.add_parser("show", help="show a model's details")
    parser.add_argument("model")
    group = parser.add_mutually_exclusive_group()
    for section in SHOW_SECTIONS:
        group.add_argument(f"--{section}", action="store_const", const=section, dest="section",
                           help=f"print only the model's {section}")
    parser.set_defaults(handler=handle_show, section=None)

    parser = commands.add_parser("rm", help="remove models (blobs go when no name uses them)")
    parser.add_argument("models", nargs="+", metavar="MODEL")
    parser.set_defaults(handler=handle_rm)

    parser = commands.add_parser("cp", help="copy a model to a new name")
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.set_defaults(handler=handle_cp)

    parser = commands.add_parser("prune", help="remove unused blobs and leftovers of interrupted writes")
    parser.set_defaults(handler=handle_prune)


def handle_list(args: argparse.Namespace) -> int:
    # Reads the store directly (no pydantic, no engine) so that `hearth list` starts fast.
    from hearth.cli.output import human_age, human_size, print_columns
    from hearth.store import ModelStore

    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for model in ModelStore().list():
        rows.append([model.name.short, model.short_id, human_size(model.size), human_age(model.modified_at)])
    print_columns(rows)
    return 0


def handle_show(args: argparse.Namespace) -> int:
    from hearth.runtime import Runtime

    shown = Runtime().show(args.model)
    if args.section:
        text = getattr(shown, args.section)
        print(text.rstrip("\n"))
        return 0
    info = shown.model_info
    arch = info.get("general.architecture", "")
    model_rows = [
        ("architecture", arch),
        ("parameters", shown.details.parameter_size),
        ("context length", info.get(f"{arch}.context_length", "")),
        ("embedding length", info.get(f"{arch}.embedding_length", "")),
        ("quantization", shown.details.quantization_level),
    ]
    print("  Model")
    for key, value in model_rows:
        if value != "":
            print(f"    {key:<20}{value}")
    if shown.parameters:
        print("\n  Parameters")
        for line in shown.parameters.splitlines():
            print(f"    {line}")
    if shown.system:
        print("\n  System")
        for line in shown.system.strip().splitlines()[:4]:
            print(f"    {line}")
    if shown.messages:
        print("\n  Messages")
        for message in shown.messages:
            print(f"    {message.role:<10}{message.content[:70]}")
    if shown.license:
        print("\n  License")
        for line in [x for x in shown.license.strip().splitlines() if x.strip()][:2]:
            print(f"    {line.strip()}")
    return 0


def handle_rm(args: argparse.Namespace) -> int:
    from hearth.runtime import Runtime

    runtime = Runtime()
    for name in args.models:
        runtime.delete(name)
        print(f"deleted '{name}'")
    return 0


def handle_cp(args: argparse.Namespace) -> int:
    from hearth.runtime import Runtime

    Runtime().copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def handle_prune(args: argparse.Namespace) -> int:
    from hearth.cli.output import human_size
    from hearth.store import ModelStore

    report = ModelStore().prune()
    print(f"removed {report.blobs_removed} unused blob(s) and {report.temp_files_removed} "
          f"leftover temp file(s), freed {human_size(report.bytes_freed)}")
    return 0
