"""Ollama's Modelfile format: parse it into a ``Modelfile`` and write one back.

Syntax (as Ollama reads it): one ``INSTRUCTION arguments`` per line, instructions in any case,
``#`` lines are comments. A value runs to the end of its line, or is quoted with ``"..."`` or
``\"\"\"...\"\"\"``; quoted values may span lines and keep their content byte for byte (no
backslash escapes, because chat templates are full of them). Every error names its line.
"""

from __future__ import annotations

import bisect
import enum
import math
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hearth.api.types import Options
from hearth.api.validation import first_problem
from hearth.errors import InvalidRequest, ModelfileError
from hearth.references import written_like_path

INSTRUCTIONS = ("from", "parameter", "template", "system", "adapter", "license", "message")
MESSAGE_ROLES = ("system", "user", "assistant")
# Parameters that may repeat; each occurrence adds one item to a list.
LIST_PARAMETERS = frozenset({"stop"})

_WORD_RE = re.compile(r"[ \t]*(\S*)[ \t]*")
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


@dataclass
class Modelfile:
    from_: str
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    system: str | None = None
    licenses: list[str] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    adapters: list[tuple[str, float]] = field(default_factory=list)
    # Where FROM was written; not part of a Modelfile's meaning, so not compared.
    from_line: int = field(default=0, compare=False)

    def request_fields(self) -> dict[str, Any]:
        """The content as ``/api/create`` fields (Ollama's names), only what is set; ``from``,
        ``files`` and ``adapters`` are the sender's business (paths or uploaded blobs)."""
        fields: dict[str, Any] = {}
        for key, value in (("template", self.template), ("system", self.system)):
            if value is not None:
                fields[key] = value
        if self.parameters:
            fields["parameters"] = dict(self.parameters)
        if self.licenses:
            fields["license"] = list(self.licenses)
        if self.messages:
            fields["messages"] = list(self.messages)
        return fields

    @classmethod
    def from_request_fields(cls, from_: str, adapters: list[tuple[str, float]], *,
                            parameters: dict[str, Any] | None, template: str | None,
                            system: str | None, license: str | list[str] | None,
                            messages: list[dict] | None) -> Modelfile:
        """The Modelfile an ``/api/create`` request describes (the other way round)."""
        licenses = [license] if isinstance(license, str) else list(license or [])
        return cls(from_=from_, parameters=dict(parameters or {}), template=template, system=system,
                   licenses=licenses, messages=list(messages or []), adapters=adapters)

    def to_text(self) -> str:
        """A Modelfile text that ``parse_modelfile`` reads back to an equal ``Modelfile``."""
        lines = [f"FROM {_quote(self.from_)}"]
        for path, scale in self.adapters:
            line = f"ADAPTER {_quote(path, bare_spaces=False)}"
            lines.append(line if scale == 1.0 else f"{line} {scale!r}")
        if self.template is not None:
            lines.append(f"TEMPLATE {_quote(self.template)}")
        if self.system is not None:
            lines.append(f"SYSTEM {_quote(self.system)}")
        for name, value in self.parameters.items():
            values = value if name in LIST_PARAMETERS else [value]
            lines.extend(f"PARAMETER {name} {_format_parameter(item)}" for item in values)
        for message in self.messages:
            lines.append(f"MESSAGE {message['role']} {_quote(message['content'])}")
        lines.extend(f"LICENSE {_quote(text)}" for text in self.licenses)
        return "\n".join(lines) + "\n"


def parse_modelfile(text: str, source: str = "Modelfile") -> Modelfile:
    return _Parser(text, source).parse()


class Sources(enum.Enum):
    """Where a create may take its weights and adapters from. The caller says which; nothing
    guesses it from the text.

    ``LOCAL_FILES``: in the user's own process (``hearth create`` without a server, the Python
    API), so FROM and ADAPTER may name files on this machine, besides models and blobs.
    ``STORE_ONLY``: through the HTTP API, whose callers are not the machine's user: only an
    installed model's name or a blob uploaded with POST /api/blobs (``@sha256:<hex>``).
    """

    LOCAL_FILES = "local files"
    STORE_ONLY = "store only"


# One message for every path a create request names, whatever the path and whether or not it
# exists: the answer must not tell a caller anything about the server's files.
PATHS_REFUSED = ("create through the API takes a model name or uploaded blobs; paths on the "
                 "server are not read: upload the file with POST /api/blobs/sha256:<digest> and "
                 "pass it in `files`")

_DRIVE_RE = re.compile(r"[A-Za-z]:[\\/]")


