"""The interactive chat of ``hearth run MODEL``: history, multi-line input and slash commands.

Ctrl+C stops the answer being written and keeps the session; Ctrl+D (or /bye) leaves.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from hearth.api.types import ChatRequest, Message, Options
from hearth.cli.output import dimmed
from hearth.cli.remote import announce, watched
from hearth.cli.streaming import ReplyWriter, print_timings, shows_thinking
from hearth.errors import HearthError

HELP = """Available commands:
  /set parameter KEY VALUE   set a model option (e.g. /set parameter temperature 0)
  /set system TEXT           set the system prompt
  /set think [LEVEL]         let a reasoning model think first, shown dimmed (LEVEL: low|medium|high)
  /set nothink               answer without thinking
  /set hidethinking          think, but show only the answer (/set nohidethinking shows it again)
  /show info|license|parameters|template|system
  /clear                     forget the conversation so far
  /save NAME                 save this session (system prompt, parameters, messages) as a model
  /load NAME                 switch to another model (starts a new conversation)
  /bye                       leave (Ctrl+D works too)
  /?                         this help
Use \"\"\" to begin and end a multi-line message."""


class ChatSession:
    def __init__(self, runtime: Any, model: str, options: Options, system: str | None,
                 fmt: Any, verbose: bool, adapters: tuple[tuple[str, float], ...] = (), *,
                 think: bool | str | None = None, hide_thinking: bool = False) -> None:
        self.runtime = runtime
        self.adapters = adapters
        self.model = model
        self.options = options
        self.system = system
        self.format = fmt
        self.verbose = verbose
        self.think = think  # None: the model's own default
        self.hide_thinking = hide_thinking
        self.history: list[Message] = []

    def loop(self) -> int:
        with contextlib.suppress(ImportError):
            import readline  # noqa: F401 - gives input() line editing and history
        while True:
            try:
                text = self._read_message()
            except EOFError:
                print()
                return 0
            except KeyboardInterrupt:
                print("\nUse Ctrl + d or /bye to exit.")
                continue
            if text is None or not text.strip():
                continue
            if text.startswith("/"):
                if self._command(text.strip()) == "bye":
                    return 0
                continue
            self._answer(text)

    def _read_message(self) -> str | None:
        line = input(">>> ")
        if not line.lstrip().startswith('"""'):
            return line
        body = line.lstrip()[3:]
        if body.rstrip().endswith('"""') and body.strip() != "":
            return body.rstrip()[:-3]
        lines = [body] if body else []
        while True:
            more = input("... ")
            if more.rstrip().endswith('"""'):
                lines.append(more.rstrip()[:-3])
                return "\n".join(lines)
            lines.append(more)

    def _answer(self, text: str) -> None:
        self.history.append(Message(role="user", content=text))
        messages = ([Message(role="system", content=self.system)] if self.system else []) + self.history
        request = ChatRequest(model=self.model, messages=messages, options=self.options, format=self.format,
                              think=self.think)
        pieces: list[str] = []
        thoughts: list[str] = []
        writer = ReplyWriter(shows_thinking(self.think, self.hide_thinking))
        final = None
        try:
            chunks = self.runtime.chat(request, adapters=self.adapters) if self.adapters else self.runtime.chat(request)
            for chunk in watched(chunks, announce(self.model)):
                pieces.append(chunk.message.content)
                thoughts.append(chunk.message.thinking or "")
                writer.write(chunk.message.thinking, chunk.message.content)
                final = chunk
            writer.close_thinking(answer_follows=False)
        except KeyboardInterrupt:
            print("\n(stopped)")
        except HearthError as exc:
            self.history.pop()
            print(f"\n{exc.cli_message()}", file=sys.stderr)
            return
        print("\n")
        # The reasoning is kept with the answer, as Ollama does; templates that want it gone
        # from earlier turns (Qwen3's) leave it out themselves.
        self.history.append(Message(role="assistant", content="".join(pieces), thinking="".join(thoughts) or None))
        if final is not None and final.dropped_messages:
            print(dimmed(f"({final.dropped_messages} of the oldest messages no longer fit the context "
                         "window (num_ctx) and were left out; /clear starts afresh)"), file=sys.stderr)
        if self.verbose and final is not None and final.done:
            print_timings(final)

    def _command(self, text: str) -> str | None:
        words = text.split(maxsplit=3)
        command = words[0].lower()
        if command in ("/bye", "/exit"):
            return "bye"
        if command in ("/?", "/help"):
            print(HELP)
        elif command == "/clear":
            self.history.clear()
            print("Cleared session context")
        elif command == "/set":
            self._set(text)
        elif command == "/show":
            self._show(words[1].lower() if len(words) > 1 else "")
        elif command == "/save":
            self._save(words[1] if len(words) > 1 else "")
        elif command == "/load":
            self._load(words[1] if len(words) > 1 else "")
        else:
            print(f"Unknown command '{words[0]}'. Type /? for help")
        return None

    def _set(self, text: str) -> None:
        from hearth.cli.streaming import parse_option_flags

        parts = text.split(maxsplit=2)
        what = parts[1].lower() if len(parts) > 1 else ""
        if what == "system" and len(parts) == 3:
            self.system = parts[2].strip().strip('"')
            print("Set system message.")
            return
        if what in ("think", "nothink", "hidethinking", "nohidethinking"):
            self._set_thinking(what, parts[2].strip() if len(parts) == 3 else None)
            return
        if what == "parameter":
            rest = parts[2].split(maxsplit=1) if len(parts) == 3 else []
            if len(rest) != 2:
                print("Usage: /set parameter KEY VALUE")
                return
            try:
                update = parse_option_flags([f"{rest[0]}={rest[1]}"])
                self.options = Options(**update).merged_over(self.options)
            except HearthError as exc:
                print(exc.cli_message())
                return
            print(f"Set parameter '{rest[0]}' to '{rest[1]}'")
            return
        print("Usage: /set parameter KEY VALUE | /set system TEXT | /set think [low|medium|high] | /set nothink")

    def _set_thinking(self, what: str, level: str | None) -> None:
        from hearth.cli.streaming import THINK_LEVELS

        if what == "hidethinking":
            self.hide_thinking = True
            print("Set 'hidethinking' mode.")
        elif what == "nohidethinking":
            self.hide_thinking = False
            print("Set 'nohidethinking' mode.")
        elif what == "nothink":
            self.think = False
            print("Set 'nothink' mode.")
        elif level is None:
            self.think = True
            print("Set 'think' mode.")
        elif level.lower() in THINK_LEVELS:
            self.think = level.lower()
            print(f"Set 'think' mode to '{self.think}'.")
        else:
            print("Usage: /set think [low|medium|high]")

    def _save(self, name: str) -> None:
        """A derived model, as Ollama's /save: FROM the current model, with this session's
        system prompt, parameters and conversation as its SYSTEM, PARAMETERs and MESSAGEs."""
        from hearth.modelfile import Modelfile

        if not name:
            print("Usage: /save NAME")
            return
        modelfile = Modelfile(
            from_=self.model,
            system=self.system,
            parameters=self.options.model_dump(exclude_none=True),
            messages=[{"role": m.role, "content": m.content} for m in self.history],
        )
        try:
            self.runtime.create(name, modelfile=modelfile.to_text(), source="/save")
        except ValueError as exc:  # a value the Modelfile syntax cannot quote
            print(f"Error: cannot save this session: {exc}")
            return
        except HearthError as exc:
            print(exc.cli_message())
            return
        print(f"Created new model '{name}'")

    def _load(self, name: str) -> None:
        if not name:
            print("Usage: /load NAME")
            return
        try:
            self.runtime.show(name)
        except HearthError as exc:
            print(exc.cli_message())
            return
        self.model = name
        self.history.clear()
        self.system = None
        print(f"Loading model '{name}'")

    def _show(self, what: str) -> None:
        try:
            shown = self.runtime.show(self.model)
        except HearthError as exc:
            print(exc.cli_message())
            return
        if what == "info":
            info = shown.model_info
            arch = info.get("general.architecture", "")
            print(f"  architecture    {arch}")
            print(f"  parameters      {shown.details.parameter_size}")
            print(f"  context length  {info.get(f'{arch}.context_length', '')}")
            print(f"  quantization    {shown.details.quantization_level}")
        elif what == "license":
            print(shown.license or "No license was specified for this model.")
        elif what == "parameters":
            session = self.options.model_dump(exclude_none=True)
            lines = [shown.parameters] if shown.parameters else []
            lines += [f"{k:<16} {v}" for k, v in session.items()]
            print("\n".join(lines) or "No parameters were set for this model.")
        elif what == "template":
            print(shown.template or "No template was specified for this model.")
        elif what == "system":
            print(self.system or shown.system or "No system message was specified for this model.")
        else:
            print("Usage: /show info|license|parameters|template|system")
