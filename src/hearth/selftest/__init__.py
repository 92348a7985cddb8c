"""The engine self-test: a short decode in a child process, so that a build which crashes on this
CPU is found (and named) before a user meets it. Used by setup and ``hearth doctor``."""

from hearth.selftest.run import SelfTestResult, run_self_test

__all__ = ["SelfTestResult", "run_self_test"]
