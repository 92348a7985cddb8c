"""``hearth run MODEL [PROMPT]``: one answer, or an interactive chat without a prompt."""

from __future__ import annotations

import argparse
import sys


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run a model: answer PROMPT, or chat when no prompt is given",
        description="Stream the model's answer to PROMPT (read from stdin when piped). Without a "
        "prompt, start an interactive chat (/? for help). Catalog models are pulled when missing.",
    )
    parser.add_argument("model")
    parser.add_argument("prompt", nargs="*", help="the prompt (joined with spaces)")
    parser.add_argument("--system", help="system prompt for this run")
    parser.add_argument("--format", help='"json" or a JSON schema (as text) the answer must follow')
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                        help="model option, e.g. temperature=0 num_ctx=4096 (repeatable)")
    parser.add_argument("--adapter", action="append", metavar="FILE[:SCALE]",
                        help="apply a LoRA adapter (repeatable; runs in this process, not via a server)")
    parser.add_argument("--fallback", metavar="PROVIDER/MODEL",
                        help="if MODEL cannot answer here, send the prompt to this remote model "
                        "instead (it then leaves your machine)")
    parser.add_argument("--think", nargs="?", const=True, type=think_value, metavar="true|false|low|medium|high",
                        help="let a reasoning model think first (bare --think is true; the effort levels are "
                        "for models that take one, such as gpt-oss); its thinking is shown dimmed before the "
                        "answer")
    parser.add_argument("--hidethinking", action="store_true",
                        help="print only the answer, not the model's thinking (with --think, or a model that "
                        "thinks by default)")
    parser.add_argument("--verbose", action="store_true", help="print timings and tokens/s")
    parser.set_defaults(handler=handle, engine_work=lambda args: f"running {args.model}")


def think_value(text: str) -> bool | str:
    from hearth.cli.streaming import parse_think
    from hearth.errors import InvalidRequest

    try:
        return parse_think(text)
    except InvalidRequest:
        # argparse prints this as its own usage error (a prompt given after a bare --think lands here).
        raise argparse.ArgumentTypeError("expected true, false, low, medium or high (put the prompt "
                                         "before --think)") from None


def parse_format(text: str | None):
    import json

    from hearth.errors import InvalidRequest

    if not text or text == "json":
        return text
    try:
        schema = json.loads(text)
    except ValueError:
        raise InvalidRequest('--format must be "json" or a JSON schema') from None
    if not isinstance(schema, dict):
        raise InvalidRequest("--format JSON schema must be an object")
    return schema


def read_piped_prompt(prompt: str) -> str:
    if sys.stdin is None or sys.stdin.isatty():
        return prompt
    piped = sys.stdin.read()
    if piped.strip():
        return f"{piped.rstrip()}\n\n{prompt}" if prompt else piped
    return prompt


def handle(args: argparse.Namespace) -> int:
    from hearth.api.types import ChatRequest, Message, Options
    from hearth.cli.backend import connect
    from hearth.cli.pull import pull_if_missing
    from hearth.cli.remote import chat_stream, check_fallback, fall_back
    from hearth.cli.streaming import (
        ReplyWriter,
        parse_adapter_flags,
        parse_option_flags,
        print_timings,
        shows_thinking,
        write_reply,
    )
    from hearth.errors import HearthError

    fallback = check_fallback(args.fallback)
    adapters = parse_adapter_flags(args.adapter)
    if adapters:
        # Adapter files are on this machine; a server could not open them.
        from hearth.runtime import Runtime

        runtime = Runtime()
    else:
        runtime = connect()
    options = Options(**parse_option_flags(args.option))
    fmt = parse_format(args.format)
    prompt = read_piped_prompt(" ".join(args.prompt))
    model = args.model
    try:
        pull_if_missing(runtime, model)
    except HearthError as exc:
        model = fall_back(model, fallback, exc)
    if not prompt:
        if not sys.stdin.isatty():
            # Piped but empty: nothing to answer and no terminal to chat on.
            from hearth.errors import InvalidRequest

            raise InvalidRequest("no prompt given and stdin is empty")
        from hearth.cli.chat import ChatSession

        return ChatSession(runtime, model, options, args.system, fmt, args.verbose,
                           adapters if model == args.model else (), think=args.think,
                           hide_thinking=args.hidethinking).loop()
    messages = []
    if args.system:
        messages.append(Message(role="system", content=args.system))
    messages.append(Message(role="user", content=prompt))
    request = ChatRequest(model=model, messages=messages, options=options, format=fmt, think=args.think)

    def chat(request: ChatRequest):
        # Adapters belong to the local model, not to a remote fallback.
        if adapters and request.model == args.model:
            return runtime.chat(request, adapters=adapters)
        return runtime.chat(request)

    writer = ReplyWriter(shows_thinking(args.think, args.hidethinking))
    final = write_reply(chat_stream(chat, request, fallback if model == args.model else None), writer)
    print()
    if args.verbose:
        print_timings(final)
    runtime.close()
    return 0
