"""``hearth quality MODEL_A MODEL_B``: perplexity, size, memory and speed side by side."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "quality",
        help="compare models' perplexity, size, memory and speed on the same text",
        description="Measure the perplexity of each model (installed names or GGUF files) on the "
        "same text (default: a public-domain chapter shipped with hearth), with file size, "
        "memory and tokens/s, in one table. Lower perplexity is better.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL")
    parser.add_argument("--text", metavar="FILE", help="UTF-8 text to measure on")
    parser.add_argument("--ctx", type=int, default=512, help="tokens per evaluation window (default 512)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.set_defaults(handler=handle, engine_work=lambda args: f"measuring {', '.join(args.models)}")


def handle(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from hearth import config
    from hearth.cli.output import print_columns
    from hearth.errors import InvalidRequest
    from hearth.runtime import Runtime
    from hearth.runtime.quality import default_text
    from hearth.units import human_size

    if args.ctx < 16:
        raise InvalidRequest("--ctx must be at least 16")
    if args.text:
        try:
            text = Path(args.text).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequest(f"cannot read {args.text}: {getattr(exc, 'strerror', None) or exc}") from exc
    else:
        text = default_text()
    threads = args.threads or config.num_thread()
    runtime = Runtime()
    rows = [["MODEL", "QUANT", "FILE SIZE", "MEMORY", "PERPLEXITY", "TOKENS/S"]]
    for name in args.models:
        print(f"measuring {name} ...", file=sys.stderr)
        row = runtime.measure_quality(name, text, args.ctx, threads)
        rows.append([name, row.quantization, human_size(row.file_size), human_size(row.memory),
                     f"{row.perplexity:.3f}", f"{row.tokens_per_second:.1f}"])
    print_columns(rows)
    print(f"({len(text.split())} words of text, windows of {args.ctx} tokens; "
          "lower perplexity is better)", file=sys.stderr)
    return 0
