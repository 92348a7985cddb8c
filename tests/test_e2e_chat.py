"""The interactive chat of `hearth run MODEL`, driven through a real pseudo-terminal."""

from __future__ import annotations

import signal
import sys

import pexpect
import pytest

from tests.conftest import hearth_env

pytestmark = pytest.mark.e2e

PROMPT = ">>> "


@pytest.fixture
def chat(smollm2_home):
    # Small prompt chunks (num_batch) so that even these short turns reuse cached ones.
    # A test run started in the background by a shell without job control inherits SIGINT
    # ignored (POSIX), and Python then installs no Ctrl-C handler: give the chat the default
    # disposition a terminal user has.
    child = pexpect.spawn(sys.executable, ["-m", "hearth", "run", "smollm2", "--verbose",
                                           "-o", "temperature=0", "-o", "num_predict=48",
                                           "-o", "num_batch=16"],
                          env=hearth_env(smollm2_home), encoding="utf-8", timeout=60,
                          dimensions=(40, 200),
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    child.expect_exact(PROMPT)
    yield child
    if child.isalive():
        child.terminate(force=True)


def ask(child, text: str) -> str:
    child.sendline(text)
    child.expect_exact(PROMPT)
    return child.before


def timing(output: str, name: str) -> int:
    for line in output.splitlines():
        if line.startswith(name + ":"):
            return int(line.split(":", 1)[1].split()[0])
    return 0


def test_chat_answers_and_keeps_history(chat):
    first = ask(chat, "My name is Ada. Say hello to me.")
    assert len(first.strip().splitlines()) >= 2  # the echoed line plus an answer
    def prompt_size(output: str) -> int:
        return timing(output, "prompt eval count") + timing(output, "prompt cached")

    first_prompt = prompt_size(first)
    second = ask(chat, "What is my name?")
    # The second turn's prompt holds the whole first turn (question and answer)...
    assert prompt_size(second) > first_prompt + 8
    # ...and the part evaluated before is taken from the KV cache, not computed again.
    assert timing(second, "prompt cached") > 0
    ask(chat, "/clear")
    third = ask(chat, "What is my name?")
    assert prompt_size(third) < prompt_size(second)


def test_slash_commands(chat):
    assert "llama" in ask(chat, "/show info")
    assert "Apache" in ask(chat, "/show license")
    assert "<|im_start|>" in ask(chat, "/show template")
    assert "Set parameter 'temperature' to '0.5'" in ask(chat, "/set parameter temperature 0.5")
    assert "temperature" in ask(chat, "/show parameters")
    assert "unknown PARAMETER" in ask(chat, "/set parameter hotness 3")
    assert "Set system message." in ask(chat, "/set system You only speak French.")
    assert "You only speak French." in ask(chat, "/show system")
    assert "Cleared" in ask(chat, "/clear")
    assert "Unknown command" in ask(chat, "/dance")
    assert "/bye" in ask(chat, "/?")
    chat.sendline("/bye")
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0


def test_multiline_input(chat):
    chat.sendline('"""Write the word')
    chat.expect_exact("... ")
    chat.sendline('blue twice."""')
    chat.expect_exact(PROMPT)
    assert chat.before.strip()


def test_ctrl_c_stops_the_answer_and_ctrl_d_leaves(chat):
    chat.sendline("/set parameter num_predict 4000")
    chat.expect_exact(PROMPT)
    chat.sendline("Write a very long story about a dragon, with many chapters.")
    # The terminal echoes the line first: only words after it are the answer streaming.
    chat.expect_exact("many chapters.")
    chat.expect(r"\w+ \w+ \w+")  # the answer has started streaming
    chat.sendintr()
    chat.expect_exact("(stopped)")
    chat.expect_exact(PROMPT)
    # Still in the session: it answers the next message.
    ask(chat, "/set parameter num_predict 16")
    assert ask(chat, "Say yes.").strip()
    chat.sendeof()
    chat.expect(pexpect.EOF)
    chat.close()
    assert chat.exitstatus == 0
