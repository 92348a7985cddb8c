"""``hearth config``: every setting with its current value and what it does."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("config", help="show every HEARTH_* setting and its value")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hearth import config
    from hearth.cli.output import print_columns

    rows = [["NAME", "VALUE", "DESCRIPTION"]]
    rows += [[name, value or "(unset)", description] for name, value, description in config.describe()]
    print_columns(rows)
    print_providers()
    return 0


def print_providers() -> None:
    """Remote providers and whether each has its key; the keys themselves are never shown."""
    from hearth import config
    from hearth.cli.output import print_columns
    from hearth.errors import HearthError
    from hearth.providers.directory import load_providers

    print(f"\nRemote providers (presets and {config.providers_file()}):")
    try:
        providers = load_providers()
    except HearthError as exc:
        print(f"  {exc.cli_message()}")
        return
    rows = [["PROVIDER", "ENDPOINT", "KEY", "MODELS"]]
    for provider in providers.values():
        if provider.key():
            key = f"{provider.key_source} (set)"
        elif provider.needs_key:
            key = f"{provider.api_key_env or 'api_key'} (not set)"
        else:
            key = "(none needed)"
        rows.append([provider.name, provider.endpoint, key, ", ".join(provider.models) or "any"])
    print_columns(rows)
