"""The web app with a reasoning model, in a real headless chromium against a real `hearth serve`:
the Think toggle sends `think: true`, the model's thinking streams into a collapsible block above
the answer (text only), light and dark themes and the narrow layout.

The browser and the app tab are tests/test_webapp.py's; screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import HearthServer, copy_home
from tests.test_webapp import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LAST_ANSWER,
    ONE_THREAD,
    App,
    send,
    set_parameters,
    wait_for_answer,
    without_provider_keys,
)
from tests.thinking_model import GREEDY, NAME, QUESTION, create_thinking_model, reference_reply

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_app(browser) -> Iterator:
    opened: list[App] = []

    def make(url: str, **options) -> App:
        app = App(browser, url, **options)
        opened.append(app)
        return app

    yield make
    for app in opened:
        app.close()


@pytest.fixture(scope="module")
def think_server(smollm2_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HearthServer]:
    home = copy_home(smollm2_home, tmp_path_factory.mktemp("web-think") / "home")
    running = HearthServer(home, **ONE_THREAD, **without_provider_keys())
    create_thinking_model(running.url)
    yield running
    running.stop()


def chat_requests(page) -> list[dict]:
    """The bodies of the /api/chat requests this page sends, as they leave the browser."""
    sent: list[dict] = []
    page.on("request", lambda request: sent.append(json.loads(request.post_data))
            if request.url.endswith("/api/chat") else None)
    return sent


def choose(page, model: str, *, think: bool) -> None:
    page.wait_for_selector(f"#model-picker option[value='{model}:latest']", state="attached")
    page.select_option("#model-picker", f"{model}:latest")
    set_parameters(page, num_predict=GREEDY["num_predict"], temperature=GREEDY["temperature"])
    page.set_checked("#param-think", think)


THINKING = f"{LAST_ANSWER}.querySelector('details.msg-thinking')"


def test_think_toggle_shows_the_thinking_above_the_answer(think_server, open_app):
    reference = reference_reply(think_server.url, think=True)
    assert reference["thinking"] and reference["thinking"].strip() and reference["content"].strip(), reference
    app = open_app(think_server.url)
    page = app.page
    sent = chat_requests(page)
    choose(page, NAME, think=True)
    send(page, QUESTION)
    wait_for_answer(page)
    assert sent and sent[-1]["think"] is True and sent[-1]["model"] == f"{NAME}:latest"

    shown = page.evaluate(f"""() => {{
        const answer = {LAST_ANSWER};
        const details = {THINKING};
        const body = answer.querySelector('.msg-body');
        return {{
          visible: !!details && !details.hidden, open: details?.open,
          summary: details?.querySelector('summary').textContent,
          text: details?.querySelector('.thinking-text').textContent,
          elementsInText: details?.querySelector('.thinking-text').childElementCount,
          above: !!details && !!(details.compareDocumentPosition(body) & Node.DOCUMENT_POSITION_FOLLOWING),
          answer: body.textContent,
        }};
    }}""")
    assert shown["visible"] and shown["summary"] == "Thinking", shown
    # Folded away once the answer came; the reasoning exactly as the server sent it, as text.
    assert shown["open"] is False and shown["elementsInText"] == 0
    assert shown["text"] == reference["thinking"]
    assert shown["above"], "the thinking block comes before the answer"
    assert shown["answer"].strip() == reference["content"].strip() and "</think>" not in shown["answer"]

    page.locator(".msg.assistant details.msg-thinking summary").last.click()
    assert page.evaluate(f"{THINKING}.open") is True
    app.shot("thinking-light")
    page.emulate_media(color_scheme="dark")
    app.shot("thinking-dark")
    page.set_viewport_size({"width": 390, "height": 800})
    page.click("#toggle-params")  # the parameters fold away, as a narrow-window user would leave them
    page.evaluate(f"{THINKING}.scrollIntoView()")
    assert page.evaluate(f"{THINKING}.getBoundingClientRect().right <= window.innerWidth")
    app.shot("thinking-narrow")

    # The toggle and the reasoning are kept in this browser: after a reload both are there,
    # the block collapsed.
    page.reload()
    page.wait_for_selector(".msg.assistant details.msg-thinking:not([hidden])", state="attached")
    assert page.is_checked("#param-think")
    kept = page.evaluate(f"() => ({{ open: {THINKING}.open, text: {THINKING}.textContent }})")
    assert kept["open"] is False and reference["thinking"].strip() in kept["text"]


def test_think_toggle_off_sends_no_think_and_shows_no_block(think_server, open_app):
    app = open_app(think_server.url)
    page = app.page
    sent = chat_requests(page)
    choose(page, "smollm2", think=False)
    send(page, QUESTION)
    wait_for_answer(page)
    assert sent and "think" not in sent[-1]
    assert page.evaluate(f"{THINKING}.hidden") is True


def test_think_on_a_model_that_cannot_think_shows_the_server_error(think_server, open_app):
    app = open_app(think_server.url)
    page = app.page
    choose(page, "smollm2", think=True)
    send(page, QUESTION)
    page.wait_for_selector(".msg.assistant .msg-error:not([hidden])")
    error = page.inner_text(".msg.assistant .msg-error")
    assert "does not support thinking" in error and "smollm2" in error
    app.shot("thinking-refused")
