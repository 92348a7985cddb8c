"""ModelName: parsing, defaults, display forms, case rules, and the character rules that keep
every name's path parts inside the store."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from hearth.errors import InvalidModelName, InvalidRequest
from hearth.names import ModelName


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("smollm2", ("hearth.local", "library", "smollm2", "latest")),
        ("smollm2:135m", ("hearth.local", "library", "smollm2", "135m")),
        ("ns/m:tag", ("hearth.local", "ns", "m", "tag")),
        ("ns/m", ("hearth.local", "ns", "m", "latest")),
        ("host:5000/ns/m:tag", ("host:5000", "ns", "m", "tag")),
        ("host:5000/ns/m", ("host:5000", "ns", "m", "latest")),
        ("registry.example.com/team/llama-3.2:1b-q4_0", ("registry.example.com", "team", "llama-3.2", "1b-q4_0")),
        ("hf.co/Owner/Repo-GGUF:Q4_K_M", ("hf.co", "owner", "repo-gguf", "q4_k_m")),
    ],
)
def test_parse_fills_in_defaults(text: str, parts: tuple[str, str, str, str]) -> None:
    name = ModelName.parse(text)
    assert (name.host, name.namespace, name.model, name.tag) == parts
    assert name.path_parts() == parts


@pytest.mark.parametrize(
    ("text", "short", "full"),
    [
        ("smollm2", "smollm2:latest", "hearth.local/library/smollm2:latest"),
        ("ns/m:tag", "ns/m:tag", "hearth.local/ns/m:tag"),
        ("library/m:v1", "m:v1", "hearth.local/library/m:v1"),
        ("host:5000/ns/m:tag", "host:5000/ns/m:tag", "host:5000/ns/m:tag"),
        ("hearth.local/library/m", "m:latest", "hearth.local/library/m:latest"),
    ],
)
def test_short_and_full_forms(text: str, short: str, full: str) -> None:
    name = ModelName.parse(text)
    assert name.short == short
    assert name.full == full
    assert str(name) == short
    # Both forms name the same model.
    assert ModelName.parse(short) == name
    assert ModelName.parse(full) == name


def test_names_compare_case_insensitively() -> None:
    a = ModelName.parse("SmolLM2:Latest")
    b = ModelName.parse("smollm2:latest")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, ModelName.parse("SMOLLM2")}) == 1
    # Stored lower-case, so two spellings can never become two folders.
    assert a.path_parts() == ("hearth.local", "library", "smollm2", "latest")
    assert ModelName.parse("Example.COM/NS/M:TAG").full == "example.com/ns/m:tag"


def test_different_tags_are_different_models() -> None:
    assert ModelName.parse("m:a") != ModelName.parse("m:b")
    assert ModelName.parse("ns1/m") != ModelName.parse("ns2/m")


def test_with_tag() -> None:
    name = ModelName.parse("ns/m:old")
    assert name.with_tag("New") == ModelName.parse("ns/m:new")
    with pytest.raises(InvalidModelName):
        name.with_tag("../x")


def test_is_valid() -> None:
    assert ModelName.is_valid("smollm2")
    assert not ModelName.is_valid("../x")


BAD_NAMES = [
    "..",
    "../x",
    "a/../b",
    "ns/..",
    "m:..",
    "/m",
    "/etc/passwd",
    "m/",
    "ns/m/",
    "a//b",
    "",
    "   ",
    "\t\n",
    ":tag",
    "ns/:tag",
    "m:",
    "m$",
    "m b",
    "m\x00",
    "m;rm",
    "m;rm -rf /",
    "ns\\m",
    "..\\..\\m",
    "m\\",
    "a/b/c/d",
    "m" * 300,
    "ns/" + "m" * 300,
    "m:" + "t" * 300,
    ".hidden",
    "-m",
    "m@sha256:" + "a" * 64,
    "m:tag:more",
    "m%2f..",
    "ns/m:ta/g",
]


@pytest.mark.parametrize("text", BAD_NAMES, ids=repr)
def test_bad_names_are_rejected(text: str) -> None:
    with pytest.raises(InvalidModelName) as info:
        ModelName.parse(text)
    # An InvalidModelName is a bad request (HTTP 400) with a message for the user.
    assert isinstance(info.value, InvalidRequest)
    assert info.value.status_code == 400
    assert info.value.message
    assert not ModelName.is_valid(text)


@pytest.mark.parametrize("value", [None, 42, b"smollm2"], ids=repr)
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidModelName):
        ModelName.parse(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["ns\n/m", "m\n:tag", "example.com\n/ns/m"], ids=repr)
def test_a_newline_inside_a_name_is_rejected(text: str) -> None:
    with pytest.raises(InvalidModelName):
        ModelName.parse(text)


# Hostile characters are rare enough that many strings still parse, so the property below is
# checked on accepted names, not only on rejections.
_GROUPS = [("abcXYZ019", 8), ("...--__", 3), ("////:::", 4), ("\\\x00 %\n\t~@$*?", 1)]
_ALPHABET = "".join(chars for chars, _ in _GROUPS)
_WEIGHTS = [weight for chars, weight in _GROUPS for _ in chars]
_SAFE_PART = re.compile(r"[a-z0-9._:-]+")


def _random_names(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    names = []
    for _ in range(count):
        length = rng.randint(0, 24)
        names.append("".join(rng.choices(_ALPHABET, weights=_WEIGHTS, k=length)))
    # Known traversal shapes mixed into otherwise valid names.
    for _ in range(count // 10):
        pieces = [rng.choice(["a", "b1", "..", ".", "", "x.y", "c:1", "%2e%2e"]) for _ in range(rng.randint(1, 4))]
        names.append("/".join(pieces) + rng.choice(["", ":t", ":..", ":", ":.t"]))
    return names


def test_no_accepted_name_can_leave_the_store(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    root.mkdir()
    resolved_root = root.resolve()
    accepted = 0
    for text in _random_names(2000, seed=20240601):
        try:
            name = ModelName.parse(text)
        except InvalidModelName:
            continue
        accepted += 1
        parts = name.path_parts()
        assert len(parts) == 4, text
        for part in parts:
            assert part, f"empty part from {text!r}"
            assert "/" not in part and "\\" not in part and "\x00" not in part, (text, part)
            assert part not in (".", ".."), (text, part)
            assert _SAFE_PART.fullmatch(part), (text, part)
        target = root.joinpath(*parts).resolve()
        assert target.is_relative_to(resolved_root), (text, target)
        assert target != resolved_root
        # The stored form parses back to the same name.
        assert ModelName.parse(name.full) == name
    # The property must not hold only because nothing was accepted.
    assert accepted >= 100
