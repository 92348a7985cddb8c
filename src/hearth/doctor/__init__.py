"""``hearth doctor``: what a user runs when something is wrong, and pastes into a bug report.

``examine`` gathers the facts (``facts.py``), runs the engine self-test in a child process
(``hearth.selftest``), and names each problem with its fix (``diagnosis.py``). The CLI prints
the result; the server's ``/api/hearth/doctor`` returns it to the web app's server page.

It also reports the machine's speed figures (``HEARTH_HOME/machine-speed.json``, what ``hearth
fit`` predicts tokens per second from) and, with ``measure_speed``, measures them again in a
child process (``hearth.selftest.speed_probe``). That takes 5-10 s and wants an idle machine,
so a plain ``hearth doctor`` only says when they are missing or stale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hearth.doctor.diagnosis import Finding, diagnose

__all__ = ["Finding", "examine"]


def examine(*, engine_only: bool = False, self_test_tokens: int = 32,
            measure_speed: bool = False) -> dict[str, Any]:
    """Every fact as JSON-ready data, with ``problems``, ``notes`` and ``ok``. ``engine_only``
    checks just the engine (what setup runs before any model or HEARTH_HOME exists);
    ``measure_speed`` measures and saves the machine's speed figures after the self-test."""
    from hearth.doctor import facts as read
    from hearth.selftest import run_self_test

    report: dict[str, Any] = {"hearth": read.hearth_facts(), "cpu": read.cpu_facts(),
                              "engine_build": read.engine_record()}
    if not engine_only:
        report["memory"] = read.memory_facts()
        report["home"] = read.home_facts()
        report["server"] = read.server_facts()
    if report["engine_build"]["installed"]:
        default_model = (report.get("home") or {}).get("default_model")
        model = Path(default_model) if default_model else None
        test = run_self_test(model, tokens=self_test_tokens,
                             threads=report["cpu"].get("threads") or 1,
                             label="smollm2" if model else None)
        report["engine"] = test.build
        report["self_test"] = test.to_json()
        if measure_speed or not engine_only:
            report["speed"] = read.speed_facts(measure=measure_speed and test.ok,
                                               threads=report["cpu"].get("threads"),
                                               self_test_ok=test.ok)
    problems, notes = diagnose(report)
    report["problems"] = [p.to_json() for p in problems]
    report["notes"] = [n.to_json() for n in notes]
    report["ok"] = not problems
    return report
