"""Turn the doctor's facts into problems (each with the one thing to do about it) and notes.

A problem makes ``hearth doctor`` exit 1: hearth cannot do its job until it is fixed. A note is
worth knowing but nothing is broken (a GPU the build cannot use, a build that is not hearth's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MIN_FREE_DISK = 2 * 1024**3  # the default model plus room to pull one small model
# Above this share of the CPUs used by other programs, measured speed figures may be low.
BUSY_WHILE_MEASURING = 0.10


@dataclass(frozen=True)
class Finding:
    what: str
    fix: str

    def to_json(self) -> dict[str, str]:
        return asdict(self)


def compiled_in(build: dict[str, Any], feature: str) -> bool:
    return build.get("features", {}).get("CPU", {}).get(feature) == "1"


def crash_fix(build: dict[str, Any], record: dict[str, Any]) -> str:
    """What to do after the engine died by a signal: leave out what is known to crash, then fall
    back to llama.cpp's portable build, then ask for a report."""
    from hearth.engine.build import kept_features, rebuild_command

    if compiled_in(build, "AMX_INT8"):
        return (f"this build has llama.cpp's AMX code, which crashes on some CPUs; rebuild without "
                f"it: {rebuild_command(drop_kept='amx' in kept_features())}")
    if not record.get("portable"):
        return ("rebuild the engine without CPU-specific code (llama.cpp's portable build): "
                f"{rebuild_command(portable_build=True)}")
    return "please report it with the output of `hearth doctor --json`"


def engine_findings(facts: dict[str, Any]) -> tuple[list[Finding], list[Finding]]:
    from hearth.engine.build import rebuild_command

    problems: list[Finding] = []
    notes: list[Finding] = []
    record = facts.get("engine_build", {})
    test = facts.get("self_test", {})
    build = facts.get("engine", {})
    cpu = facts.get("cpu", {})
    if not record.get("installed"):
        problems.append(Finding("the engine (llama-cpp-python) is not installed",
                                f"build and install it: {rebuild_command()}"))
        return problems, notes
    if test.get("signal"):
        problems.append(Finding(f"{test.get('error')} (test model: {test.get('model')})",
                                crash_fix(build, record)))
    elif test and not test.get("ok"):
        problems.append(Finding(test.get("error") or "the test decode failed",
                                "run `hearth doctor --json` and include it in a bug report"))
    if "amx_int8" in cpu.get("flags", []) and compiled_in(build, "AMX_INT8") and not test.get("signal"):
        notes.append(Finding("this CPU has AMX and the engine was built with llama.cpp's AMX code, "
                             "which crashes on some such CPUs", f"rebuild without it: {rebuild_command()}"))
    if not record.get("matches_this_machine") and not test.get("signal"):
        notes.append(Finding("the installed engine is not hearth's build for this machine (plain pip "
                             "builds may include code known to crash)", rebuild_command()))
    gpu_present = facts.get("memory", {}).get("gpu_total")
    if gpu_present and build and not build.get("gpu_offload"):
        notes.append(Finding("a GPU is present but the engine was built for the CPU only",
                             f"CMAKE_ARGS=\"-DGGML_CUDA=on\" {rebuild_command()} (see the README, "
                             "GPU and other backends)"))
    return problems, notes


def home_findings(facts: dict[str, Any]) -> list[Finding]:
    home = facts.get("home", {})
    path = home.get("path")
    problems: list[Finding] = []
    if not home.get("writable"):
        problems.append(Finding(f"HEARTH_HOME ({path}) cannot be written to",
                                f"fix its permissions (chmod u+w {path}) or set HEARTH_HOME to a "
                                "folder you can write"))
    if home.get("models_error"):
        problems.append(Finding(f"the model store cannot be read: {home['models_error']}",
                                "check the files under HEARTH_HOME/models"))
    elif home.get("models") == 0 or (home.get("models") is None and not home.get("exists")):
        problems.append(Finding("no model is installed", "hearth pull smollm2"))
    free = home.get("disk_free")
    if free is not None and free < MIN_FREE_DISK:
        from hearth.units import human_size

        problems.append(Finding(f"only {human_size(free)} free on the disk of HEARTH_HOME",
                                "free some space, or remove unused models (hearth rm NAME; hearth prune)"))
    return problems


def settings_findings(facts: dict[str, Any]) -> list[Finding]:
    cpu = facts.get("cpu", {})
    if cpu.get("threads_error"):
        return [Finding(cpu["threads_error"], "unset HEARTH_NUM_THREAD or give it a whole number")]
    return []


def speed_findings(facts: dict[str, Any]) -> tuple[list[Finding], list[Finding]]:
    """A measurement that crashed the engine is a problem; figures that are missing, stale or
    could not be measured are a note (hearth works, `hearth fit` just predicts no speed)."""
    speed = facts.get("speed")
    if not speed:
        return [], []
    figures = speed.get("figures")
    if figures:
        busy = figures.get("other_load") or 0.0
        if speed.get("measured_now") and busy > BUSY_WHILE_MEASURING:
            return [], [Finding(f"other programs used {busy:.0%} of the CPUs while this machine's speed "
                                "was measured, so the figures (and `hearth fit`'s predictions) may be low",
                                "run `hearth doctor --measure-speed` again when the machine is idle")]
        return [], []
    if speed.get("signal"):
        return [Finding(speed.get("error") or "the engine crashed while measuring speed",
                        crash_fix(facts.get("engine", {}), facts.get("engine_build", {})))], []
    if speed.get("measured_now"):
        return [], [Finding(f"this machine's speed could not be measured: {speed.get('error')}",
                            "run `hearth doctor --measure-speed` again when the machine is idle")]
    why = speed.get("why") or "not measured"
    state = "is not measured" if why == "not measured" else f"figures no longer hold ({why})"
    return [], [Finding(f"this machine's speed {state}, so `hearth fit` predicts no tokens per second",
                        "run `hearth doctor --measure-speed` (about 10 s)")]


def diagnose(facts: dict[str, Any]) -> tuple[list[Finding], list[Finding]]:
    problems, notes = engine_findings(facts)
    if "home" in facts:
        problems += home_findings(facts)
    problems += settings_findings(facts)
    speed_problems, speed_notes = speed_findings(facts)
    return problems + speed_problems, notes + speed_notes
