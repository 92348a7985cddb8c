"""``hearth search QUERY``: the catalog's matching models (license, open or closed, sizes and
quantizations), then GGUF repositories on Hugging Face when the hub answers quickly."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "search",
        help="search the model catalog and Hugging Face",
        description="Search hearth's catalog by name, family, publisher, description or license "
        "(every word must match; 'closed' or 'open' filter by weights), then Hugging Face for "
        "GGUF repositories (skipped quickly when offline or HEARTH_OFFLINE=1).",
    )
    parser.add_argument("query", nargs="*", help="words to look for (none: the whole catalog)")
    parser.add_argument("--no-hub", action="store_true", help="search the catalog only")
    parser.add_argument("--limit", type=int, default=10, help="most Hugging Face results (default 10)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=handle)


def _size(tag: dict[str, Any]) -> str:
    from hearth.units import human_size

    if not tag["size"]:
        return ""
    return ("~" if tag["size_approx"] else "") + human_size(tag["size"])


def _context(tokens: int) -> str:
    if not tokens:
        return ""
    kilo = tokens // 1024
    if tokens % 1024 == 0 and kilo & (kilo - 1) == 0:  # 8192 -> 8K, 131072 -> 128K
        return f"{kilo // 1024}M context" if kilo >= 1024 else f"{kilo}K context"
    return f"{tokens // 1000}K context" if tokens % 1000 == 0 else f"{tokens:,} context"


def _print_entry(console: Any, item: dict[str, Any]) -> None:
    from rich.markup import escape

    from hearth.runtime.facts import badge

    closed = item["weights"] == "closed"
    weights = "closed weights, API only" if closed else "open weights"
    license_text = item["license"] if closed else badge(item["license"])
    head = [f"[bold]{escape(item['model'])}[/bold]", escape(item["publisher"]),
            escape(license_text), weights, _context(item["context_length"])]
    console.print(" · ".join(part for part in head if part))
    if item["description"]:
        console.print(f"  [dim]{escape(item['description'])}[/dim]")
    if closed:
        if item["provider_hint"]:
            console.print(f"  reach it with {escape(item['provider_hint'])}")
        return
    for tag in item["tags"]:
        name = tag["tag"] + (f" ({', '.join(tag['aliases'])})" if tag["aliases"] else "")
        others = [q for q in tag["quantizations"] if q != tag["quantization"]]
        cells = [f"{name:<16}", f"{tag['parameter_size']:<7}", f"{tag['quantization']:<7}",
                 f"{_size(tag):<9}"]
        extra = []
        if others:
            extra.append("also " + " ".join(others))
        if "license" in tag:
            extra.append(f"license {tag['license']}")
        if not tag["source"]:
            extra.append("not pullable as one file")
        console.print("  " + escape(" ".join(cells) + "  " + "  ".join(extra)).rstrip())


def _print_hub(console: Any, hub: Any, query: str) -> None:
    from rich.markup import escape

    if hub.skipped:
        console.print(f"[dim]Hugging Face not searched: {escape(hub.skipped)}[/dim]")
        return
    if not hub.models:
        console.print(f"[dim]Hugging Face: no GGUF repositories match '{escape(query)}'[/dim]")
        return
    console.print(f"[bold]Hugging Face[/bold] GGUF repositories matching '{escape(query)}' "
                  "(pull with hearth pull hf.co/OWNER/REPO:QUANT):")
    for model in hub.models:
        downloads = f"{model['downloads']:,} downloads" if model["downloads"] is not None else ""
        license_text = model["license"] or "license not stated"
        console.print(f"  {escape(model['repo']):<50} {downloads:>18}  {escape(license_text)}")


def handle(args: argparse.Namespace) -> int:
    import json

    from hearth.cli.output import stdout_console
    from hearth.runtime.facts import search_catalog

    query = " ".join(args.query).strip()
    found = search_catalog(query)
    hub = None
    if not args.no_hub and query:
        from hearth.runtime.facts import search_hugging_face

        hub = search_hugging_face(query, limit=max(1, args.limit))
    if args.json:
        hub_data = None if hub is None else {"models": hub.models, "skipped": hub.skipped,
                                              "endpoint": hub.endpoint}
        print(json.dumps({"query": query, "catalog": found, "hub": hub_data}, indent=2))
        return 0
    console = stdout_console(highlight=False, soft_wrap=True)
    if found:
        for item in found:
            _print_entry(console, item)
    else:
        console.print(f"no catalog model matches '{query}'")
    if hub is not None:
        console.print()
        _print_hub(console, hub, query)
    return 0
