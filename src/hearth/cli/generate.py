"""``hearth generate``: the raw engine on a GGUF file, the way ``llama-cli`` is used."""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "generate",
        help="raw completion on a GGUF file (like llama-cli)",
        description="Continue PROMPT with the model in FILE.gguf; no chat template is applied.",
    )
    parser.add_argument("-m", "--model", required=True, metavar="FILE.gguf", help="GGUF model file")
    parser.add_argument("-p", "--prompt", required=True, help="text to continue")
    parser.add_argument("-n", "--n-predict", type=int, default=128, help="tokens to generate (-1: until done)")
    parser.add_argument("--temp", type=float, default=0.8, help="temperature (0: greedy)")
    parser.add_argument("--ctx", type=int, default=None, help="context size (num_ctx)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads")
    parser.add_argument("--seed", type=int, default=None, help="random seed")
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--repeat-penalty", type=float, default=None)
    parser.add_argument("--adapter", action="append", metavar="FILE[:SCALE]",
                        help="apply a LoRA adapter (repeatable)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print timings and tokens/s")
    parser.set_defaults(handler=handle, engine_work=lambda args: f"generating with {args.model}")


def handle(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pydantic import ValidationError

    from hearth.api.types import Options
    from hearth.api.validation import first_problem
    from hearth.cli.streaming import parse_adapter_flags, print_timings, stream_to_stdout
    from hearth.errors import InvalidRequest
    from hearth.runtime import Runtime

    try:
        options = Options(
            num_predict=args.n_predict, temperature=args.temp, num_ctx=args.ctx,
            num_thread=args.threads, seed=args.seed, top_k=args.top_k, top_p=args.top_p,
            repeat_penalty=args.repeat_penalty,
        )
    except ValidationError as exc:
        where, what = first_problem(exc)
        raise InvalidRequest(f"{where.split('.')[0]}: {what}") from None
    runtime = Runtime()
    loaded = runtime.load_file(Path(args.model), options, parse_adapter_flags(args.adapter))
    print(args.prompt, end="", flush=True)
    final = stream_to_stdout(runtime.generate_tokens(loaded, args.prompt, options), lambda c: c.response)
    print()
    if args.verbose:
        print_timings(final)
    runtime.close()
    return 0
