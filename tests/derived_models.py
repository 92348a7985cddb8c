"""Models made on a running test server from the default model with another chat template
(``POST /api/create`` with ``from``), so the real model runs behind a family's prompt format:
``smollm2-tools`` takes tools in the Hermes ``<tool_call>`` format."""

from __future__ import annotations

import httpx

from tests.family_templates import HERMES_TOOLS

TOOLS_MODEL = "smollm2-tools"


def create_derived(url: str, name: str, template: str, base: str = "smollm2",
                   headers: dict[str, str] | None = None) -> str:
    reply = httpx.post(url + "/api/create", json={"model": name, "from": base, "template": template,
                                                  "stream": False}, timeout=120, headers=headers)
    reply.raise_for_status()
    return name


def create_tools_model(url: str, headers: dict[str, str] | None = None) -> str:
    return create_derived(url, TOOLS_MODEL, HERMES_TOOLS, headers=headers)
