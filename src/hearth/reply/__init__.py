"""The model-output layer: what a model wrote, read back in its own family's format.

The engine decodes tokens with special tokens kept; ``detect_style`` reads the model's chat
template (and special tokens) for the family's markers, and ``make_parser`` gives a streaming
``ReplyParser`` for one reply that splits the text into content, thinking and complete tool
calls, markers stripped, however the text is cut into pieces. ``call_frame`` tells the engine
how a call is written, for the grammar that constrains it; ``new_call_id`` makes ids the
family's templates accept. Pure Python: below the runtime and the engine, beside prompt/.
"""

from hearth.reply.delta import ParsedCall, ReplyDelta
from hearth.reply.frames import CallFrame, call_frame
from hearth.reply.ids import new_call_id
from hearth.reply.parser import ReplyParser, make_parser
from hearth.reply.style import ReplyStyle, detect_style, supports_thinking, supports_tools
from hearth.reply.thinking import prompt_opens_thinking

__all__ = [
    "CallFrame",
    "ParsedCall",
    "ReplyDelta",
    "ReplyParser",
    "ReplyStyle",
    "call_frame",
    "detect_style",
    "make_parser",
    "new_call_id",
    "prompt_opens_thinking",
    "supports_thinking",
    "supports_tools",
]
