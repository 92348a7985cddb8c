"""The second defence for constrained output: llama.cpp's GBNF grammar parser, read in Python, run
on a grammar in the server before it travels to a runner.

Why it is needed (llama-cpp-python 0.3.36, llama.cpp ``src/llama-grammar.cpp`` and
``src/llama-sampler.cpp``):

- llama.cpp reports a grammar it cannot parse cleanly (``llama_grammar_parser::parse`` catches
  its own exceptions), and ``llama_sampler_init_grammar`` then returns NULL, as it does for an
  undefined rule, a missing ``root`` or left recursion. But llama-cpp-python's
  ``LlamaSampler.add_grammar`` hands that NULL to ``llama_sampler_chain_add`` unchecked, and
  the chain calls through it on the first token: SIGSEGV in the runner.
- A grammar that parses, but can reach a terminal no token can satisfy (a NUL character: a
  token whose text starts with NUL is always rejected; a character class that matches
  nothing), leaves every candidate at -inf. The sampler picks one anyway, and
  ``llama_grammar_accept_impl`` throws "Unexpected empty grammar stack" through the C API:
  ``std::terminate``, SIGABRT.
- Left recursion through a rule that is only *transitively* empty slips past llama.cpp's
  own check (which only looks for a directly empty alternative) and makes
  ``llama_grammar_advance_stack`` grow its stacks forever.

Either way the runner dies and takes every stream on that model with it. ``grammar_problem``
follows the parser step by step (the same syntax and escapes, the same rewrite of ``* + ? {m,n}``
into rules and its limit of 2000 repeated rules, the same undefined-rule check), so a grammar it
passes is one llama.cpp parses; then it refuses, more strictly than llama.cpp, what would crash
or hang later: left recursion through any empty rule, a terminal no token can produce, a
character that is not Unicode (a surrogate), a reversed range. Token references (``<...>``) are
refused too: no schema needs them and they depend on the model's vocabulary.
"""

from __future__ import annotations

import re

from hearth.errors import InvalidRequest

# llama-grammar.cpp: MAX_REPETITION_THRESHOLD
MAX_REPETITION_THRESHOLD = 2000
# Bounds of our own: a converted schema is far smaller (schema_check bounds the schema).
MAX_GRAMMAR_CHARS = 2_000_000
MAX_ELEMENTS = 2_000_000

_MAX_CODE_POINT = 0x10FFFF
_SPACE = re.compile(r"(?:[ \t]|#[^\r\n]*)*")
_SPACE_NL = re.compile(r"(?:[ \t\r\n]|#[^\r\n]*)*")
_NAME = re.compile(r"[a-zA-Z0-9-]+")
_DIGITS = re.compile(r"[0-9]+")
_PLAIN = re.compile(r'[^"\\]+')  # a run of literal characters without escapes
_HEX = frozenset("0123456789abcdefABCDEF")
_SIMPLE_ESCAPES = {"t": 9, "r": 13, "n": 10, "\\": 92, '"': 34, "[": 91, "]": 93, "-": 45}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}

# An element of a rule: ("r", rule id) a rule reference; ("c", ((lo, hi), ...), negated) a
# character (an escaped one in a literal is a one-range class); ("s", length) a run of plain
# characters in a literal; (".",) any character.
Element = tuple


class GrammarProblem(ValueError):
    """What llama.cpp would reject, or crash or hang on, in a grammar text."""


def check_grammar(text: str, where: str = "format") -> None:
    """Raise ``InvalidRequest`` naming the problem if llama.cpp cannot safely use ``text``."""
    problem = grammar_problem(text)
    if problem is not None:
        raise InvalidRequest(f"{where}: llama.cpp cannot use the grammar made from it: {problem}")


def grammar_problem(text: str) -> str | None:
    """The first problem with the grammar ``text``, or None when llama.cpp can use it."""
    try:
        _Checker(text).run()
    except GrammarProblem as exc:
        return str(exc)
    return None


