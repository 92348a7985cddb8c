"""The first defence for constrained output: a JSON schema (Ollama's ``format``, OpenAI's
``response_format`` json_schema) checked before llama-cpp-python's converter
(``llama_cpp.llama_grammar.json_schema_to_gbnf``) turns it into a grammar.

The converter trusts its input, and what it writes is parsed only later, in the runner, where a
bad grammar kills the process (see gbnf_check.py for how). What it cannot handle, found by
feeding schemas to the real engine in a child process (llama-cpp-python 0.3.36):

- ``{"enum": []}``, ``{"anyOf": []}``, ``{"type": []}``: a rule with no body, which llama.cpp
  cannot parse (SIGSEGV). ``{"oneOf": []}`` makes the converter fail; ``{"allOf": []}`` is an
  empty object; both are refused too.
- A ``"`` in a property name or an enum/const string: the converter escapes ``"`` but leaves the
  backslash JSON put before it, so the grammar literal ends early (SIGSEGV). A NUL: JSON's
  ``\\u0000`` reaches the grammar as an escape for a real NUL that no token can produce
  (SIGABRT). A backslash or another control character does not crash but makes the grammar ask
  for text that is not the JSON asked for (a raw newline, ``"a\\b"`` for ``"a\\\\b"``). A
  character beyond U+FFFF becomes a surrogate pair, so the output is not UTF-8.
- ``$ref`` cycles that produce no text (``a`` refers to ``a``, or ``anyOf`` with itself as an
  alternative): left recursion (SIGSEGV). In a recursive reference the converter refers back by
  the definition's bare name, so a name it would have rewritten (``"a b"``, ``"string"``) leaves
  an undefined rule (SIGSEGV).
- ``maxLength``/``maxItems`` of 1500 and more, and ``{m,n}`` in a pattern: nested rules beyond
  llama.cpp's repetition limit (SIGSEGV); much larger ``minLength`` or ``{n}`` make the
  converter build a grammar of gigabytes in the server.
- A ``pattern`` is copied into the grammar nearly verbatim: ``\\d``, ``\\w``, ``\\.`` are
  escapes llama.cpp does not know, ``[z-a]`` matches nothing (SIGSEGV, SIGABRT). Each pattern is
  converted alone and its grammar checked (gbnf_check), so the error names the pattern. Outside
  character classes, a quote, a backslash, a control character or a top-level ``|`` do not
  crash but make answers that are not JSON (the converter writes them raw, or splits the
  string's quotes between the alternatives): refused too.
- A ``$ref`` to a definition named like one of the converter's own rules (``string``,
  ``space``, ...) may be answered with that rule instead of the definition.
- ``"items": {}``: the converter fails on it; leaving ``items`` out means the same.
- An empty property name at the top level: the converter names its rule ``root``, and the
  grammar describes that property's value instead of the object.

Everything is bounded first (nesting, number of values, size, list lengths), so a hostile
schema is refused in milliseconds. Every error names the JSON path of the offending part, e.g.
``format.properties.a.enum: must not be empty``. gbnf_check then checks the whole grammar, a
second line for whatever this file does not foresee.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hearth.errors import InvalidRequest

MAX_DEPTH = 64  # nesting of objects and lists in the whole schema
MAX_VALUES = 20_000  # JSON values (objects, lists, strings, numbers, ...) in it
MAX_SIZE = 256 * 1024  # characters of JSON text, about
MAX_ITEMS = 1000  # items in one list or entries in one object (enum, anyOf, properties, ...)
MAX_LITERALS = 100_000  # characters of all property names and enum/const strings together
MAX_REPEAT = 1000  # minItems, maxItems, minLength, maxLength and {m,n} in a pattern
MAX_PATTERN = 1000  # characters of one pattern

TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})
_COUNTS = (("minItems", "maxItems"), ("minLength", "maxLength"))
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
_SIMPLE_KEY = re.compile(r"[A-Za-z0-9_$-]+")
_RULE_NAME = re.compile(r"[a-zA-Z0-9-]+")
_QUANTIFIER = re.compile(r"\{([^}]*)\}")
_BAD_LITERAL_CHAR = re.compile('["\\\\\x00-\x1f\ud800-\udfff\U00010000-\U0010ffff]')
# Rule names the converter writes itself (llama_cpp.llama_grammar.RESERVED_NAMES and "space"):
# a $ref's last segment that equals one is looked up as that rule, not converted.
_BUILTIN_RULES = frozenset({
    "root", "dot", "space", "boolean", "decimal-part", "integral-part", "number", "integer",
    "value", "object", "array", "uuid", "char", "string", "null", "date", "time", "date-time",
    "date-string", "time-string", "date-time-string",
})


def check_schema(schema: Any, where: str = "format") -> None:
    """Raise ``InvalidRequest`` naming the part of ``schema`` the converter or llama.cpp cannot
    handle; return None when it may be converted."""
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{where}: must be \"json\" or a JSON schema object")
    _check_bounds(schema, where)
    _SchemaChecker(schema, where).run()


def short(path: str) -> str:
    """A path for a message: a very deep one loses its middle."""
    return path if len(path) <= 160 else f"{path[:60]}...{path[-90:]}"


def path_of(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _SIMPLE_KEY.fullmatch(key):
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_bounds(schema: dict[str, Any], where: str) -> None:
    """Size, nesting and list lengths of the whole value, without recursion, stopping at the
    first bound passed."""
    stack: list[tuple[Any, str, int]] = [(schema, where, 1)]
    values = 0
    size = 0
    while stack:
        value, path, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise InvalidRequest(f"{where}: the schema has more than {MAX_VALUES} values")
        if isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise InvalidRequest(f"{short(path)}: the schema is nested deeper than {MAX_DEPTH} levels")
            if len(value) > MAX_ITEMS:
                raise InvalidRequest(f"{short(path)}: has {len(value)} entries, at most {MAX_ITEMS}")
            size += 2
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidRequest(f"{short(path)}: the key {key!r} is not a string")
                size += len(key) + 4
                stack.append((item, path_of(path, key), depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise InvalidRequest(f"{short(path)}: the schema is nested deeper than {MAX_DEPTH} levels")
            if len(value) > MAX_ITEMS:
                raise InvalidRequest(f"{short(path)}: has {len(value)} items, at most {MAX_ITEMS}")
            size += 2 + len(value)
            stack.extend((item, path_of(path, i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            size += len(value) + 2
        elif value is None or isinstance(value, (bool, int)):
            size += 5
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidRequest(f"{short(path)}: {value} is not a JSON number")
            size += 8
        else:
            raise InvalidRequest(f"{short(path)}: {_kind(value)} is not a JSON value")
        if size > MAX_SIZE:
            raise InvalidRequest(f"{where}: the schema is larger than {MAX_SIZE // 1024} KiB")


def _literal_problem(text: str) -> str | None:
    """Why the converter cannot put ``text`` (a property name, an enum or const string) into a
    grammar literal, or None."""
    found = _BAD_LITERAL_CHAR.search(text)
    if found is not None:
        char = found.group()
        code = ord(char)
        if char == '"':
            return ("holds a double quote, which the converter does not escape properly "
                    "(llama.cpp could not parse the grammar)")
        if char == "\\":
            return ("holds a backslash, which the converter does not escape "
                    "(the grammar would ask for different JSON)")
        if code == 0:
            return "holds a NUL character, which the grammar would require and no token can produce"
        if code < 0x20:
            return (f"holds the control character U+{code:04X}, which the grammar would ask for "
                    "raw (not valid JSON)")
        if 0xD800 <= code <= 0xDFFF:
            return f"holds a lone surrogate (U+{code:04X}), which is not a character"
        if code > 0xFFFF:
            return (f"holds U+{code:X}, beyond U+FFFF, which the converter writes as a surrogate "
                    "pair (the answer would not be UTF-8)")
    return None


def _pattern_problem(body: str) -> str | None:
    """What the converter gets wrong outside character classes of a pattern (between ^ and $)."""
    depth = 0
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            if body[i + 1:i + 2] == "\\":
                return ("a pattern that matches a backslash is not supported: the converter would "
                        "write it raw into the JSON string")
            i += 2
            continue
        if c == "[":  # skip the class: the converter copies it as it is
            i += 1
            while i < len(body) and body[i] != "]":
                i += 2 if body[i] == "\\" else 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return ("an alternative at the top of a pattern is not supported: the converter "
                    "would split the JSON string's quotes between them; write ^(a|b)$")
        elif c == '"' or ord(c) < 0x20:
            return ("a pattern that matches a double quote or a control character is not "
                    "supported: the converter would write it raw into the JSON string")
        i += 1
    return None


def _describe(text: str) -> str:
    shown = json.dumps(text)
    return shown if len(shown) <= 40 else shown[:37] + "...\""


class _SchemaChecker:
    def __init__(self, root: dict[str, Any], where: str) -> None:
        self.root = root
        self.where = where
        self.literals = 0
        # Edges between schema nodes (by id): every child schema, and a $ref to its target; and
        # the "transparent" ones alone (a $ref, an anyOf/oneOf alternative), along which the
        # converter writes no text before the next rule.
        self.nodes: dict[int, tuple[dict[str, Any], str]] = {}
        self.edges: dict[int, list[int]] = {}
        self.transparent: dict[int, list[int]] = {}
        # (node, path, ref, target, target's path) for every $ref
        self.refs: list[tuple[dict[str, Any], str, str, dict[str, Any], str]] = []

    def fail(self, path: str, message: str) -> InvalidRequest:
        return InvalidRequest(f"{short(path)}: {message}")

    def run(self) -> None:
        self.schema(self.root, self.where)
        # A reference may point anywhere in the document; its target is walked from here, not
        # from the $ref, so that a chain of references does not nest the walk.
        i = 0
        while i < len(self.refs):
            _node, _path, _ref, target, target_path = self.refs[i]
            self.schema(target, target_path)
            i += 1
        self.check_root_names()
        self.check_cycles()

    # -- one schema node -----------------------------------------------------------------------

    def schema(self, node: Any, path: str) -> int:
        if isinstance(node, bool):
            raise self.fail(path, "true/false schemas are not supported; use {} for any value")
        if not isinstance(node, dict):
            raise self.fail(path, f"must be a schema object, not {_kind(node)}")
        key = id(node)
        if key in self.nodes:
            return key
        self.nodes[key] = (node, path)
        children: list[int] = []
        self.edges[key] = children
        self.check_type(node, path)
        self.check_literals(node, path)
        self.check_counts(node, path)
        self.check_strings(node, path)
        for name in _SCHEMA_LISTS:
            if name in node:
                items = node[name]
                where = path_of(path, name)
                if not isinstance(items, list):
                    raise self.fail(where, f"must be a list of schemas, not {_kind(items)}")
                if not items:
                    raise self.fail(where, "must not be empty")
                children.extend(self.schema(item, path_of(where, i)) for i, item in enumerate(items))
        if "properties" in node:
            children.extend(self.properties(node["properties"], path_of(path, "properties")))
        if "required" in node:
            required = node["required"]
            if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
                raise self.fail(path_of(path, "required"), "must be a list of property names")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], bool):
            children.append(self.schema(node["additionalProperties"], path_of(path, "additionalProperties")))
        if "items" in node:
            items = node["items"]
            where = path_of(path, "items")
            if items == {} and "prefixItems" not in node:
                raise self.fail(where, "{} is not supported by the converter; leave items out "
                                       "for an array of any values")
            if isinstance(items, list):
                if not items:
                    raise self.fail(where, "must not be an empty list")
                children.extend(self.schema(item, path_of(where, i)) for i, item in enumerate(items))
            else:
                children.append(self.schema(items, where))
        if "prefixItems" in node:
            items = node["prefixItems"]
            where = path_of(path, "prefixItems")
            if not isinstance(items, list):
                raise self.fail(where, f"must be a list of schemas, not {_kind(items)}")
            children.extend(self.schema(item, path_of(where, i)) for i, item in enumerate(items))
        for name in ("$defs", "definitions"):
            if name in node:
                defs = node[name]
                where = path_of(path, name)
                if not isinstance(defs, dict):
                    raise self.fail(where, f"must be an object of schemas, not {_kind(defs)}")
                children.extend(self.schema(item, path_of(where, k)) for k, item in defs.items())
        if "$ref" in node:
            ref = node["$ref"]
            self.refs.append((node, path, ref, *self.resolve(ref, path_of(path, "$ref"))))
        return key

    def check_type(self, node: dict[str, Any], path: str) -> None:
        if "type" not in node:
            return
        kind = node["type"]
        where = path_of(path, "type")
        names = kind if isinstance(kind, list) else [kind]
        if isinstance(kind, list) and not kind:
            raise self.fail(where, "must not be an empty list")
        for name in names:
            if not isinstance(name, str):
                raise self.fail(where, f"must be a type name or a list of them, not {_kind(name)}")
            if name not in TYPES:
                raise self.fail(where, f"unknown type {_describe(name)}; the types are "
                                       + ", ".join(sorted(TYPES)))

    def literal(self, text: str, path: str, what: str) -> None:
        self.literals += len(text)
        if self.literals > MAX_LITERALS:
            raise self.fail(path, f"property names and enum/const strings together pass "
                                  f"{MAX_LITERALS} characters")
        problem = _literal_problem(text)
        if problem is not None:
            raise self.fail(path, f"{what} {_describe(text)} {problem}")

    def value_literals(self, value: Any, path: str) -> None:
        """Every string in an enum or const value (object keys too) becomes grammar text."""
        stack = [(value, path)]
        while stack:
            item, where = stack.pop()
            if isinstance(item, str):
                self.literal(item, where, "the string")
            elif isinstance(item, list):
                stack.extend((x, path_of(where, i)) for i, x in enumerate(item))
            elif isinstance(item, dict):
                for key, x in item.items():
                    self.literal(key, where, "the key")
                    stack.append((x, path_of(where, key)))

    def check_literals(self, node: dict[str, Any], path: str) -> None:
        if "enum" in node:
            values = node["enum"]
            where = path_of(path, "enum")
            if not isinstance(values, list):
                raise self.fail(where, f"must be a list of values, not {_kind(values)}")
            if not values:
                raise self.fail(where, "must not be empty")
            self.value_literals(values, where)
        if "const" in node:
            self.value_literals(node["const"], path_of(path, "const"))

    def check_counts(self, node: dict[str, Any], path: str) -> None:
        for low_name, high_name in _COUNTS:
            found: dict[str, int] = {}
            for name in (low_name, high_name):
                if name not in node:
                    continue
                value = node[name]
                where = path_of(path, name)
                if isinstance(value, bool) or not isinstance(value, int):
                    raise self.fail(where, f"must be a whole number, not {_kind(value)}")
                if value < 0:
                    raise self.fail(where, "must not be negative")
                if value > MAX_REPEAT:
                    raise self.fail(where, f"{value} is more than {MAX_REPEAT}, which a llama.cpp "
                                           "grammar cannot repeat")
                found[name] = value
            if len(found) == 2 and found[high_name] < found[low_name]:
                raise self.fail(path_of(path, high_name), f"is smaller than {low_name}")

    def check_strings(self, node: dict[str, Any], path: str) -> None:
        if "format" in node and not isinstance(node["format"], str):
            raise self.fail(path_of(path, "format"), f"must be a string, not {_kind(node['format'])}")
        if "pattern" in node:
            self.check_pattern(node["pattern"], path_of(path, "pattern"))

    def check_pattern(self, pattern: Any, path: str) -> None:
        from llama_cpp.llama_grammar import json_schema_to_gbnf

        from hearth.engine.gbnf_check import grammar_problem

        if not isinstance(pattern, str):
            raise self.fail(path, f"must be a string, not {_kind(pattern)}")
        if len(pattern) > MAX_PATTERN:
            raise self.fail(path, f"has {len(pattern)} characters, at most {MAX_PATTERN}")
        if len(pattern) < 2 or not pattern.startswith("^") or not pattern.endswith("$"):
            raise self.fail(path, "must start with ^ and end with $ (the converter needs both)")
        for match in _QUANTIFIER.finditer(pattern):
            for number in re.findall(r"\d+", match.group(1)):
                if int(number) > MAX_REPEAT:
                    raise self.fail(path, f"the repetition {match.group()} is more than {MAX_REPEAT}, "
                                          "which a llama.cpp grammar cannot repeat")
        problem = _pattern_problem(pattern[1:-1])
        if problem is not None:
            raise self.fail(path, problem)
        try:
            text = json_schema_to_gbnf(json.dumps({"type": "string", "pattern": pattern}))
        except Exception as exc:  # the converter raises plain exceptions (asserts) for bad patterns
            raise self.fail(path, f"the converter cannot read this pattern: {exc}") from exc
        problem = grammar_problem(text)
        if problem is not None:
            advice = ""
            if "unknown escape" in problem:
                advice = ("; regex escapes like \\d, \\w and \\. are not translated: write "
                          "[0-9], [a-zA-Z0-9_] or [.]")
            raise self.fail(path, f"the converter copies this pattern into a grammar llama.cpp "
                                  f"cannot use ({problem}){advice}")

    def properties(self, properties: Any, path: str) -> list[int]:
        if not isinstance(properties, dict):
            raise self.fail(path, f"must be an object of schemas, not {_kind(properties)}")
        children = []
        for name, schema in properties.items():
            where = path_of(path, name)
            self.literal(name, where, "the property name")
            children.append(self.schema(schema, where))
        return children

    # -- references ----------------------------------------------------------------------------

    def resolve(self, ref: Any, path: str) -> tuple[dict[str, Any], str]:
        """The target of a local reference, found the way the converter finds it, and its path."""
        if not isinstance(ref, str):
            raise self.fail(path, f"must be a string, not {_kind(ref)}")
        if not ref.startswith("#/"):
            raise self.fail(path, f"{_describe(ref)}: only local references (#/...) are supported")
        if "#" in ref[1:] or "~" in ref or "%" in ref:
            raise self.fail(path, f"{_describe(ref)}: escapes (~0, ~1, %xx) and '#' inside a "
                                  "reference are not supported")
        target: Any = self.root
        target_path = self.where
        parts = ref[2:].split("/")
        for part in parts:
            if not isinstance(target, dict) or part not in target:
                raise self.fail(path, f"{_describe(ref)} does not resolve: no {_describe(part)} there")
            target = target[part]
            target_path = path_of(target_path, part)
        if not isinstance(target, dict):
            raise self.fail(path, f"{_describe(ref)} refers to {_kind(target)}, not a schema object")
        if parts[-1] in _BUILTIN_RULES:
            raise self.fail(path, f"{_describe(ref)}: a definition named like one of the "
                                  f"converter's built-in rules ({', '.join(sorted(_BUILTIN_RULES))}) "
                                  "may be replaced by it; rename the definition")
        return target, target_path

    def check_root_names(self) -> None:
        """An empty property name of the top-level object: the converter calls its rule
        "root", the name of the whole grammar's start."""
        sources = [(self.root, self.where)]
        for i, part in enumerate(self.root.get("allOf") or []):
            where = path_of(path_of(self.where, "allOf"), i)
            sources.append((part, where))
            sources.extend((alt, path_of(path_of(where, "anyOf"), j))
                           for j, alt in enumerate(part.get("anyOf") or []))
        for n, (node, path) in enumerate(sources):
            if n and "$ref" in node:  # the converter takes an allOf part's properties from its target
                node, path = self.resolve(node["$ref"], path_of(path, "$ref"))
            if "" in (node.get("properties") or {}):
                raise self.fail(path_of(path_of(path, "properties"), ""),
                                "an empty property name at the top level is not supported (the "
                                "converter would give its rule the name of the grammar's start)")

    def check_cycles(self) -> None:
        for node, _path, _ref, target, _target_path in self.refs:
            # A $ref wins over everything else in its node, for the converter.
            self.edges[id(node)].append(id(target))
            self.transparent.setdefault(id(node), []).append(id(target))
        for key, (node, _path) in self.nodes.items():
            if "$ref" in node:
                continue
            alternatives = node.get("oneOf") or node.get("anyOf")
            if isinstance(alternatives, list):
                self.transparent.setdefault(key, []).extend(id(alt) for alt in alternatives)
        cycle = _find_cycle(self.transparent)
        if cycle is not None:
            shown = " -> ".join(self.nodes[k][1] for k in cycle)
            raise self.fail(self.nodes[cycle[0]][1],
                            f"refers to itself before any text ({shown}): the grammar would be "
                            "left-recursive, which llama.cpp cannot use")
        component = _components(self.edges)
        for node, path, ref, target, _target_path in self.refs:
            if component[id(node)] != component[id(target)]:
                continue  # not recursive
            name = ref.split("/")[-1]
            if not _RULE_NAME.fullmatch(name):
                raise self.fail(path_of(path, "$ref"),
                                f"the recursive reference {_describe(ref)} needs a definition "
                                "name of only letters, digits and '-': the converter refers back "
                                "to it by that name unchanged, which the grammar would not define")


def _find_cycle(edges: dict[int, list[int]]) -> list[int] | None:
    """A cycle in the graph, as a list of nodes that starts and ends with the same one."""
    state: dict[int, int] = {}  # 1 on the current path, 2 finished
    for start in edges:
        if start in state:
            continue
        path = [start]
        iters = [iter(edges.get(start, ()))]
        state[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
                continue
            seen = state.get(nxt)
            if seen == 1:
                return path[path.index(nxt):] + [nxt]
            if seen is None:
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(edges.get(nxt, ())))
    return None


def _components(edges: dict[int, list[int]]) -> dict[int, int]:
    """Strongly connected components (Tarjan's, without recursion): node -> component number."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    component: dict[int, int] = {}
    counter = 0
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component[member] = index[node]
                    if member == node:
                        break
    return component
