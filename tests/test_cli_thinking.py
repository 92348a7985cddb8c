"""Reasoning in the terminal: `hearth run --think`, `--hidethinking`, and `/set think` in the
interactive chat, against a real `hearth serve` with a model that thinks (tests/thinking_model.py).

What the CLI prints is checked against the server's own `/api/chat` answer to the same request:
the thinking and the answer are its `message.thinking` and `message.content`, nothing else.
"""

from __future__ import annotations

import io
import re
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.conftest import HearthServer, copy_home, hearth_env, run_hearth
from tests.thinking_model import GREEDY, NAME, QUESTION, create_thinking_model, reference_reply

pytestmark = pytest.mark.e2e

OPTIONS = [arg for key, value in GREEDY.items() for arg in ("-o", f"{key}={value}")]
OPENS, CLOSES = "Thinking...", "...done thinking."
DIM = "\x1b[2m"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def think_server(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    home = copy_home(smollm2_home, tmp_path_factory.mktemp("think-cli") / "home")
    running = HearthServer(home)
    create_thinking_model(running.url)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reference(think_server: HearthServer) -> dict:
    message = reference_reply(think_server.url, think=True)
    # The model does think and then answer: otherwise the tests below would prove nothing.
    assert message["thinking"] and message["thinking"].strip(), message
    assert message["content"].strip(), message
    return message


def split_output(stdout: str) -> tuple[str, str]:
    """The thinking section and the answer of `hearth run --think`'s plain output."""
    assert stdout.startswith(OPENS + "\n"), stdout
    thinking, sep, answer = stdout[len(OPENS) + 1:].partition("\n" + CLOSES + "\n\n")
    assert sep, stdout
    return thinking, answer


def test_think_prints_the_thinking_then_the_answer(think_server, reference):
    result = run_hearth(["run", NAME, QUESTION, "--think", *OPTIONS], think_server.env)
    assert result.returncode == 0, result.stderr
    thinking, answer = split_output(result.stdout)
    assert thinking.strip() == reference["thinking"].strip()
    assert answer.strip() == reference["content"].strip()
    # Not a terminal: plain words, no escape codes, and no raw think tags anywhere.
    assert DIM not in result.stdout and "<think>" not in result.stdout and "</think>" not in result.stdout
    # --think=true is the same as bare --think.
    spelled = run_hearth(["run", NAME, QUESTION, "--think=true", *OPTIONS], think_server.env)
    assert spelled.stdout == result.stdout


def test_hidethinking_and_a_pipe_print_only_the_answer(think_server, reference):
    hidden = run_hearth(["run", NAME, QUESTION, "--think", "--hidethinking", *OPTIONS], think_server.env)
    assert hidden.returncode == 0, hidden.stderr
    assert hidden.stdout.strip() == reference["content"].strip()
    assert OPENS not in hidden.stdout and reference["thinking"].strip() not in hidden.stdout
    # Nothing asked, stdout a pipe: the model thinks by its template, only the answer is printed.
    unasked = run_hearth(["run", NAME, QUESTION, *OPTIONS], think_server.env)
    assert unasked.returncode == 0, unasked.stderr
    assert OPENS not in unasked.stdout and unasked.stdout.strip()
    assert "</think>" not in unasked.stdout


def test_think_false_answers_without_thinking(think_server):
    reference = reference_reply(think_server.url, think=False)
    assert not reference.get("thinking") and reference["content"].strip(), reference
    result = run_hearth(["run", NAME, QUESTION, "--think=false", *OPTIONS], think_server.env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == reference["content"].strip()
    assert OPENS not in result.stdout


def test_think_on_a_model_that_cannot_think_is_a_one_line_error(think_server):
    result = run_hearth(["run", "smollm2", "Hi", "--think", *OPTIONS], think_server.env)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "smollm2" in lines[0] and "does not support thinking" in lines[0]


def test_think_value_is_checked_before_anything_runs(tmp_path):
    result = run_hearth(["run", NAME, QUESTION, "--think=maybe"], hearth_env(tmp_path / "home"))
    assert result.returncode == 2
    assert "--think" in result.stderr and "low, medium or high" in result.stderr


def test_reply_writer_gives_the_same_output_however_the_stream_is_cut():
    """The printer alone: the reasoning and the answer split at any place print alike, dimmed
    on a terminal, and a reply cut short while thinking still closes its section."""
    from hearth.cli.streaming import ReplyWriter

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    thinking, answer = "\nThe user asks about 2+2.\n", "\nThe answer: 4"

    def printed(cut: int, out: io.StringIO) -> str:
        writer = ReplyWriter(True, out)
        for piece in (thinking[:cut], thinking[cut:]):
            writer.write(piece, "")
        for piece in (answer[:cut], answer[cut:]):
            writer.write(None, piece)
        writer.close_thinking(answer_follows=False)
        return out.getvalue()

    plain = {printed(cut, io.StringIO()) for cut in range(len(answer))}
    assert plain == {f"{OPENS}\nThe user asks about 2+2.\n{CLOSES}\n\nThe answer: 4"}
    on_terminal = printed(5, Terminal())
    assert on_terminal.startswith(f"{DIM}{OPENS}\x1b[0m\n") and f"{DIM}{CLOSES}\x1b[0m" in on_terminal
    assert on_terminal.endswith("\n\nThe answer: 4")

    cut_short = ReplyWriter(True, io.StringIO())
    cut_short.write("still thinking", "")
    cut_short.close_thinking(answer_follows=False)
    assert cut_short.out.getvalue() == f"{OPENS}\nstill thinking\n{CLOSES}"
    hidden = ReplyWriter(False, io.StringIO())
    hidden.write("reasoning", "")
    hidden.write(None, "answer")
    assert hidden.out.getvalue() == "answer"


# -- the interactive chat, through a real pseudo-terminal ------------------------------------


PROMPT = ">>> "


@pytest.fixture
def chat(think_server: HearthServer) -> Iterator[pexpect.spawn]:
    # The default SIGINT disposition a terminal user has (see tests/test_e2e_chat.py).
    child = pexpect.spawn(sys.executable, ["-m", "hearth", "run", NAME, *OPTIONS],
                          env=think_server.env, encoding="utf-8", timeout=120, dimensions=(40, 200),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def ask(child: pexpect.spawn, text: str) -> str:
    child.sendline(text)
    child.expect_exact(PROMPT)
    return child.before.replace("\r\n", "\n")


def test_set_think_in_the_chat_shows_dimmed_thinking(chat, reference):
    help_text = ask(chat, "/?")
    assert "/set think" in help_text and "/set nothink" in help_text

    assert "Set 'think' mode." in ask(chat, "/set think")
    shown = ask(chat, QUESTION)
    # On a terminal the thinking is dimmed, between Ollama's words, before the answer.
    assert f"{DIM}{OPENS}" in shown and f"{DIM}{CLOSES}" in shown, shown
    assert shown.index(OPENS) < shown.index(CLOSES) < shown.index(reference["content"].strip()), shown
    section = ANSI.sub("", shown[shown.index(OPENS) + len(OPENS):shown.index(CLOSES)])
    assert section.strip() == reference["thinking"].strip()

    ask(chat, "/clear")
    assert "Set 'hidethinking' mode." in ask(chat, "/set hidethinking")
    hidden = ask(chat, QUESTION)
    assert OPENS not in hidden and reference["content"].strip() in hidden

    ask(chat, "/clear")
    assert "Set 'nothink' mode." in ask(chat, "/set nothink")
    assert "Set 'nohidethinking' mode." in ask(chat, "/set nohidethinking")
    plain = ask(chat, QUESTION)
    assert OPENS not in plain and plain.strip()
    assert "Set 'think' mode to 'high'." in ask(chat, "/set think high")
    assert "Usage: /set think" in ask(chat, "/set think hard")

    # A model that cannot think says so in one line, and the chat goes on.
    assert "Loading model 'smollm2'" in ask(chat, "/load smollm2")
    assert "Set 'think' mode." in ask(chat, "/set think")
    refused = ask(chat, "Hi")
    assert "does not support thinking" in refused
    chat.sendline("/bye")
    chat.expect(pexpect.EOF)