def _show(text: str, pos: int) -> str:
    rest = text[pos:pos + 24]
    return repr(rest) if rest else "the end"


def _char_name(value: int) -> str:
    return f"U+{value:04X}"


class _Frame:
    """One ``parse_alternates`` in progress: a rule or a parenthesized group."""

    __slots__ = ("name", "rule_id", "alts", "nested", "last_sym_start", "n_prev", "n_before")

    def __init__(self, name: str, rule_id: int, nested: bool, n_before: int = 0) -> None:
        self.name = name
        self.rule_id = rule_id
        self.alts: list[list[Element]] = [[]]
        self.nested = nested
        self.last_sym_start = 0
        self.n_prev = 1
        self.n_before = n_before


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text
        self.symbols: dict[str, int] = {}
        self.rules: dict[int, list[list[Element]]] = {}
        self.elements = 0
        self.rule_name = ""

    # -- errors ------------------------------------------------------------------------------

    def fail(self, message: str) -> GrammarProblem:
        where = f"in rule '{self.rule_name}': " if self.rule_name else ""
        return GrammarProblem(where + message)

    # -- the parser (llama_grammar_parser::parse and its helpers) ---------------------------

    def run(self) -> None:
        text = self.text
        if len(text) > MAX_GRAMMAR_CHARS:
            raise GrammarProblem(f"the grammar has {len(text)} characters, more than {MAX_GRAMMAR_CHARS}")
        if "\x00" in text:
            raise GrammarProblem("the grammar text holds a NUL character, where llama.cpp's C string ends")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise GrammarProblem(f"the grammar text is not valid Unicode ({exc.reason})") from None
        pos = _SPACE_NL.match(text, 0).end()
        while pos < len(text):
            pos = self.parse_rule(pos)
        self.rule_name = ""
        self.check_defined()
        self.check_left_recursion()

    def symbol_id(self, name: str) -> int:
        return self.symbols.setdefault(name, len(self.symbols))

    def generate_symbol_id(self, base: str) -> int:
        next_id = len(self.symbols)
        self.symbols[f"{base}_{next_id}"] = next_id
        return next_id

    def add_rule(self, rule_id: int, alts: list[list[Element]]) -> None:
        self.elements += sum(len(alt) + 1 for alt in alts)
        if self.elements > MAX_ELEMENTS:
            raise self.fail(f"the grammar expands to more than {MAX_ELEMENTS} elements")
        self.rules[rule_id] = alts

    def space(self, pos: int, newline_ok: bool) -> int:
        return (_SPACE_NL if newline_ok else _SPACE).match(self.text, pos).end()

    def parse_rule(self, pos: int) -> int:
        text = self.text
        match = _NAME.match(text, pos)
        if match is None:
            raise self.fail(f"expecting a rule name at {_show(text, pos)}")
        name = match.group()
        self.rule_name = name
        pos = self.space(match.end(), False)
        rule_id = self.symbol_id(name)
        if not text.startswith("::=", pos):
            raise self.fail(f"expecting ::= at {_show(text, pos)}")
        pos = self.parse_alternates(self.space(pos + 3, True), name, rule_id)
        if text.startswith("\r\n", pos):
            pos += 2
        elif pos < len(text) and text[pos] in "\r\n":
            pos += 1
        elif pos < len(text):
            raise self.fail(f"expecting newline or end at {_show(text, pos)}")
        return self.space(pos, True)

    def parse_alternates(self, pos: int, name: str, rule_id: int) -> int:
        """parse_alternates and parse_sequence, with groups on an explicit stack instead of
        recursion (a string's maxLength nests one group per character)."""
        text = self.text
        end = len(text)
        stack = [_Frame(name, rule_id, nested=False)]
        while True:
            frame = stack[-1]
            alt = frame.alts[-1]
            c = text[pos] if pos < end else ""
            if c == '"':
                frame.last_sym_start = len(alt)
                frame.n_prev = 1
                pos = self.parse_literal(pos + 1, alt)
                pos = self.space(pos + 1, frame.nested)
            elif c == "[":
                frame.last_sym_start = len(alt)
                frame.n_prev = 1
                pos = self.parse_class(pos + 1, alt)
                pos = self.space(pos + 1, frame.nested)
            elif c in ("<", "!"):
                raise self.fail(f"token references are not allowed here, at {_show(text, pos)}")
            elif c and (c.isascii() and (c.isalnum() or c == "-")):
                match = _NAME.match(text, pos)
                assert match is not None
                ref = self.symbol_id(match.group())
                pos = self.space(match.end(), frame.nested)
                frame.last_sym_start = len(alt)
                frame.n_prev = 1
                alt.append(("r", ref))
            elif c == "(":
                pos = self.space(pos + 1, True)
                n_before = len(self.symbols)
                sub_id = self.generate_symbol_id(frame.name)
                stack.append(_Frame(frame.name, sub_id, nested=True, n_before=n_before))
            elif c == ".":
                frame.last_sym_start = len(alt)
                frame.n_prev = 1
                alt.append((".",))
                pos = self.space(pos + 1, frame.nested)
            elif c in ("*", "+", "?"):
                pos = self.space(pos + 1, frame.nested)
                self.repeat(frame, *{"*": (0, None), "+": (1, None), "?": (0, 1)}[c], pos)
            elif c == "{":
                pos = self.parse_braces(frame, pos)
            elif c == "|":
                frame.alts.append([])
                frame.last_sym_start = 0
                frame.n_prev = 1
                pos = self.space(pos + 1, True)
            else:  # the end of this rule's or group's alternates
                self.add_rule(frame.rule_id, frame.alts)
                stack.pop()
                if not stack:
                    return pos
                parent = stack[-1]
                parent.n_prev = max(1, len(self.symbols) - frame.n_before)
                parent.last_sym_start = len(parent.alts[-1])
                parent.alts[-1].append(("r", frame.rule_id))
                if c != ")":
                    raise self.fail(f"expecting ')' at {_show(text, pos)}")
                pos = self.space(pos + 1, parent.nested)

    def parse_char(self, pos: int) -> tuple[int, int]:
        text = self.text
        if pos >= len(text):
            raise self.fail("unexpected end of input")
        c = text[pos]
        if c != "\\":
            return ord(c), pos + 1
        escape = text[pos + 1] if pos + 1 < len(text) else ""
        if escape in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[escape], pos + 2
        size = _HEX_ESCAPES.get(escape)
        if size is None:
            raise self.fail(f"unknown escape at {_show(text, pos)}")
        digits = text[pos + 2:pos + 2 + size]
        if len(digits) != size or not set(digits) <= _HEX:
            raise self.fail(f"expecting {size} hex chars at {_show(text, pos)}")
        return int(digits, 16), pos + 2 + size

    def parse_literal(self, pos: int, alt: list[Element]) -> int:
        """From just after the opening quote; returns the position of the closing one."""
        text = self.text
        while True:
            if pos >= len(text):
                raise self.fail("unexpected end of input in a string literal")
            if text[pos] == '"':
                return pos
            plain = _PLAIN.match(text, pos)
            if plain is not None:
                # Characters without escapes: neither NUL nor surrogates (run() checked the
                # text), so the run stands for its characters as one element.
                alt.append(("s", plain.end() - pos))
                pos = plain.end()
                continue
            value, pos = self.parse_char(pos)
            alt.append(self.single(value))

    def single(self, value: int) -> Element:
        if value == 0:
            raise self.fail("a literal needs a NUL character, which no token can produce")
        self.check_code_point(value)
        return ("c", ((value, value),), False)

    def check_code_point(self, value: int) -> None:
        if 0xD800 <= value <= 0xDFFF:
            raise self.fail(f"{_char_name(value)} is a surrogate, not a character")
        if value > _MAX_CODE_POINT:
            raise self.fail(f"{_char_name(value)} is beyond the last Unicode character")

    def parse_class(self, pos: int, alt: list[Element]) -> int:
        """From just after ``[``; returns the position of the closing ``]``."""
        text = self.text
        negated = pos < len(text) and text[pos] == "^"
        if negated:
            pos += 1
        ranges: list[tuple[int, int]] = []
        while True:
            if pos >= len(text):
                raise self.fail("unexpected end of input in a character class")
            if text[pos] == "]":
                break
            low, pos = self.parse_char(pos)
            high = low
            if pos < len(text) and text[pos] == "-" and text[pos + 1:pos + 2] != "]":
                if pos + 1 >= len(text):
                    raise self.fail("unexpected end of input in a character class")
                high, pos = self.parse_char(pos + 1)
            for value in {low, high}:
                if value != 0:
                    self.check_code_point(value)
            if low > high:
                raise self.fail(f"the character range {_char_name(low)}-{_char_name(high)} is reversed")
            ranges.append((low, high))
        if ranges:  # llama.cpp adds nothing for "[]" (it matches the empty string)
            if not _can_match(ranges, negated):
                raise self.fail("a character class matches no character a token can produce")
            alt.append(("c", tuple(ranges), negated))
        return pos

    def parse_braces(self, frame: _Frame, pos: int) -> int:
        text = self.text
        pos = self.space(pos + 1, frame.nested)
        digits = _DIGITS.match(text, pos)
        if digits is None:
            raise self.fail(f"expecting an int at {_show(text, pos)}")
        min_times = self.count(digits.group())
        pos = self.space(digits.end(), frame.nested)
        max_times: int | None
        if text.startswith("}", pos):
            max_times = min_times
            pos = self.space(pos + 1, frame.nested)
        elif text.startswith(",", pos):
            pos = self.space(pos + 1, frame.nested)
            max_times = None
            digits = _DIGITS.match(text, pos)
            if digits is not None:
                max_times = self.count(digits.group())
                pos = self.space(digits.end(), frame.nested)
            if not text.startswith("}", pos):
                raise self.fail(f"expecting '}}' at {_show(text, pos)}")
            pos = self.space(pos + 1, frame.nested)
        else:
            raise self.fail(f"expecting ',' at {_show(text, pos)}")
        if min_times > MAX_REPETITION_THRESHOLD:
            raise self.fail("number of repetitions exceeds sane defaults")
        if max_times is not None and max_times > MAX_REPETITION_THRESHOLD:
            max_times = None
        if max_times is not None and max_times < min_times:
            # llama.cpp counts max - min in unsigned 64 bits: it would not stop making rules.
            raise self.fail(f"the repetition {{{min_times},{max_times}}} has its maximum below its minimum")
        self.repeat(frame, min_times, max_times, pos)
        return pos

    def count(self, digits: str) -> int:
        value = int(digits)
        if value >= 1 << 64:  # std::stoull throws out_of_range
            raise self.fail(f"the repetition count {digits} is out of range")
        return value

    def repeat(self, frame: _Frame, min_times: int, max_times: int | None, pos: int) -> None:
        """handle_repetitions: S{m,n} becomes m copies of S and a chain of optional rules."""
        alt = frame.alts[-1]
        if frame.last_sym_start == len(alt):
            raise self.fail(f"expecting preceding item to */+/?/{{ at {_show(self.text, pos)}")
        prev = alt[frame.last_sym_start:]
        if len(prev) * max(min_times, 1) + len(alt) > MAX_ELEMENTS:
            raise self.fail(f"the grammar expands to more than {MAX_ELEMENTS} elements")
        total = max_times if max_times else (min_times if min_times > 0 else 1)
        if frame.n_prev * total > MAX_REPETITION_THRESHOLD:
            raise self.fail("number of rules that are going to be repeated multiplied by the new "
                            "repetition exceeds sane defaults")
        if min_times == 0:
            del alt[frame.last_sym_start:]
        else:
            alt.extend(prev * (min_times - 1))
        n_opt = 1 if max_times is None else max_times - min_times
        last_rec = 0
        for i in range(n_opt):
            rec_id = self.generate_symbol_id(frame.name)
            body = list(prev)
            if i > 0 or max_times is None:
                body.append(("r", rec_id if max_times is None else last_rec))
            self.add_rule(rec_id, [body, []])
            last_rec = rec_id
        if n_opt > 0:
            alt.append(("r", last_rec))
        frame.n_prev *= total

    # -- after the parse ---------------------------------------------------------------------

    def names(self) -> dict[int, str]:
        return {rule_id: name for name, rule_id in self.symbols.items()}

    def check_defined(self) -> None:
        if not self.rules:
            raise GrammarProblem("the grammar has no rules")
        names = self.names()
        for rule_id in range(len(self.symbols)):
            if rule_id not in self.rules:
                raise GrammarProblem(f"rule '{names[rule_id]}' is used but never defined")
        if "root" not in self.symbols:
            raise GrammarProblem("the grammar has no 'root' rule")

    def check_left_recursion(self) -> None:
        """A rule that can reach itself before any character: llama.cpp refuses it (directly
        empty alternatives) or expands its stacks forever (transitively empty rules)."""
        nullable = self.nullable_rules()
        leftmost: dict[int, list[int]] = {}
        for rule_id, alts in self.rules.items():
            targets: list[int] = []
            for alt in alts:
                for element in alt:
                    if element[0] != "r":
                        break
                    targets.append(element[1])
                    if element[1] not in nullable:
                        break
            leftmost[rule_id] = targets
        # Iterative depth-first search for a cycle.
        state: dict[int, int] = {}  # 1 on the path, 2 done
        for start in self.rules:
            if start in state:
                continue
            path = [start]
            iters = [iter(leftmost[start])]
            state[start] = 1
            while iters:
                nxt = next(iters[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    iters.pop()
                    continue
                seen = state.get(nxt)
                if seen == 1:
                    names = self.names()
                    cycle = path[path.index(nxt):] + [nxt]
                    raise GrammarProblem("left recursion, which llama.cpp cannot use: "
                                         + " -> ".join(names[r] for r in cycle))
                if seen is None:
                    state[nxt] = 1
                    path.append(nxt)
                    iters.append(iter(leftmost[nxt]))

    def nullable_rules(self) -> set[int]:
        """Rules that can match the empty string (a fixed point, by work list)."""
        nullable: set[int] = set()
        waiting: dict[int, list[tuple[int, list[int]]]] = {}
        queue: list[int] = []
        for rule_id, alts in self.rules.items():
            for alt in alts:
                if any(element[0] != "r" for element in alt):
                    continue
                refs = {element[1] for element in alt}
                if not refs:
                    queue.append(rule_id)
                    continue
                counter = [len(refs)]
                for ref in refs:
                    waiting.setdefault(ref, []).append((rule_id, counter))
        while queue:
            rule_id = queue.pop()
            if rule_id in nullable:
                continue
            nullable.add(rule_id)
            for user, counter in waiting.pop(rule_id, ()):
                counter[0] -= 1
                if counter[0] == 0:
                    queue.append(user)
        return nullable


def _can_match(ranges: list[tuple[int, int]], negated: bool) -> bool:
    """Whether a class matches some character in U+0001..U+10FFFF (a token's text never starts
    with NUL, and llama.cpp rejects such tokens)."""
    clipped = sorted((max(low, 1), min(high, _MAX_CODE_POINT)) for low, high in ranges)
    clipped = [(low, high) for low, high in clipped if low <= high]
    if not negated:
        return bool(clipped)
    reach = 1  # the first character not yet covered
    for low, high in clipped:
        if low > reach:
            return True
        reach = max(reach, high + 1)
    return reach <= _MAX_CODE_POINT
