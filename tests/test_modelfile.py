from __future__ import annotations

import os
from pathlib import Path

import pytest

from hearth.errors import ModelfileError
from hearth.modelfile import Modelfile, parse_modelfile, resolve_from

FULL = '''# a helpful mario
FROM ./smollm2.gguf

ADAPTER ./lora.gguf 0.5
PARAMETER temperature 0.7
PARAMETER num_ctx 4096
parameter use_mmap false
PARAMETER stop "<|im_end|>"
PARAMETER stop <|im_start|>
TEMPLATE """{% for message in messages %}
{{ message['content'] }}
{% endfor %}"""
SYSTEM You are Mario from super mario bros.
MESSAGE user Is Toronto in Canada?
MESSAGE assistant "yes"
LICENSE """Apache License
Version 2.0"""
License MIT
'''


def expect_error(text: str, line: int, *fragments: str) -> ModelfileError:
    with pytest.raises(ModelfileError) as info:
        parse_modelfile(text)
    error = info.value
    assert error.line == line
    assert f"line {line}" in str(error)
    for fragment in fragments:
        assert fragment in str(error)
    return error


def test_full_modelfile() -> None:
    mf = parse_modelfile(FULL)
    assert mf.from_ == "./smollm2.gguf"
    assert mf.from_line == 2
    assert mf.adapters == [("./lora.gguf", 0.5)]
    assert mf.parameters == {
        "temperature": 0.7,
        "num_ctx": 4096,
        "use_mmap": False,
        "stop": ["<|im_end|>", "<|im_start|>"],
    }
    assert mf.template == "{% for message in messages %}\n{{ message['content'] }}\n{% endfor %}"
    assert mf.system == "You are Mario from super mario bros."
    assert mf.messages == [
        {"role": "user", "content": "Is Toronto in Canada?"},
        {"role": "assistant", "content": "yes"},
    ]
    assert mf.licenses == ["Apache License\nVersion 2.0", "MIT"]


def test_minimal_modelfile_has_empty_defaults() -> None:
    mf = parse_modelfile("FROM smollm2")
    assert mf == Modelfile(from_="smollm2")
    assert (mf.template, mf.system, mf.parameters, mf.messages) == (None, None, {}, [])
    assert (mf.licenses, mf.adapters) == ([], [])


def test_instructions_are_case_insensitive() -> None:
    mf = parse_modelfile("from base\nSystem hi\nparameter TOP_K 5\nmessage USER hello\n")
    assert mf.from_ == "base"
    assert mf.system == "hi"
    assert mf.parameters == {"top_k": 5}
    assert mf.messages == [{"role": "user", "content": "hello"}]


def test_comments_blank_lines_and_indentation_are_ignored() -> None:
    text = "\n# comment\n   # indented comment\n\n  FROM base  \n\t\n  SYSTEM  spaced out  \n"
    mf = parse_modelfile(text)
    assert mf.from_ == "base"
    assert mf.from_line == 5
    assert mf.system == "spaced out"


def test_hash_inside_a_value_is_kept() -> None:
    assert parse_modelfile("FROM base\nSYSTEM use # for comments").system == "use # for comments"


def test_windows_line_endings_and_bom() -> None:
    mf = parse_modelfile('\ufeffFROM base\r\nSYSTEM """a\r\nb"""\r\n')
    assert mf.from_ == "base"
    assert mf.system == "a\nb"


def test_multiline_values_keep_their_content_exactly() -> None:
    text = 'FROM base\nSYSTEM """\n  indented\n\n  "quoted" \\n raw\n"""\nPARAMETER top_k 3\n'
    mf = parse_modelfile(text)
    assert mf.system == '\n  indented\n\n  "quoted" \\n raw\n'
    assert mf.parameters == {"top_k": 3}


def test_single_quoted_value_may_span_lines_like_ollama() -> None:
    mf = parse_modelfile('FROM base\nSYSTEM "line one\nline two"\nPARAMETER seed 1')
    assert mf.system == "line one\nline two"
    assert mf.parameters == {"seed": 1}


def test_quoted_values_keep_surrounding_spaces_and_may_be_empty() -> None:
    mf = parse_modelfile('FROM base\nPARAMETER stop " User:"\nSYSTEM ""\nTEMPLATE """"""')
    assert mf.parameters["stop"] == [" User:"]
    assert mf.system == ""
    assert mf.template == ""


def test_triple_quoted_value_may_end_with_a_quote() -> None:
    assert parse_modelfile('FROM base\nSYSTEM """say "hi""""').system == 'say "hi"'