def blob_reference(value: str) -> str | None:
    """The digest that ``@sha256:<hex>`` names (Ollama's spelling for an uploaded blob in a
    FROM or ADAPTER line), unchecked; None for anything else. The store validates it."""
    value = value.strip()
    return value[1:].strip() if value.startswith("@") else None


def names_a_path(value: str) -> bool:
    """Whether a FROM or ADAPTER value is a file rather than a model name or a blob: written
    like a path (``/``, ``./``, ``../``, ``~``, a ``.gguf`` name), a ``file:`` URL, a Windows
    path, or with a ``..`` part. Syntax only: nothing on disk is looked at."""
    value = value.strip()
    if blob_reference(value) is not None:
        return False
    return (written_like_path(value) or value.lower().startswith("file:") or "\\" in value
            or bool(_DRIVE_RE.match(value)) or ".." in value.split("/"))


def check_sources(modelfile: Modelfile, sources: Sources) -> None:
    """Refuse, under ``STORE_ONLY``, a FROM or any ADAPTER that names a file, before anything
    is read: the same ``InvalidRequest(PATHS_REFUSED)`` for every such value."""
    if sources is Sources.LOCAL_FILES:
        return
    # An adapter is a file or a blob, never a model: anything but a blob would be a path.
    if names_a_path(modelfile.from_) or any(blob_reference(path) is None
                                             for path, _scale in modelfile.adapters):
        raise InvalidRequest(PATHS_REFUSED)


def resolve_from(modelfile: Modelfile, base_dir: Path | None,
                 sources: Sources = Sources.LOCAL_FILES) -> tuple[str, Path | None]:
    """What FROM names: ``("blob", None)`` for ``@sha256:...`` (the digest is
    ``blob_reference(modelfile.from_)``), ``("file", path)`` for a file, existing or not, else
    ``("model", None)``. Under ``STORE_ONLY`` a file is refused (``check_sources``).

    A relative path is relative to the Modelfile's folder (``base_dir``, else the working
    directory), as in Ollama, so a model and its Modelfile can be shipped together.
    """
    value = modelfile.from_.strip()
    if blob_reference(value) is not None:
        return "blob", None
    if sources is Sources.STORE_ONLY and names_a_path(value):
        raise InvalidRequest(PATHS_REFUSED)
    if not written_like_path(value):
        return "model", None
    if base_dir is None:
        base_dir = Path.cwd()
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(base_dir).expanduser() / path
    return "file", Path(os.path.normpath(path.absolute()))


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        self.pos = 0
        self.from_: str | None = None
        self.from_line = 0
        self.result: dict[str, Any] = {
            "parameters": {},
            "template": None,
            "system": None,
            "licenses": [],
            "messages": [],
            "adapters": [],
        }

    def error(self, line: int, problem: str) -> ModelfileError:
        return ModelfileError(line, problem, source=self.source)

    def line_of(self, pos: int) -> int:
        return bisect.bisect_right(self.line_starts, pos)

    def parse(self) -> Modelfile:
        while self.pos < len(self.text):
            self.statement()
        if self.from_ is None:
            raise self.error(1, "missing FROM instruction (FROM <model name or .gguf path>)")
        return Modelfile(from_=self.from_, from_line=self.from_line, **self.result)

    def word(self) -> str:
        match = _WORD_RE.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()
        return match.group(1)

    def end_of_line(self) -> int:
        end = self.text.find("\n", self.pos)
        return len(self.text) if end == -1 else end

    def statement(self) -> None:
        line = self.line_of(self.pos)
        instruction = self.word()
        if not instruction or instruction.startswith("#"):
            self.pos = self.end_of_line() + 1
            return
        kind = instruction.lower()
        if kind not in INSTRUCTIONS:
            raise self.error(line, f"unknown instruction '{instruction}'")
        upper = kind.upper()
        head = ""
        if kind in ("parameter", "message"):
            head = self.word()
            if not head:
                what = "a parameter name" if kind == "parameter" else "a role"
                raise self.error(line, f"{upper} needs {what} and a value")
        value, quoted, tail = self.value(line, upper)
        if kind == "adapter":
            self.adapter(line, value, quoted, tail)
            return
        if tail:
            end_line = self.line_of(self.pos - 1)
            problem = f"unexpected text after the {upper} value"
            if end_line != line:
                problem += f" that starts on line {line} (is a closing quote missing?)"
            raise self.error(end_line, problem)
        getattr(self, f"on_{kind}")(line, head, value)

    def value(self, line: int, instruction: str) -> tuple[str, bool, str]:
        """Read one value; return it, whether it was quoted, and any text left on its line."""
        text = self.text
        for quote in ('"""', '"'):
            if not text.startswith(quote, self.pos):
                continue
            start = self.pos + len(quote)
            close = text.find(quote, start)
            if close == -1:
                raise self.error(line, f"unterminated {quote} string in {instruction} value")
            # A value may end in quote characters: the closing quote is the run's last ones.
            while text.startswith('"', close + len(quote)):
                close += 1
            self.pos = close + len(quote)
            end = self.end_of_line()
            tail = text[self.pos : end].strip()
            value = text[start:close]
            self.pos = end + 1
            return value, True, tail
        end = self.end_of_line()
        value = text[self.pos : end].strip()
        self.pos = end + 1
        if not value:
            raise self.error(line, f"{instruction} needs a value")
        return value, False, ""

    def on_from(self, line: int, _head: str, value: str) -> None:
        if self.from_ is not None:
            raise self.error(line, f"more than one FROM (the first is on line {self.from_line})")
        self.from_, self.from_line = value, line

    def on_template(self, _line: int, _head: str, value: str) -> None:
        self.result["template"] = value

    def on_system(self, _line: int, _head: str, value: str) -> None:
        self.result["system"] = value

    def on_license(self, _line: int, _head: str, value: str) -> None:
        self.result["licenses"].append(value)

    def on_message(self, line: int, role: str, value: str) -> None:
        if role.lower() not in MESSAGE_ROLES:
            raise self.error(
                line, f"invalid MESSAGE role '{role}'; use one of {', '.join(MESSAGE_ROLES)}"
            )
        self.result["messages"].append({"role": role.lower(), "content": value})

    def on_parameter(self, line: int, name: str, value: str) -> None:
        parameters = self.result["parameters"]
        key = name.lower()
        converted = _convert_parameter(key, value, lambda problem: self.error(line, problem))
        if key in LIST_PARAMETERS:
            parameters.setdefault(key, []).extend(converted)
        else:
            parameters[key] = converted

    def adapter(self, line: int, value: str, quoted: bool, tail: str) -> None:
        path, scale_text = value, tail
        if not quoted:
            # Unquoted: a trailing number is the scale; quote a path that ends in one.
            parts = value.rsplit(None, 1)
            if len(parts) == 2 and _is_float(parts[1]):
                path, scale_text = parts
        scale = 1.0
        if scale_text:
            if not _is_float(scale_text):
                raise self.error(line, f"ADAPTER scale must be a finite number, got '{scale_text}'")
            scale = float(scale_text)
        self.result["adapters"].append((path, scale))


