"""Model lifecycle commands: list, show, rm, cp, prune."""

from __future__ import annotations

import argparse

SHOW_SECTIONS = ("license", "modelfile", "parameters", "template", "system")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("list", aliases=["ls"], help="list installed models")
    parser.add_argument("--remote", nargs="?", const="", default=None, metavar="PROVIDER",
                        help="list the models remote providers offer (all with a key, or PROVIDER)")
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

    parser = commands.add_parser("ps", help="models loaded by the running server")
    parser.set_defaults(handler=handle_ps)

    parser = commands.add_parser("stop", help="unload a model from the running server")
    parser.add_argument("model")
    parser.set_defaults(handler=handle_stop)

    parser = commands.add_parser("prune", help="remove unused blobs and leftovers of interrupted writes")
    parser.set_defaults(handler=handle_prune)


def handle_list(args: argparse.Namespace) -> int:
    # No pydantic and no engine on this path, so that `hearth list` starts fast.
    from datetime import datetime

    if args.remote is not None:
        from hearth.cli.remote import handle_list_remote

        return handle_list_remote(args.remote)

    from hearth.cli.output import human_age, print_columns
    from hearth.client import Client
    from hearth.units import human_size

    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    client = Client.if_running()
    if client is not None:
        for model in client.list_raw():
            modified = datetime.fromisoformat(model["modified_at"].replace("Z", "+00:00"))
            rows.append([model["name"], model["digest"][:12], human_size(model["size"]), human_age(modified)])
    else:
        from hearth.runtime.installed import installed_models

        for listed in installed_models():
            rows.append([listed.name, listed.short_id, human_size(listed.size),
                         human_age(listed.modified_at)])
    print_columns(rows)
    return 0


def handle_show(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect

    shown = connect().show(args.model)
    if shown.remote_host and not args.section:
        from hearth.cli.remote import print_remote_show

        print_remote_show(shown)
        return 0
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
    if shown.adapters:
        print("\n  Adapters")
        for adapter in shown.adapters:
            print(f"    {adapter}")
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
    from hearth.cli.backend import connect

    runtime = connect()
    for name in args.models:
        runtime.delete(name)
        print(f"deleted '{name}'")
    return 0


def handle_cp(args: argparse.Namespace) -> int:
    from hearth.cli.backend import connect

    connect().copy(args.source, args.destination)
    print(f"copied '{args.source}' to '{args.destination}'")
    return 0


def handle_prune(args: argparse.Namespace) -> int:
    from hearth.runtime import Runtime
    from hearth.units import human_size

    report = Runtime().prune()
    print(f"removed {report.blobs_removed} unused blob(s) and {report.temp_files_removed} "
          f"leftover temp file(s), freed {human_size(report.bytes_freed)}")
    return 0


def handle_ps(args: argparse.Namespace) -> int:
    import sys
    from datetime import datetime, timezone

    from hearth import config
    from hearth.cli.output import print_columns
    from hearth.client import Client
    from hearth.units import human_size

    rows = [["NAME", "ID", "SIZE", "CONTEXT", "ATTENTION", "UNTIL"]]
    client = Client.if_running()
    if client is None:
        print_columns(rows)
        print(f"(no hearth server answers at {config.host()}; start one with `hearth serve`)", file=sys.stderr)
        return 0
    for model in client.ps().models:
        until = "busy" if model.in_use else "forever"
        if model.expires_at and model.expires_at.year < 2300:
            seconds = (model.expires_at - datetime.now(timezone.utc)).total_seconds()
            until = f"{max(0, int(seconds))} seconds from now" if seconds < 120 else f"{int(seconds // 60)} minutes from now"
        attention = f"flash {model.flash_attention or '?'}, kv {model.kv_cache_type or '?'}"
        rows.append([model.name, model.digest[:12], human_size(model.size), str(model.context_length),
                     attention, until])
    print_columns(rows)
    return 0


def handle_stop(args: argparse.Namespace) -> int:
    from hearth import config
    from hearth.client import Client
    from hearth.errors import HearthError

    client = Client.if_running()
    if client is None:
        raise HearthError(f"no hearth server answers at {config.host()}; nothing is loaded")
    client.stop(args.model)
    return 0