def test_later_template_and_system_replace_earlier_ones() -> None:
    mf = parse_modelfile("FROM base\nSYSTEM one\nSYSTEM two\nTEMPLATE a\nTEMPLATE b")
    assert (mf.system, mf.template) == ("two", "b")


def test_parameters_are_typed() -> None:
    text = (
        "FROM base\nPARAMETER num_ctx 2048\nPARAMETER temperature 1\nPARAMETER top_p 0.9\n"
        "PARAMETER use_mmap true\nPARAMETER seed -1\nPARAMETER num_predict -2\n"
    )
    params = parse_modelfile(text).parameters
    assert params == {
        "num_ctx": 2048,
        "temperature": 1.0,
        "top_p": 0.9,
        "use_mmap": True,
        "seed": -1,
        "num_predict": -2,
    }
    assert isinstance(params["num_ctx"], int)
    assert isinstance(params["temperature"], float)
    assert params["use_mmap"] is True


def test_repeated_parameter_other_than_stop_keeps_the_last() -> None:
    assert parse_modelfile("FROM b\nPARAMETER top_k 1\nPARAMETER top_k 2").parameters == {
        "top_k": 2
    }


def test_stop_accumulates_in_order() -> None:
    text = 'FROM b\nPARAMETER stop <a>\nPARAMETER top_k 1\nPARAMETER stop "<b>"\nPARAMETER stop c'
    assert parse_modelfile(text).parameters["stop"] == ["<a>", "<b>", "c"]


def test_adapters() -> None:
    text = 'FROM b\nADAPTER ./one.gguf\nADAPTER "./with space.gguf" 0.25\nADAPTER ~/two.gguf 2'
    assert parse_modelfile(text).adapters == [
        ("./one.gguf", 1.0),
        ("./with space.gguf", 0.25),
        ("~/two.gguf", 2.0),
    ]


def test_message_roles() -> None:
    text = "FROM b\nMESSAGE system be brief\nMESSAGE user hi\nMESSAGE assistant hello"
    roles = [m["role"] for m in parse_modelfile(text).messages]
    assert roles == ["system", "user", "assistant"]


# --- errors: each names its line ------------------------------------------------------------


def test_missing_from() -> None:
    expect_error("# nothing\nSYSTEM hi\n", 1, "missing FROM")


def test_empty_modelfile_is_missing_from() -> None:
    expect_error("", 1, "missing FROM")


def test_second_from_is_an_error() -> None:
    expect_error("FROM a\n\nFROM b\n", 3, "more than one FROM", "line 1")


def test_unknown_instruction() -> None:
    error = expect_error("FROM base\n\nFOO bar\n", 3)
    assert str(error) == "Modelfile line 3: unknown instruction 'FOO'"


def test_error_names_the_source() -> None:
    with pytest.raises(ModelfileError, match=r"^models/Mario line 2: unknown instruction 'X'$"):
        parse_modelfile("FROM base\nX y", source="models/Mario")


def test_unknown_parameter() -> None:
    expect_error(
        "FROM base\nPARAMETER temprature 0.5", 2, "unknown PARAMETER 'temprature'", "top_k"
    )


@pytest.mark.parametrize(
    ("line", "fragments"),
    [
        ("PARAMETER num_ctx lots", ("num_ctx", "an integer", "'lots'")),
        ("PARAMETER num_ctx 1.5", ("num_ctx", "an integer", "'1.5'")),
        ("PARAMETER temperature hot", ("temperature", "a number", "'hot'")),
        ("PARAMETER temperature nan", ("temperature", "number", "'nan'")),
        ("PARAMETER use_mmap maybe", ("use_mmap", "true or false", "'maybe'")),
        ("PARAMETER num_ctx 4", ("num_ctx", "an integer", "greater than or equal to 16")),
        ("PARAMETER top_p 2", ("top_p", "a number", "less than or equal to 1")),
    ],
)
def test_parameter_with_wrong_type(line: str, fragments: tuple[str, ...]) -> None:
    expect_error(f"FROM base\n# typed\n{line}\n", 3, *fragments)


def test_parameter_needs_name_and_value() -> None:
    expect_error("FROM base\nPARAMETER\n", 2, "PARAMETER needs a parameter name")
    expect_error("FROM base\nPARAMETER top_k\n", 2, "PARAMETER needs a value")


def test_instruction_without_value() -> None:
    expect_error("FROM\n", 1, "FROM needs a value")
    expect_error("FROM base\nSYSTEM   \n", 2, "SYSTEM needs a value")


