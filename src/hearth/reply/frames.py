"""How a call is written, for the grammar that makes a model write one correctly.

The engine builds the grammar (GBNF) from this: with tool_choice "auto" it waits for one of
``triggers`` in the output and then constrains what follows (a lazy grammar); when a call is
forced the output is ``opener`` + the call + ``closer`` from the first token. Layouts:

- "name-arguments": ``{"name": N, "arguments": ARGS}``
- "name-parameters": ``{"name": N, "parameters": ARGS}`` (Llama 3.x)
- "mistral-list": ``[{"name": N, "arguments": ARGS}]``
- "mistral-args": ``N[ARGS]ARGS``, each call after its own ``opener``
- "harmony": no JSON around the call; ``opener`` + N + ``arguments_prefix`` + ARGS + ``closer``

None where no JSON grammar fits the family (Qwen3-Coder's XML) or there are no tools.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hearth.reply.harmony import CALL, CHANNEL, CONSTRAIN, MESSAGE
from hearth.reply.llama3 import PYTHON_TAG
from hearth.reply.mistral import ARGS, TOOL_CALLS
from hearth.reply.style import ReplyStyle
from hearth.reply.tagged import CLOSE, OPEN

Layout = Literal["name-arguments", "name-parameters", "mistral-list", "mistral-args", "harmony"]
_JSON_TRIGGER = '{"name"'


@dataclass(frozen=True)
class CallFrame:
    trigger: str                  # the text that opens a call in free text
    opener: str                   # what a forced call starts with (begins with ``trigger``
                                  # unless it is empty)
    closer: str                   # what ends it
    layout: Layout
    triggers: tuple[str, ...] = ()  # every text that opens a call, ``trigger`` first
    arguments_prefix: str = ""     # harmony: the text between the name and the arguments


def call_frame(style: ReplyStyle) -> CallFrame | None:
    if style.tools == "hermes":
        return CallFrame(OPEN, OPEN + "\n", "\n" + CLOSE, "name-arguments", (OPEN,))
    if style.tools == "mistral" and style.named_args:
        return CallFrame(TOOL_CALLS, TOOL_CALLS, "", "mistral-args", (TOOL_CALLS,),
                         arguments_prefix=ARGS)
    if style.tools == "mistral":
        return CallFrame(TOOL_CALLS, TOOL_CALLS, "", "mistral-list", (TOOL_CALLS,))
    if style.tools == "llama3":
        return CallFrame(PYTHON_TAG, PYTHON_TAG, "", "name-parameters",
                         (PYTHON_TAG, _JSON_TRIGGER))
    if style.tools == "json":
        return CallFrame(_JSON_TRIGGER, "", "", "name-arguments", (_JSON_TRIGGER,))
    if style.tools == "harmony":
        opener = CHANNEL + "commentary to=functions."
        return CallFrame("to=functions.", opener, CALL, "harmony", ("to=functions.",),
                         arguments_prefix=" " + CONSTRAIN + "json" + MESSAGE)
    return None
