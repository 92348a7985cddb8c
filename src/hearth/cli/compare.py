"""``hearth compare MODEL_A MODEL_B PROMPT``: one prompt, two models (local or remote), the
answers side by side with time to first token, tokens/s and where the data went.

The models run one after the other, never together, so that a local model does not share the
CPU with the other one's work. Both are measured the same way, here: time to first token from
sending the request to the first piece of text, tokens/s as the tokens generated over the time
from the first piece to the last.
"""

from __future__ import annotations

import argparse
import sys
import time


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "compare",
        help="run one prompt on two models and compare answers and speed",
        description="Run PROMPT on MODEL_A, then on MODEL_B (local or PROVIDER/MODEL), and print "
        "the answers side by side with time to first token, tokens/s and where the data went.",
    )
    parser.add_argument("model_a")
    parser.add_argument("model_b")
    parser.add_argument("prompt", nargs="+", help="the prompt (joined with spaces)")
    parser.add_argument("--system", help="system prompt for both models")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                        help="model option for both, e.g. temperature=0 num_predict=64 (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.set_defaults(handler=handle, engine_work=lambda args: f"comparing {args.model_a} and {args.model_b}")


class Result:
    """One model's run. (A plain class: dataclasses would slow every `hearth` start.)"""

    def __init__(self, model: str) -> None:
        self.model = model
        self.answer = ""
        self.error = ""
        self.time_to_first_token_s: float | None = None
        self.tokens: int | None = None
        self.tokens_per_second: float | None = None
        self.total_s: float | None = None
        self.remote = False
        self.data_went_to = ""

    def as_dict(self) -> dict[str, object]:
        return dict(vars(self))


def where_data_went(model: str, runtime: object, remote_host: str | None) -> tuple[bool, str]:
    from hearth.cli.remote import remote_target

    try:
        target = remote_target(model)
    except Exception:  # an invalid name fails again, with its message, when it runs
        target = None
    if target is not None:
        return True, f"{target.provider.name} ({target.provider.endpoint}): left your machine"
    if remote_host:
        return True, f"{remote_host}: left your machine"
    address = getattr(runtime, "address", None)
    return False, f"this machine (hearth serve at {address})" if address else "this machine"


def run_one(runtime: object, model: str, request: object) -> Result:
    from hearth.cli.pull import pull_if_missing
    from hearth.cli.remote import announce
    from hearth.errors import HearthError

    result = Result(model=model)
    announce(model)
    pieces: list[str] = []
    final = None
    first = last = None
    started = time.perf_counter()
    try:
        pull_if_missing(runtime, model)  # outside the timing
        started = time.perf_counter()
        for chunk in runtime.chat(request.model_copy(update={"model": model})):
            if chunk.message.content:
                now = time.perf_counter()
                first = first if first is not None else now
                last = now
                pieces.append(chunk.message.content)
            final = chunk
    except HearthError as exc:
        result.error = exc.message
    ended = time.perf_counter()
    result.answer = "".join(pieces)
    result.total_s = round(ended - started, 3)
    if first is not None:
        result.time_to_first_token_s = round(first - started, 3)
    if final is not None and final.done:
        result.tokens = final.eval_count
        span = (last or ended) - (first or started)
        if result.tokens and span > 0:
            # The first token arrives at `first`; the rate counts the ones after it.
            result.tokens_per_second = round(max(result.tokens - 1, 1) / span, 2)
    remote_host = getattr(final, "remote_host", None) if final is not None else None
    result.remote, result.data_went_to = where_data_went(model, runtime, remote_host)
    return result


def handle(args: argparse.Namespace) -> int:
    from hearth.api.types import ChatRequest, Message, Options
    from hearth.cli.backend import connect
    from hearth.cli.streaming import parse_option_flags

    runtime = connect()
    options = Options(**parse_option_flags(args.option))
    messages = [Message(role="system", content=args.system)] if args.system else []
    messages.append(Message(role="user", content=" ".join(args.prompt)))
    request = ChatRequest(model=args.model_a, messages=messages, options=options)
    results = []
    for model in (args.model_a, args.model_b):
        print(f"running {model} ...", file=sys.stderr, flush=True)
        results.append(run_one(runtime, model, request))
    runtime.close()
    if args.json:
        import json

        print(json.dumps({"prompt": " ".join(args.prompt), "results": [r.as_dict() for r in results]}, indent=2))
    else:
        print_side_by_side(results)
    return 1 if any(r.error for r in results) else 0


def _figure(value: float | int | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"


def print_side_by_side(results: list[Result]) -> None:
    import shutil
    import textwrap

    width = max(60, min(shutil.get_terminal_size((120, 24)).columns, 200))
    label = 22
    column = (width - label - 3) // 2

    def wrap(text: str) -> list[str]:
        lines: list[str] = []
        for paragraph in text.strip().splitlines() or [""]:
            lines += textwrap.wrap(paragraph, column) or [""]
        return lines

    def row(name: str, left: list[str], right: list[str]) -> None:
        for i in range(max(len(left), len(right))):
            cells = [left[i] if i < len(left) else "", right[i] if i < len(right) else ""]
            print(f"{name if i == 0 else '':<{label}}{cells[0]:<{column}}   {cells[1]}".rstrip())

    a, b = results
    row("", [a.model], [b.model])
    row("", ["-" * min(column, len(a.model))], ["-" * min(column, len(b.model))])
    answers = [wrap(f"Error: {r.error}" if r.error and not r.answer else r.answer) for r in results]
    row("answer", answers[0], answers[1])
    print()
    for name, values in (
        ("time to first token", [_figure(r.time_to_first_token_s, " s") for r in results]),
        ("tokens/s", [_figure(r.tokens_per_second, "") for r in results]),
        ("tokens", [_figure(r.tokens, "") for r in results]),
        ("total time", [_figure(r.total_s, " s") for r in results]),
        ("data went to", [r.data_went_to for r in results]),
    ):
        row(name, wrap(values[0]), wrap(values[1]))
    for r in results:
        if r.error and r.answer:
            print(f"\n{r.model}: Error: {r.error}")