def test_invalid_message_role() -> None:
    expect_error("FROM base\nMESSAGE tool hi", 2, "invalid MESSAGE role 'tool'", "assistant")
    expect_error("FROM base\nMESSAGE\n", 2, "MESSAGE needs a role")


def test_unterminated_triple_quote_names_the_line_where_it_started() -> None:
    text = 'FROM base\nPARAMETER top_k 2\nTEMPLATE """{{ prompt }}\nmore\n\nstill more\n'
    expect_error(text, 3, 'unterminated """', "TEMPLATE")


def test_unterminated_single_quote() -> None:
    expect_error('FROM base\nSYSTEM "open\nnever closed\n', 2, 'unterminated "')


def test_text_after_a_closing_quote_is_an_error() -> None:
    expect_error(
        'FROM base\nSYSTEM """a\nb""" trailing\n', 3, "unexpected text", "starts on line 2"
    )
    expect_error('FROM base\nPARAMETER stop "a" "b"\n', 2, "unexpected text")


def test_bad_adapter_scale() -> None:
    expect_error('FROM base\nADAPTER "./a.gguf" big\n', 2, "ADAPTER scale", "'big'")
    expect_error('FROM base\nADAPTER "./a.gguf" inf\n', 2, "ADAPTER scale", "'inf'")


def test_error_line_numbers_count_lines_inside_multiline_values() -> None:
    text = 'FROM base\nSYSTEM """one\ntwo\nthree"""\nLICENSE "x\ny"\nBOGUS 1\n'
    expect_error(text, 7, "unknown instruction 'BOGUS'")


# --- to_text ---------------------------------------------------------------------------------


def test_round_trip_full() -> None:
    mf = parse_modelfile(FULL)
    assert parse_modelfile(mf.to_text()) == mf


def test_round_trip_awkward_values() -> None:
    mf = Modelfile(
        from_="/models/my model.gguf",
        parameters={"stop": [" User:", "\n\n", '"', "<eos>"], "seed": 42, "use_mmap": True},
        template='{{ "quoted" }}\n{% if x %}""{% endif %}',
        system='  "leading quote and spaces"  ',
        licenses=["line\nbreak", "", 'ends with quote"'],
        messages=[{"role": "user", "content": '"hi"'}, {"role": "assistant", "content": "a\nb"}],
        adapters=[("./lora with space.gguf", 1.0), ("./b 0.5", 1.0), ("./c.gguf", 0.75)],
    )
    text = mf.to_text()
    assert parse_modelfile(text) == mf
    assert text.startswith("FROM /models/my model.gguf\n")


def test_to_text_is_plain_for_plain_values() -> None:
    mf = parse_modelfile("FROM smollm2\nPARAMETER temperature 0.5\nSYSTEM Be kind.")
    assert mf.to_text() == "FROM smollm2\nSYSTEM Be kind.\nPARAMETER temperature 0.5\n"


def test_to_text_refuses_a_value_no_quoting_can_hold() -> None:
    with pytest.raises(ValueError, match='"""'):
        Modelfile(from_="base", system='a\n"""b').to_text()


def test_from_line_is_not_part_of_equality() -> None:
    assert parse_modelfile("# c\nFROM base") == parse_modelfile("FROM base")


# --- resolve_from ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["./m.gguf", "../up/m.gguf", "sub/m.GGUF", "model.gguf", ".", "./folder"]
)
def test_resolve_from_relative_paths(tmp_path: Path, value: str) -> None:
    kind, path = resolve_from(Modelfile(from_=value), tmp_path)
    assert kind == "file"
    assert path == Path(os.path.normpath(tmp_path / value))
    assert path.is_absolute()


def test_resolve_from_absolute_and_home_paths(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "m.gguf"
    assert resolve_from(Modelfile(from_=str(absolute)), Path("/unused")) == ("file", absolute)
    kind, path = resolve_from(Modelfile(from_="~/models/m.gguf"), tmp_path)
    assert kind == "file"
    assert path == Path.home() / "models" / "m.gguf"


def test_resolve_from_existing_file(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    mf = parse_modelfile("FROM ./m.gguf")
    assert resolve_from(mf, tmp_path) == ("file", tmp_path / "m.gguf")


@pytest.mark.parametrize("value", ["smollm2", "llama3.2:1b", "hf.co/owner/repo:Q4_K_M"])
def test_resolve_from_model_names(tmp_path: Path, value: str) -> None:
    assert resolve_from(Modelfile(from_=value), tmp_path) == ("model", None)
