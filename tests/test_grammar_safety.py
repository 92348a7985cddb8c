"""A JSON schema (Ollama's ``format``, OpenAI's ``response_format``) must never crash a runner.

llama.cpp parses a grammar only inside the runner, and some grammars kill it: llama-cpp-python
adds the NULL sampler llama.cpp returns for a grammar it cannot parse (SIGSEGV on the first
token), and a grammar that asks for a character no token can produce ends in an exception thrown
through the C API (SIGABRT). ``grammar_for_format`` refuses such schemas with a 400 that names
the offending part, in two layers: ``schema_check`` on the schema, ``gbnf_check`` on the grammar.

(a) every schema found to crash llama.cpp is refused, naming the part, and each layer refuses it
    on its own; ``test_without_the_check_the_schema_kills_the_process`` shows, in a child
    process, that the same schema passed straight to llama.cpp really does kill it;
(b) ordinary schemas still convert, and their grammars load and generate in a child process;
(c) hostile sizes are refused quickly.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hearth.engine import gbnf_check, schema_check
from hearth.engine.grammar import grammar_for_format
from hearth.errors import InvalidRequest

# Runs grammars through the engine hearth's runners use (BatchDecoder, via LocalBatchEngine):
# argv is the model and a JSON file with a list of grammar texts. Prints one JSON line each.
CHILD = r"""
import json, sys
from pathlib import Path
from hearth.engine.local_engine import LocalBatchEngine
from hearth.engine.settings import LoadSettings, SamplingSettings

grammars = json.loads(Path(sys.argv[2]).read_text())
engine = LocalBatchEngine(Path(sys.argv[1]), LoadSettings(num_ctx=512, num_thread=1), n_parallel=1)
tokens = engine.vocab.tokenize("hello", add_special=True, parse_special=False)
for index, grammar in enumerate(grammars):
    text, reason = [], None
    sampling = SamplingSettings(temperature=0, num_predict=int(sys.argv[3]))
    for chunk in engine.generate(tokens, sampling, grammar=grammar):
        text.append(chunk.text)
        if chunk.done:
            reason = chunk.done_reason
    print(json.dumps({"index": index, "reason": reason, "text": "".join(text)}), flush=True)
