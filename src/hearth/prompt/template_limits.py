"""The time and size budget of one chat template render, and what enforces it.

A chat template is a program from an untrusted source (a downloaded GGUF, an API request's
``template``) that runs inside the server process. jinja2's sandbox keeps it from reaching
Python internals but not from burning a core or the machine's memory, so every render gets:

- a deadline: a watchdog thread raises an exception in the rendering thread when it passes
  (``PyThreadState_SetAsyncExc``), which stops pure loops that produce nothing and call nothing;
- a size budget: each operation that could build a large value from small inputs (``*``,
  ``**``, ``%``, ``+``, ``~``, string methods, filters, ``str()`` of a container, joining the
  output) is measured before it allocates, and everything a render builds is counted, so many
  values each under the limit cannot add up to an unbounded amount either.

Either overrun is a ``TemplateError``, which the server answers with a 400.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
import re
import threading
import types
from collections.abc import Callable, ItemsView, KeysView, Mapping, ValuesView
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace, generate_lorem_ipsum
from markupsafe import Markup

from hearth.errors import InvalidRequest, TemplateError
from hearth.prompt.deadline import Overrun, the_watchdog

# Real templates render in well under 10 ms; 2 s is generous for a slow machine and still short
# enough that a hostile template cannot hold a server thread for long.
DEFAULT_TIMEOUT_S = 2.0
# About 250k tokens of prompt: more than any context window hearth runs by default.
DEFAULT_MAX_CHARS = 1_000_000
# Building a prompt piece by piece allocates more than the prompt itself (every `+` copies), so
# the total a render may build is a multiple of the output limit. Real templates stay under 10x;
# 32x keeps a hostile one to roughly 32-128 MB however its values are retained.
WORK_FACTOR = 32
# A container counts as this many characters per item: roughly the memory of the pointer plus a
# small new object, so lists of many small pieces are charged like the text they hold.
ITEM_COST = 16
# CPython refuses to print ints longer than 4300 digits, and multiplying ones much longer takes
# seconds of uninterruptible C, so a template has no use for them.
MAX_NUMBER_DIGITS = 10_000

TIMEOUT_ENV = "HEARTH_TEMPLATE_TIMEOUT"
MAX_CHARS_ENV = "HEARTH_TEMPLATE_MAX_CHARS"

_LOG10_2 = math.log10(2)
_SEQUENCES = (str, bytes, list, tuple)
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _amount(n: float) -> str:
    return str(int(n)) if n < 1e18 else "more than 10^18"


def _setting(env: str, default: float, parse: Callable[[str], float]) -> float:
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    try:
        value = parse(text)
    except ValueError:
        raise InvalidRequest(f"{env} must be a number, not '{text}'") from None
    if not (value > 0 and math.isfinite(value)):
        raise InvalidRequest(f"{env} must be more than 0, not '{text}'")
    return value


class Budget:
    """What one render may still build. Sizes are in characters (items for containers)."""

    __slots__ = ("max_chars", "seconds", "spent", "work_limit")

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS, seconds: float = DEFAULT_TIMEOUT_S):
        self.max_chars = max_chars
        self.seconds = seconds
        self.work_limit = max_chars * WORK_FACTOR
        self.spent = 0

    @classmethod
    def from_environment(cls) -> Budget:
        # Read per render, so a running server follows a changed setting without a restart.
        return cls(
            max_chars=int(_setting(MAX_CHARS_ENV, DEFAULT_MAX_CHARS, int)),
            seconds=_setting(TIMEOUT_ENV, DEFAULT_TIMEOUT_S, float),
        )

    def output_error(self) -> TemplateError:
        return TemplateError(f"chat template output exceeds {self.max_chars} characters")

    def allow(self, size: float) -> None:
        """Refuse an operation whose result would be ``size`` long, before it allocates."""
        if size > self.max_chars:
            raise TemplateError(
                f"chat template output exceeds {self.max_chars} characters"
                f" (a value it builds would be {_amount(size)} long)"
            )
        if self.spent + size > self.work_limit:
            raise self._work_error()

    def allow_work(self, cost: float) -> None:
        if self.spent + cost > self.work_limit:
            raise self._work_error()

    def allow_number(self, digits: float) -> None:
        if digits > MAX_NUMBER_DIGITS:
            raise TemplateError(
                f"chat template builds a number of more than {MAX_NUMBER_DIGITS} digits"
            )

    def count(self, value: Any) -> Any:
        """Charge a value the render has just built, and hand it back."""
        kind = type(value)
        if kind is str or isinstance(value, (str, bytes)):
            size = cost = len(value)
        elif isinstance(value, _CONTAINERS):
            size = len(value)
            cost = size * ITEM_COST
        elif kind is int and value.bit_length() > 64:
            self.allow_number(value.bit_length() * _LOG10_2)
            return value
        else:
            return value
        if size > self.max_chars:
            self.allow(size)
        self.spent += cost
        if self.spent > self.work_limit:
            raise self._work_error()
        return value

    def _work_error(self) -> TemplateError:
        return TemplateError(
            f"chat template output exceeds {self.max_chars} characters (rendering it builds"
            f" more than {self.work_limit} characters of text along the way)"
        )


class _State(threading.local):
    budget: Budget | None = None


_state = _State()


def _current() -> Budget:
    # Outside bounded() (a compile-time constant fold, a direct use of the environment) each
    # operation still gets the size limits, just no shared total.
    return _state.budget or Budget.from_environment()


def bounded(work: Callable[..., Any], *args: Any) -> Any:
    """``work(*args)`` under a fresh budget and the deadline; an overrun is a TemplateError."""
    budget = Budget.from_environment()
    outer = _state.budget
    watchdog = the_watchdog()
    try:
        watch = None
        try:
            _state.budget = budget
            watch = watchdog.arm(budget.seconds)
            return work(*args)
        finally:
            # The overrun may land anywhere up to the end of disarm(), so both sit inside the
            # `try` that turns it into a TemplateError.
            _state.budget = outer
            if watch is not None:
                watchdog.disarm(watch)
    except Overrun:
        _state.budget = outer
        raise TemplateError(
            f"chat template took longer than {budget.seconds:g} s to render"
        ) from None


# --- sizes, estimated before an operation runs -----------------------------------------------

_END = object()


def _digits(value: int) -> int:
    return int(value.bit_length() * _LOG10_2) + 2


def text_size(value: Any, cap: int, per_item: int = 0, per_level: int = 0) -> int:
    """About how long ``str(value)`` is (escapes aside), counting no further than ``cap``.

    Shared containers are counted each time they appear, as ``str()`` would print them, so
    ``[l, l]`` nested 40 deep is seen as the 2**40 items it prints; the walk stops once
    past ``cap``, which keeps it cheap whatever the value. ``per_item`` and ``per_level`` add
    what pretty-printing would: a separator per item, an indent per level of nesting.
    """
    if type(value) is str:
        return len(value)
    total = 0
    stack: list[Any] = [iter((value,))]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
            continue
        depth = len(stack)
        total += per_item + depth * per_level
        if isinstance(item, str):
            total += len(item) + (0 if depth == 1 else 2)
        elif isinstance(item, (bytes, bytearray)):
            total += len(item) + 3
        elif item is None or isinstance(item, bool):
            total += 5
        elif isinstance(item, int):
            total += _digits(item)
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, (Mapping, ItemsView)):
            pairs = item.items() if isinstance(item, Mapping) else item
            total += 2 + 4 * len(pairs)
            stack.append(itertools.chain.from_iterable(pairs))
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView)):
            total += 2 + 2 * len(item)
            stack.append(iter(item))
        elif isinstance(item, Namespace):
            total += 12
            stack.append(iter((object.__getattribute__(item, "_Namespace__attrs"),)))
        else:
            # Loop contexts, macros, generators, ranges, undefined values: short reprs.
            total += 64
        if total > cap:
            return total
    return total


def _sequence_times(seq: Any, times: Any) -> int:
    if isinstance(seq, _SEQUENCES) and isinstance(times, int):
        return len(seq) * max(times, 0)
    return 0


def _check_binop(budget: Budget, operator: str, left: Any, right: Any) -> None:
    if operator == "+":
        if isinstance(left, _SEQUENCES) and isinstance(right, _SEQUENCES):
            budget.allow(len(left) + len(right))
    elif operator == "*":
        if type(left) is int and type(right) is int:
            budget.allow_number(_digits(left) + _digits(right))
        else:
            budget.allow(_sequence_times(left, right) or _sequence_times(right, left))
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 1 and abs(left) > 1:
            if right.bit_length() > 64:
                budget.allow_number(math.inf)
            budget.allow_number(right * math.log2(abs(left)) * _LOG10_2)
    elif operator == "%" and isinstance(left, (str, bytes)):
        budget.allow(printf_size(left, right, budget.max_chars))


def _spec_number(text: str, start: int) -> tuple[int, int]:
    end = start
    while end < len(text) and text[end] in "0123456789":
        end += 1
    digits = text[start:end]
    # int() of a very long digit string is itself slow; any width that long is too big.
    return (int(digits) if len(digits) < 10 else 10**10) if digits else 0, end


def printf_size(fmt: str | bytes, values: Any, cap: int) -> int:
    """About how long ``fmt % values`` is: each conversion takes its width or its value."""
    text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
    mapping = values if isinstance(values, Mapping) else None
    positional = iter(values if isinstance(values, tuple) else (values,))
    total = len(text)
    i = text.find("%")
    while i != -1 and total <= cap:
        j = i + 1
        key = None
        if text.startswith("(", j):
            depth, k = 1, j + 1
            while depth and k < len(text):
                depth += {"(": 1, ")": -1}.get(text[k], 0)
                k += 1
            key, j = text[j + 1 : k - 1], k
        while j < len(text) and text[j] in "-+ #0":
            j += 1
        if text.startswith("*", j):
            star = next(positional, 0)
            width, j = (star if isinstance(star, int) else 0), j + 1
        else:
            width, j = _spec_number(text, j)
        precision = 0
        if text.startswith(".", j):
            if text.startswith("*", j + 1):
                star = next(positional, 0)
                precision, j = (star if isinstance(star, int) else 0), j + 2
            else:
                precision, j = _spec_number(text, j + 1)
        while j < len(text) and text[j] in "hlL":
            j += 1
        conversion = text[j] if j < len(text) else ""
        if conversion and conversion != "%":
            if key is not None and mapping is not None:
                value = mapping.get(key)
            else:
                value = next(positional, None)
            if conversion in "sra":
                size = text_size(value, cap)
            elif isinstance(value, float):
                size = 330  # %f of 1e308
            elif isinstance(value, int):
                size = value.bit_length() // 3 + 2  # octal is the longest base
            else:
                size = 1
            total += max(width, size + precision)
        i = text.find("%", j + 1)
    return total


def _spec_size(spec: str) -> int:
    """An upper bound for the width and precision a format spec asks for."""
    total = 0
    for digits in re.findall("[0-9]+", spec):
        total += int(digits) if len(digits) < 10 else 10**10
    return total


# --- string methods and globals: the calls that can make much from little --------------------


def _padded(s: Any, width: Any = 0, *_: Any) -> int:
    return max(len(s), width) if isinstance(width, int) else 0


def _expanded(s: Any, tabsize: Any = 8) -> int:
    tab = "\t" if isinstance(s, str) else b"\t"
    return len(s) + s.count(tab) * max(tabsize, 0) if isinstance(tabsize, int) else 0


def _replaced(s: Any, old: Any = "", new: Any = "", count: Any = -1, *_: Any) -> int:
    if not (isinstance(old, type(s)) and isinstance(new, type(s))) or not isinstance(count, int):
        return 0
    hits = s.count(old) if old else len(s) + 1
    if count >= 0:
        hits = min(hits, count)
    return len(s) + hits * max(len(new) - len(old), 0)


def _translated(s: Any, table: Any = None, *_: Any) -> int:
    if isinstance(table, Mapping):
        pieces = table.values()
    elif isinstance(table, (list, tuple)):
        pieces = table
    else:
        return len(s)
    longest = max((len(p) for p in pieces if isinstance(p, (str, bytes))), default=1)
    return len(s) * max(longest, 1)


def _joined(sep: Any, items: Any = (), *_: Any) -> int:
    try:
        return sum(map(len, items)) + len(sep) * max(len(items) - 1, 0)
    except TypeError:
        return 0  # not all strings: join() itself refuses


_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "center": _padded,
    "ljust": _padded,
    "rjust": _padded,
    "zfill": _padded,
    "expandtabs": _expanded,
    "replace": _replaced,
    "translate": _translated,
    "join": _joined,
}


def _lipsum_size(*args: Any, **kwargs: Any) -> int:
    call = inspect.signature(generate_lorem_ipsum).bind(*args, **kwargs)
    call.apply_defaults()
    n, shortest, longest = (call.arguments[k] for k in ("n", "min", "max"))
    if not all(isinstance(x, int) for x in (n, shortest, longest)):
        return 0
    # Paragraphs of up to `max` words of at most a dozen letters, plus the <p> markup.
    return n * (max(shortest, longest) * 13 + 20)


# --- filters -----------------------------------------------------------------------------------
# Each estimate takes the filter's own arguments after the value, with the same defaults.


def _center_size(budget: Budget, env: Any, value: Any, width: Any = 80, *_: Any) -> None:
    budget.allow(max(text_size(value, budget.max_chars), width if isinstance(width, int) else 0))


def _indent_size(budget: Budget, env: Any, s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = text_size(s, budget.max_chars)
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    lines = s.count("\n") + 2 if isinstance(s, str) else text + 1
    budget.allow(text + lines * max(pad, 0))


def _wordwrap_size(
    budget: Budget, env: Any, s: Any, width: Any = 79, break_long_words: Any = True,
    wrapstring: Any = None, *_: Any, **__: Any,
) -> None:
    text = text_size(s, budget.max_chars)
    wrap = len(wrapstring) if isinstance(wrapstring, str) else 1
    step = width if isinstance(width, int) and width > 0 else 1
    lines = text // step + (s.count("\n") if isinstance(s, str) else 0) + 1
    budget.allow(text + lines * wrap)


def _format_size(budget: Budget, env: Any, value: Any, *args: Any, **kwargs: Any) -> None:
    fmt = value if isinstance(value, (str, bytes)) else str(value)
    budget.allow(printf_size(fmt, kwargs or args, budget.max_chars))


def _replace_size(budget: Budget, env: Any, s: Any, old: Any = "", new: Any = "",
                  count: Any = None) -> None:
    # The filter runs str() on all three first, so each is sized as text.
    cap = budget.max_chars
    size, old_size, new_size = (text_size(x, cap) for x in (s, old, new))
    budget.allow(max(size, old_size, new_size))
    if isinstance(s, str) and isinstance(old, str):
        hits = s.count(old) if old else len(s) + 1
    else:
        hits = size + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    budget.allow(size + hits * max(new_size - old_size, 0))


def _join_size(budget: Budget, env: Any, items: list, d: Any = "", attribute: Any = None) -> None:
    if attribute is not None:
        items = list(map(make_attrgetter(env, attribute), items))
    total = text_size(d, budget.max_chars) * max(len(items) - 1, 0)
    for item in items:
        total += text_size(item, budget.max_chars)
        if total > budget.max_chars:
            break
    budget.allow(total)


def _json_size(budget: Budget, env: Any, value: Any, ensure_ascii: Any = False,
               indent: Any = None, separators: Any = None, *_: Any, **__: Any) -> None:
    step = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    between = 0
    if isinstance(separators, (list, tuple)):
        between = sum(len(s) for s in separators if isinstance(s, str))
    budget.allow(
        text_size(value, budget.max_chars, per_item=1 + between, per_level=max(step, 0))
    )


def _pprint_size(budget: Budget, env: Any, value: Any, *_: Any) -> None:
    budget.allow(text_size(value, budget.max_chars, per_item=1, per_level=1))


def _batch_size(budget: Budget, env: Any, value: Any, linecount: Any = 1,
                fill_with: Any = None) -> None:
    if isinstance(linecount, int):
        budget.allow(linecount)


def _slice_size(budget: Budget, env: Any, value: Any, slices: Any = 1,
                fill_with: Any = None) -> None:
    if isinstance(slices, int):
        budget.allow(slices)


def _sum_size(budget: Budget, env: Any, items: list, attribute: Any = None,
              start: Any = 0) -> None:
    if not isinstance(start, _SEQUENCES):
        return
    if attribute is not None:
        items = list(map(make_attrgetter(env, attribute), items))
    size = len(start)
    for item in items:
        size += len(item) if isinstance(item, _SEQUENCES) else 0
    budget.allow(size)
    # sum() adds one piece at a time, copying all it has so far: quadratic, and all in C.
    budget.allow_work(size * len(items) // 2)


_FILTER_SIZES: dict[str, Callable[..., None]] = {
    "center": _center_size,
    "indent": _indent_size,
    "wordwrap": _wordwrap_size,
    "format": _format_size,
    "replace": _replace_size,
    "join": _join_size,
    "tojson": _json_size,
    "pprint": _pprint_size,
    "batch": _batch_size,
    "slice": _slice_size,
    "sum": _sum_size,
}
# Filters that start by turning their value into text: a container becomes its repr first.
_TEXT_FILTERS = frozenset({
    "capitalize", "e", "escape", "forceescape", "lower", "safe", "string", "striptags", "title",
    "trim", "truncate", "upper", "urlencode", "urlize", "wordcount", "xmlattr",
})
# Filters whose estimate has to read the whole input: a one-pass iterator is read once, here.
_MATERIALIZED = frozenset({"join", "sum"})


def _bounded_filter(name: str, func: Callable[..., Any], env: Any) -> Callable[..., Any]:
    estimate = _FILTER_SIZES.get(name)
    stringifies = name in _TEXT_FILTERS
    materialize = name in _MATERIALIZED
    head = 1 if hasattr(func, "jinja_pass_arg") else 0

    @functools.wraps(func)
    def bounded_filter(*args: Any, **kwargs: Any) -> Any:
        budget = _current()
        if len(args) > head:
            value = args[head]
            if materialize and not isinstance(value, (list, tuple, str)):
                value = list(value)
                args = (*args[:head], value, *args[head + 1 :])
            if estimate is not None:
                estimate(budget, env, value, *args[head + 1 :], **kwargs)
            elif stringifies and type(value) is not str:
                budget.allow(text_size(value, budget.max_chars))
        return budget.count(func(*args, **kwargs))

    return bounded_filter


# --- the environment ---------------------------------------------------------------------------


class _BoundedCodeGenerator(CodeGenerator):
    """Routes what jinja2 compiles to plain Python, or to one call per operator, through the
    budget in as few calls as it can: they are most of what the limits cost."""

    @optimizeconst
    def visit_Add(self, node: nodes.Add, frame: Frame) -> None:
        # A prompt is mostly `'<|im_start|>' + role + '\n' + content + ...`: one call for the
        # whole chain, not one per `+`.
        operands: list[nodes.Expr] = [node.right]
        left = node.left
        while isinstance(left, nodes.Add):
            operands.append(left.right)
            left = left.left
        operands.append(left)
        self.write("environment.add_operands((")
        for operand in reversed(operands):
            self.visit(operand, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `a ~ b` becomes str(a) + str(b) inline; str() of a container can be enormous.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.concat_operands({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    @optimizeconst
    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        # Slices skip environment.getitem, yet each copies what it takes.
        if isinstance(node.arg, nodes.Slice):
            self.write("environment.count_built(")
            super().visit_Getitem(node, frame)
            self.write(")")
        else:
            super().visit_Getitem(node, frame)


class _FieldBudget:
    """``str.format`` fields: each is sized before it is formatted, and all together."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._built = 0

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion is not None:
            budget = _current()
            budget.allow(text_size(value, budget.max_chars))
        return super().convert_field(value, conversion)  # type: ignore[misc]

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = _current()
        size = max(_spec_size(format_spec), text_size(value, budget.max_chars))
        budget.allow(self._built + size)
        result = budget.count(super().format_field(value, format_spec))  # type: ignore[misc]
        self._built += len(result)
        budget.allow(self._built)
        return result