def _convert_parameter(name: str, value: str, error: Callable[[str], Exception]) -> Any:
    fields = Options.model_fields
    if name not in fields:
        raise error(f"unknown PARAMETER '{name}'; valid names: {', '.join(sorted(fields))}")
    base = _base_type(fields[name].annotation)
    raw: Any = [value] if name in LIST_PARAMETERS else value
    if base is int and not re.fullmatch(r"[+-]?[0-9]+", value.strip()):
        # pydantic would accept "1.0" for an int; a Modelfile should say what it means.
        raise error(f"PARAMETER {name} expects {_TYPE_WORDS[int]}, got '{value}'")
    try:
        options = Options.model_validate({name: raw})
    except ValidationError as exc:
        reason = first_problem(exc)[1]
        expected = _TYPE_WORDS.get(base, "a value")
        raise error(f"PARAMETER {name} expects {expected}, got '{value}' ({reason})") from None
    converted = getattr(options, name)
    if isinstance(converted, float) and not math.isfinite(converted):
        raise error(f"PARAMETER {name} expects a finite number, got '{value}'")
    return converted


def _base_type(annotation: Any) -> Any:
    """``int`` for ``int | None``, ``str`` for ``list[str] | None``."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return _base_type(args[0])
    if typing.get_origin(annotation) is list and args:
        return _base_type(args[0])
    return annotation


def _is_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _format_parameter(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return _quote(str(value))


def _quote(value: str, bare_spaces: bool = True) -> str:
    """The value as the parser will read it back: bare when that is unambiguous, else quoted."""
    bare = (
        value
        and value == value.strip()
        and "\n" not in value
        and not value.startswith('"')
        and (bare_spaces or not any(ch.isspace() for ch in value))
    )
    if bare:
        return value
    if '"""' not in value and ("\n" in value or '"' in value):
        return f'"""{value}"""'
    if '"' not in value:
        return f'"{value}"'
    # Ollama's syntax has no escapes, so no quoting can hold such a value.
    raise ValueError(f'cannot write {value[:40]!r} as a Modelfile value: it holds \'"""\'')


def parse_parameter(name: str, value: str) -> Any:
    """One option value typed the way a PARAMETER line would be (``--option``, ``/set parameter``).
    ``stop`` comes back as a one-element list."""
    return _convert_parameter(name.strip(), value, InvalidRequest)