engine.close()
"""


def run_grammars(model: Path, grammars: list[str], tmp_path: Path, num_predict: int = 32,
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    source = tmp_path / "grammars.json"
    source.write_text(json.dumps(grammars))
    return subprocess.run([sys.executable, "-c", CHILD, str(model), str(source), str(num_predict)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)


def refusal(fmt: Any) -> str:
    with pytest.raises(InvalidRequest) as caught:
        grammar_for_format(fmt)
    return caught.value.message


def obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or list(properties)}


def recursive(name: str) -> dict[str, Any]:
    """A tree whose nodes refer back to their definition: fine, except for the name."""
    node = obj({"value": {"type": "integer"},
                "children": {"type": "array", "items": {"$ref": f"#/$defs/{name}"}}}, ["value"])
    return {**obj({"tree": {"$ref": f"#/$defs/{name}"}}), "$defs": {name: node}}


# (a) Schemas that kill llama.cpp today (llama-cpp-python 0.3.36), how, and the part the 400
# must name. Found with a child process per schema (see the crash test below).
CRASHERS: dict[str, tuple[dict[str, Any], int, str]] = {
    # A rule with no body, which the grammar parser cannot read: NULL sampler, SIGSEGV.
    "empty enum": (obj({"a": {"enum": []}}), signal.SIGSEGV, "format.properties.a.enum: must not be empty"),
    "empty anyOf": ({"anyOf": []}, signal.SIGSEGV, "format.anyOf: must not be empty"),
    "empty type list": (obj({"a": {"type": []}}), signal.SIGSEGV, "format.properties.a.type: must not be"),
    # The converter escapes '"' but not the backslash JSON puts before it: the literal ends early.
    "quote in a property name": (obj({"a": obj({'x"y': {"type": "string"}})}), signal.SIGSEGV,
                                 'format.properties.a.properties["x\\"y"]: the property name'),
    "quote in an enum string": (obj({"a": {"enum": ["ok", 'say "hi"']}}), signal.SIGSEGV,
                                "format.properties.a.enum[1]: the string"),
    "quote in a const": ({"const": 'q"'}, signal.SIGSEGV, "format.const: the string"),
    # JSON's \u0000 reaches the grammar as a NUL no token can produce: every candidate is
    # rejected, the sampler picks one anyway, and accepting it throws: SIGABRT.
    "NUL in a property name": (obj({"a\u0000b": {"type": "string"}}), signal.SIGABRT,
                               'format.properties["a\\u0000b"]: the property name'),
    "NUL in an enum string": ({"enum": ["\u0000"]}, signal.SIGABRT, "format.enum[0]: the string"),
    # A pattern is copied into the grammar: \d is no GBNF escape (SIGSEGV); [z-a] matches
    # nothing (SIGABRT).
    "regex escape in a pattern": (obj({"zip": {"type": "string", "pattern": "^\\d{5}$"}}), signal.SIGSEGV,
                                  "format.properties.zip.pattern: the converter copies this pattern"),
    "reversed range in a pattern": ({"type": "string", "pattern": "^[z-a]$"}, signal.SIGABRT,
                                    "format.pattern: the converter copies this pattern"),
    # Nested optional rules beyond llama.cpp's repetition limit: the parser gives up, SIGSEGV.
    "maxLength 1500": ({"type": "string", "maxLength": 1500}, signal.SIGSEGV, "format.maxLength: 1500 is more than"),
    "maxItems 5000": ({"type": "array", "items": {"type": "integer"}, "maxItems": 5000}, signal.SIGSEGV,
                      "format.maxItems: 5000 is more than"),
    # A reference cycle without text in between is left recursion, which llama.cpp refuses.
    "self reference": ({**obj({"x": {"$ref": "#/$defs/a"}}), "$defs": {"a": {"$ref": "#/$defs/a"}}},
                       signal.SIGSEGV, "format.$defs.a: refers to itself before any text"),
    "anyOf with itself": ({**obj({"x": {"$ref": "#/$defs/a"}}),
                           "$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}},
                          signal.SIGSEGV, "format.$defs.a: refers to itself before any text"),
    # In a recursive reference the converter refers back by the bare definition name; one it
    # rewrites for its own rule ("a b" -> "a-b", "string" -> "string-") is left undefined.
    "recursive definition named 'a b'": (recursive("a b"), signal.SIGSEGV, ".$ref: the recursive reference"),
    "recursive definition named 'string'": (recursive("string"), signal.SIGSEGV,
                                            ".$ref: \"#/$defs/string\": a definition named like"),
}


@pytest.mark.parametrize("name", CRASHERS)
def test_a_schema_that_crashes_llama_cpp_is_refused_naming_the_part(name: str) -> None:
    schema, _signal, expected = CRASHERS[name]
    message = refusal(schema)
    assert expected in message, message


@pytest.mark.parametrize("name", CRASHERS)
def test_each_layer_refuses_a_crasher_on_its_own(name: str) -> None:
    """The schema check names the part; the grammar check, run on the converter's raw output,
    refuses it even if the schema check had let it through."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema = CRASHERS[name][0]
    with pytest.raises(InvalidRequest):
        schema_check.check_schema(schema)
    raw = json_schema_to_gbnf(json.dumps(schema))
    assert gbnf_check.grammar_problem(raw) is not None, raw