class _BoundedFormatter(_FieldBudget, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_FieldBudget, SandboxedEscapeFormatter):
    pass


def _check_printed(value: Any) -> Any:
    # Every `{{ value }}` passes here before str(): printing a container builds its repr.
    if type(value) is not str:
        budget = _current()
        budget.allow(text_size(value, budget.max_chars))
    return value


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with every render kept to the budget of ``bounded()``.

    ``filters`` are added to jinja2's own before all of them are wrapped; a filter set on
    ``.filters`` later would go unmeasured.
    """

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, *, filters: dict[str, Callable[..., Any]] | None = None, **options: Any):
        super().__init__(finalize=_check_printed, **options)
        self.filters.update(filters or {})
        self.filters = {name: _bounded_filter(name, f, self) for name, f in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _current()
        _check_binop(budget, operator, left, right)
        return budget.count(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        budget = _current()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, (str, bytes)):
            name = getattr(__obj, "__name__", "")
            if name == "join" and len(args) == 1 and not isinstance(args[0], (list, tuple)):
                args = (list(args[0]),)
            size = _METHOD_SIZES.get(name)
            if size is not None:
                budget.allow(size(owner, *args, **kwargs))
        elif __obj is generate_lorem_ipsum:
            budget.allow(_lipsum_size(*args, **kwargs))
        return budget.count(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # jinja2's own version with a formatter that sizes each field; `.format` is looked up
        # (and wrapped) at attribute access, so this is the only place to reach it.
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)) or (
            value.__name__ not in ("format", "format_map")
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        str_type = type(owner)
        is_format_map = value.__name__ == "format_map"

        def format_(*args: Any, **kwargs: Any) -> str:
            formatter: SandboxedFormatter
            if isinstance(owner, Markup):
                formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
            else:
                formatter = _BoundedFormatter(self)
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(
                        f"format_map() takes exactly one argument ({len(args)} given)"
                    )
                args, kwargs = (), args[0]
            return str_type(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(format_, value)

    def concat(self, parts: Any) -> str:  # type: ignore[override]
        """Join the output, and every buffer (macros, ``{% set %}`` blocks), as it streams."""
        budget = _current()
        limit = budget.max_chars
        total = 0
        pieces = []
        for part in parts:
            total += len(part)
            if total > limit:
                raise budget.output_error()
            pieces.append(part)
        return budget.count("".join(pieces))

    def add_operands(self, operands: tuple) -> Any:
        """``a + b + c``: plain strings in one join; anything else one ``+`` at a time."""
        budget = _state.budget or _current()
        size = 0
        for operand in operands:
            if type(operand) is not str:
                return self._add_one_by_one(budget, operands)
            size += len(operand)
        if size > budget.max_chars or budget.spent + size > budget.work_limit:
            budget.allow(size)
        budget.spent += size
        return "".join(operands)

    def _add_one_by_one(self, budget: Budget, operands: tuple) -> Any:
        # Markup + str escapes the str, and numbers and lists add their own way.
        result = operands[0]
        for operand in operands[1:]:
            _check_binop(budget, "+", result, operand)
            result = budget.count(result + operand)
        return result

    def concat_operands(self, join: Callable[[Any], str], operands: tuple) -> str:
        budget = _current()
        total = 0
        for operand in operands:
            total += text_size(operand, budget.max_chars)
        budget.allow(total)
        return budget.count(join(operands))

    def count_built(self, value: Any) -> Any:
        return _current().count(value)
