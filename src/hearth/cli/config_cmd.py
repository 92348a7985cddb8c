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
    return 0
