"""A model that thinks, for the front-end tests: the default model (smollm2) with a Qwen3-like
chat template whose generation prompt opens ``<think>``, so the runtime reads what the model
writes up to ``</think>`` as its reasoning and the rest as its answer.

The template is ChatML written for these tests from Qwen3's published prompt format:
``enable_thinking`` false closes an empty think block in the prompt (Qwen3's "no thinking"
switch); otherwise the prompt ends with ``<think>\\n``. The default model was never trained to
think, so on its own it never writes ``</think>``; two worked examples in the system turn show it
the shape (reasoning, ``</think>``, then "The answer: ..."), which it follows at temperature 0
for ``QUESTION``.
"""

from __future__ import annotations

import httpx

NAME = "smollm2-think"
QUESTION = "What is 2+2?"
# Greedy and long enough for the reasoning, the closing tag and the answer (about 40 tokens).
GREEDY = {"temperature": 0, "num_predict": 100}

_EXAMPLES = (
    "<|im_start|>user\nWhat is 1+1?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\nThe user asks for 1+1. One plus one is two.\n</think>\n"
    "The answer: 1+1 is 2.<|im_end|>\n"
    "<|im_start|>user\nWhat colour is grass?<|im_end|>\n"
    "<|im_start|>assistant\n<think>\nThe user asks about grass. Grass is green.\n</think>\n"
    "The answer: grass is green.<|im_end|>\n"
)

THINKING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message.role != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant. You think first, then answer.<|im_end|>\n"
    + _EXAMPLES +
    "{% endif %}"
    "<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}"
    "{% endif %}"
)


def create_thinking_model(url: str) -> None:
    """``smollm2-think`` on the server at ``url``, from its smollm2."""
    response = httpx.post(f"{url}/api/create", timeout=120,
                          json={"model": NAME, "from": "smollm2", "template": THINKING_TEMPLATE, "stream": False})
    assert response.status_code == 200, response.text


def reference_reply(url: str, model: str = NAME, **fields) -> dict:
    """The server's own answer to ``QUESTION`` (``/api/chat``, not streamed): what a front end
    must show, field by field."""
    body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], "stream": False,
            "options": GREEDY, **fields}
    response = httpx.post(f"{url}/api/chat", json=body, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()["message"]