# ---------------------------------------------------------------------------------------------
# WHY THE CHECK EXISTS: without it, these schemas kill the process llama.cpp runs in.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CRASHERS)
def test_without_the_check_the_schema_kills_the_process(name: str, tiny_model: Path,
                                                        tmp_path: Path) -> None:
    """The converter's grammar for the schema, handed straight to llama.cpp in a child process
    (the engine a runner uses), with no check in between: the child dies by a signal."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    schema, expected_signal, _part = CRASHERS[name]
    result = run_grammars(tiny_model, [json_schema_to_gbnf(json.dumps(schema))], tmp_path)
    assert result.returncode == -expected_signal, (result.returncode, result.stdout, result.stderr[-2000:])


def nested(levels: int, inner: dict[str, Any], wrap: Any) -> dict[str, Any]:
    schema = inner
    for _ in range(levels):
        schema = wrap(schema)
    return schema


# (b) Ordinary schemas: they convert, and their grammars load and generate in llama.cpp.
ORDINARY: dict[str, Any] = {
    "json": "json",
    "nested objects": obj({"name": {"type": "string"},
                           "address": obj({"city": {"type": "string"},
                                           "zip": {"type": "string", "pattern": "^[0-9]{5}$"}})}),
    "array with bounds": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    "array of objects": {"type": "array", "items": obj({"id": {"type": "integer"}, "ok": {"type": "boolean"}})},
    "tuple": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
    "enum": {"enum": ["red", "green", "blue", 1, None, "café", "naïve — ok"]},
    "const": obj({"kind": {"const": "point"}, "x": {"type": "number"}}),
    "anyOf": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    "oneOf": obj({"v": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]}}),
    "allOf": {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "string"}}}]},
    "type list": obj({"v": {"type": ["string", "integer", "null"]}}),
    "$ref and $defs": {**obj({"home": {"$ref": "#/$defs/Place"}, "work": {"$ref": "#/$defs/Place"}}),
                       "$defs": {"Place": obj({"lat": {"type": "number"}, "lon": {"type": "number"}})}},
    "recursive $ref": recursive("Node"),
    "string formats": obj({"day": {"type": "string", "format": "date"},
                           "at": {"type": "string", "format": "time"},
                           "when": {"type": "string", "format": "date-time"},
                           "id": {"type": "string", "format": "uuid"},
                           "mail": {"type": "string", "format": "email"}}),
    "numbers with bounds": obj({"score": {"type": "number", "minimum": 0, "maximum": 10},
                                "count": {"type": "integer", "exclusiveMinimum": 0, "multipleOf": 2}}),
    "required and optional": {**obj({"a": {"type": "integer"}, "b": {"type": "boolean"},
                                     "c": {"type": "string"}}, ["a"]), "additionalProperties": False},
    "additionalProperties schema": {"type": "object", "additionalProperties": {"type": "integer"}},
    "string lengths at the limit": {"type": "string", "minLength": 1, "maxLength": 1000},
    "many items at the limit": {"type": "array", "items": {"type": "integer"}, "maxItems": 1000},
    "names with spaces and accents": obj({"first name": {"type": "string"}, "prénom": {"type": "string"},
                                          "a-b": {"type": "string"}, "a b": {"type": "integer"}}),
    "pattern": obj({"code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3,4}(x|y)?$"}}),
    "pydantic style": {
        "title": "Person", "type": "object", "$defs": {
            "Pet": {"title": "Pet", "type": "object", "properties": {
                "name": {"title": "Name", "type": "string"},
                "kind": {"enum": ["cat", "dog"], "title": "Kind", "type": "string"}},
                "required": ["name", "kind"]}},
        "properties": {"name": {"title": "Name", "type": "string", "description": "Full name"},
                       "age": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
                       "pets": {"type": "array", "items": {"$ref": "#/$defs/Pet"}}},
        "required": ["name"]},
    "deeply nested (20 levels)": nested(20, {"type": "integer"}, lambda s: obj({"a": s})),
}


@pytest.mark.parametrize("name", ORDINARY)
def test_an_ordinary_schema_converts_and_passes_both_checks(name: str) -> None:
    text = grammar_for_format(ORDINARY[name])
    assert text and "root" in text
    assert gbnf_check.grammar_problem(text) is None


def test_ordinary_grammars_load_and_generate_in_llama_cpp(tiny_model: Path, tmp_path: Path) -> None:
    names = list(ORDINARY)
    grammars = [grammar_for_format(ORDINARY[name]) for name in names]
    result = run_grammars(tiny_model, grammars, tmp_path, num_predict=48, timeout=240)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["index"] for a in answers] == list(range(len(names)))
    for name, answer in zip(names, answers, strict=True):
        assert answer["reason"] in ("stop", "length"), (name, answer)
        assert answer["text"], (name, answer)
        if answer["reason"] == "stop":  # the grammar was complete: the answer is JSON
            json.loads(answer["text"])


# (c) Bounds: refused at once, whatever the size.
BOUNDS: dict[str, tuple[Any, str]] = {
    "depth 1000": (nested(1000, {"type": "string"}, lambda s: obj({"a": s})), "nested deeper than"),
    "anyOf depth 1000": (nested(1000, {"type": "string"}, lambda s: {"anyOf": [s]}), "nested deeper than"),
    "100k enum values": ({"enum": [f"v{i}" for i in range(100_000)]}, "format.enum: has 100000 items"),
    "10 MB description": ({"type": "string", "description": "x" * 10_000_000}, "larger than"),
    "10 MB of properties": (obj({f"p{i}": {"type": "string", "description": "x" * 10_000}
                                 for i in range(1000)}), "larger than"),
    "100k properties": ({"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(100_000)}},
                        "format.properties: has 100000 entries"),
    "many small values": (obj({f"p{i}": {"enum": list(range(900))} for i in range(100)}), "more than"),
    "minLength 10**9": ({"type": "string", "minLength": 10**9}, "format.minLength: 1000000000 is more than"),
    "minItems 10**9": ({"type": "array", "items": {}, "minItems": 10**9}, "format.minItems"),
    "pattern {10**9}": ({"type": "string", "pattern": "^a{1000000000}$"}, "format.pattern: the repetition"),
    "long pattern": ({"type": "string", "pattern": "^" + "a" * 100_000 + "$"}, "format.pattern: has 100002"),
    "huge enum strings": ({"enum": ["x" * 60_000, "y" * 60_000]}, "property names and enum/const strings together pass"),
}


@pytest.mark.parametrize("name", BOUNDS)
def test_bounds_answer_quickly(name: str) -> None:
    schema, expected = BOUNDS[name]
    grammar_for_format({"type": "string"})  # imports done before the clock starts
    started = time.perf_counter()
    message = refusal(schema)
    assert time.perf_counter() - started < 0.5
    assert expected in message, message


# The schema check's other refusals, each naming its part.
@pytest.mark.parametrize(("schema", "expected"), [
    ({"oneOf": []}, "format.oneOf: must not be empty"),
    ({"allOf": []}, "format.allOf: must not be empty"),
    (obj({"a": True}), "format.properties.a: true/false schemas are not supported"),
    (obj({"a": [{"type": "string"}]}), "format.properties.a: must be a schema object, not a list"),
    ({"anyOf": [{"type": "string"}, 5]}, "format.anyOf[1]: must be a schema object, not a number"),
    ({"type": "text"}, "format.type: unknown type \"text\""),
    ({"type": ["string", 3]}, "format.type: must be a type name"),
    ({"enum": "red"}, "format.enum: must be a list of values, not a string"),
    ({"type": "object", "properties": []}, "format.properties: must be an object of schemas"),
    ({"type": "object", "properties": {}, "required": "a"}, "format.required: must be a list"),
    (obj({"a": {"type": "string", "maxLength": -1}}), "format.properties.a.maxLength: must not be negative"),
    ({"type": "string", "maxLength": 2.5}, "format.maxLength: must be a whole number"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 2}, "format.maxItems: is smaller than minItems"),
    ({"type": "array", "items": {}}, "format.items: {} is not supported"),
    ({"type": "string", "pattern": "[a-z]+"}, "format.pattern: must start with ^ and end with $"),
    ({"type": "string", "pattern": "^a)$"}, "format.pattern: the converter cannot read this pattern"),
    ({"type": "string", "pattern": "^a|b$"}, "format.pattern: an alternative at the top of a pattern"),
    ({"type": "string", "pattern": '^say "hi"$'}, "format.pattern: a pattern that matches a double quote"),
    ({"type": "string", "pattern": "^a\\\\b$"}, "format.pattern: a pattern that matches a backslash"),
    ({"type": "string", "pattern": "^a\u0000b$"}, "format.pattern: a pattern that matches a double quote or a control"),
    (obj({"a": {"$ref": "https://example.com/a.json"}}), "format.properties.a.$ref: \"https://example.com/a.json\": only local"),
    (obj({"a": {"$ref": "#/$defs/missing"}}), "format.properties.a.$ref: \"#/$defs/missing\" does not resolve"),
    ({**obj({"a": {"$ref": "#/$defs/n"}}), "$defs": {"n": 5}}, "refers to a number, not a schema object"),
    (obj({"a": {"enum": ["a\\b"]}}), "format.properties.a.enum[0]: the string \"a\\\\b\" holds a backslash"),
    (obj({"a": {"enum": ["line\nbreak"]}}), "holds the control character U+000A"),
    (obj({"a": {"enum": ["\U0001F600"]}}), "holds U+1F600, beyond U+FFFF"),
    (obj({"a": {"const": {"k\"": 1}}}), "format.properties.a.const: the key \"k\\\"\" holds a double quote"),
    (obj({"": {"type": "integer"}}), "format.properties[\"\"]: an empty property name at the top level"),
    ({"enum": [float("nan")]}, "format.enum[0]: nan is not a JSON number"),
])
def test_the_schema_check_names_what_it_refuses(schema: Any, expected: str) -> None:
    message = refusal(schema)
    assert expected in message, message


def test_an_empty_property_name_below_the_top_is_fine() -> None:
    assert grammar_for_format(obj({"a": obj({"": {"type": "integer"}})}))


def test_the_contract_of_grammar_for_format() -> None:
    from llama_cpp.llama_grammar import JSON_GBNF

    assert grammar_for_format(None) is None
    assert grammar_for_format("") is None
    assert grammar_for_format("json") == JSON_GBNF
    assert "must be" in refusal("yaml")
    assert "must be" in refusal(["json"])


# The grammar check against llama.cpp's own parser, in process: llama_sampler_init_grammar
# returns NULL (it does not crash) for a grammar it cannot parse. gbnf_check must accept exactly
# what it accepts.
PARSER_CORPUS = [
    'root ::= "a"',
    'root ::= "a" | "b"\n',
    'root ::= ( "a" | "b" )* "c"',
    'root ::= [a-z]+ [0-9]{2,4}',
    'root ::= [^"\\\\] x\nx ::= "\\x41\\u00e9\\U0001F600\\n\\t\\r\\"\\\\\\[\\]\\-"',
    'root ::= "a"{0,}',
    'root ::= "a"{3}',
    'root ::= "a"{2000}',
    'root ::= ( "a" ){0,999}',
    'root ::= "" x\nx ::= "b"?',
    'root ::= []',
    'root ::= . [a-]',
    'root ::=\n  "a" # comment\n  | "b"\n',
    'root ::= ( \n "a" \n "b" )',
    'root ::= x\r\nx ::= "a"\r\n',
    # what llama.cpp rejects
    '',
    'root ::= ',
    'root ::= \nspace ::= " "',
    'root ::= "a',
    'root ::= "\\d"',
    'root ::= "\\x4"',
    'root ::= [a',
    'root ::= x',
    'root ::= ( "a"',
    'root ::= "a" )',
    'root ::= *',
    'root ::= "a"{2001}',
    'root ::= ("a"{2000}){2}',
    'root ::= "a" {',
    'root ::= "a"{1 2}',
    'x ::= "a"',
    'root := "a"',
    'root ::= root "a" | "b"',
    'root ::= x\nx ::= root | "a"',
]


def test_the_grammar_check_agrees_with_llama_cpp_parser(tiny_model: Path) -> None:
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(tiny_model), params=params, verbose=False)
    disagreements = []
    for text in PARSER_CORPUS:
        sampler = llama_cpp.llama_sampler_init_grammar(model.vocab, text.encode("utf-8"), b"root")
        accepted = bool(sampler) and text != ""  # "" is no grammar at all, not a grammar
        if sampler:
            llama_cpp.llama_sampler_free(sampler)
        problem = gbnf_check.grammar_problem(text)
        if accepted != (problem is None):
            disagreements.append((text, accepted, problem))
    assert not disagreements


@pytest.mark.parametrize(("text", "expected"), [
    # Parsed by llama.cpp, but fatal later: refused more strictly.
    ('root ::= "a\\x00b"', "NUL character"),
    ('root ::= [\\x00]', "matches no character"),
    ('root ::= [^\\x01-\\U0010FFFF]', "matches no character"),
    ('root ::= [z-a]', "reversed"),
    ('root ::= "\\ud83d"', "surrogate"),
    ('root ::= "\\U00110000"', "beyond the last Unicode character"),
    ('root ::= "a"{3,1}', "maximum below its minimum"),
    ('root ::= <hello>', "token references"),
    ('root ::= "a\x00"', "NUL character"),
    # Left recursion through a rule that is only empty by way of another: llama.cpp misses it
    # and grows its stacks until memory runs out.
    ('root ::= b root "x" | "y"\nb ::= c\nc ::= "" | "z"', "left recursion"),
    ('root ::= x "a"\nx ::= root', "left recursion"),
])
def test_the_grammar_check_refuses_what_would_crash_later(text: str, expected: str) -> None:
    problem = gbnf_check.grammar_problem(text)
    assert problem is not None and expected in problem, problem
    with pytest.raises(InvalidRequest, match="format: llama.cpp cannot use the grammar"):
        gbnf_check.check_grammar(text)


def test_the_bundled_grammars_pass_the_grammar_check() -> None:
    import llama_cpp.llama_grammar as bundled

    for name in dir(bundled):
        if name.endswith("_GBNF"):
            assert gbnf_check.grammar_problem(getattr(bundled, name)) is None, name
