"""How hearth builds its engine: llama-cpp-python compiled from source, with the code paths known
to crash left out, cached under a tag that names the flags, installed only when it matches.

Why this exists: llama.cpp's native build (``-march=native``) compiles in every instruction set
the compiler sees, AMX included, and its AMX matrix code segfaults on some Sapphire Rapids class
CPUs (llama.cpp issue 20824, PR 26954; Ollama issue 17006). The compiler defines ``__AMX_INT8__``
and friends for such a CPU; undefining them (``-U``) compiles the AMX backend out while the rest
of the native build (AVX-512, VNNI, BF16) stays. pip's own wheel cache keys a built wheel by the
sdist, not by ``CMAKE_ARGS``, so a crashing wheel would be reused silently: hearth therefore
builds with ``--no-cache-dir`` into its own cache folder named by a tag over everything that
changes the binary (version, flags, Python, CPU), and records the tag of what it installed next
to the environment, so a mismatch is rebuilt instead of trusted.

This file uses the standard library only: the Makefile runs it by path before hearth is
installed (``python src/hearth/engine/build.py install``), and ``hearth doctor`` imports it to
name the rebuild command. Settings (environment; when none is given, those the installed build
was made with): ``CMAKE_ARGS`` (your own, e.g. ``-DGGML_CUDA=on``;
hearth's flags are merged in), ``HEARTH_ENGINE_KEEP=amx`` (compile a left-out feature in after
all), ``HEARTH_ENGINE_PORTABLE=1`` (no ``-march=native``: llama.cpp's baseline x86-64 / arm64
build, for a CPU where even the safe native build fails), ``HEARTH_ENGINE_CACHE`` (the cache folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Keep in step with the llama-cpp-python range in pyproject.toml.
ENGINE_VERSION = "0.3.36"
RECORD_NAME = "hearth-engine-build.json"
BUILT_NAME = "built.json"  # beside a cached wheel: how long it took, with which flags

# Features compiled out by default: the name users see, the macros that switch it on in
# llama.cpp's sources, and why it is left out.
LEFT_OUT: dict[str, tuple[tuple[str, ...], str]] = {
    "amx": (("__AMX_INT8__", "__AMX_TILE__", "__AMX_BF16__"),
            "llama.cpp's AMX matrix code segfaults on some Sapphire Rapids class CPUs "
            "(llama.cpp issue 20824)"),
}


# The environment that chooses a build. Given, they are what the build uses; none given, the
# build keeps what the installed one was built with (the record's ``settings``), so a plain
# `make` after `CMAKE_ARGS=-DGGML_CUDA=on ... install` or a portable rebuild does not undo it.
SETTINGS = ("CMAKE_ARGS", "HEARTH_ENGINE_KEEP", "HEARTH_ENGINE_PORTABLE")


def build_settings() -> dict[str, str]:
    given = {name: os.environ[name] for name in SETTINGS if name in os.environ}
    if given:
        return given
    recorded = (read_record() or {}).get("settings")
    return dict(recorded) if isinstance(recorded, dict) else {}


def _setting(name: str) -> str:
    return str(build_settings().get(name, ""))


def kept_features() -> set[str]:
    return {name.strip().lower() for name in _setting("HEARTH_ENGINE_KEEP").split(",") if name.strip()}


def portable() -> bool:
    return _setting("HEARTH_ENGINE_PORTABLE").strip().lower() in {"1", "true", "yes", "on"}


def left_out() -> list[str]:
    keep = kept_features()
    return [name for name in LEFT_OUT if name not in keep]


def cmake_args() -> list[str]:
    """The user's CMAKE_ARGS with hearth's flags merged into CMAKE_C_FLAGS / CMAKE_CXX_FLAGS
    (a second ``-DCMAKE_C_FLAGS`` would replace the user's, so they are joined instead)."""
    undefine = [f"-U{macro}" for name in left_out() for macro in LEFT_OUT[name][0]]
    args: list[str] = []
    flags = {"CMAKE_C_FLAGS": list(undefine), "CMAKE_CXX_FLAGS": list(undefine)}
    for arg in shlex.split(_setting("CMAKE_ARGS")):
        key, _, value = arg[2:].partition("=") if arg.startswith("-D") else ("", "", "")
        key = key.split(":")[0]
        if key in flags:
            flags[key] = shlex.split(value) + flags[key]
        elif not (portable() and key == "GGML_NATIVE"):
            args.append(arg)
    if portable():
        args.append("-DGGML_NATIVE=OFF")
    for key, values in flags.items():
        if values:
            args.append(f"-D{key}={' '.join(values)}")
    return args


def cmake_args_text() -> str:
    return " ".join(shlex.quote(arg) for arg in cmake_args())


def cpu_fingerprint() -> str:
    """What makes a ``-march=native`` binary specific to this CPU: its architecture and
    instruction-set flags (a home folder shared between machines must not share a build)."""
    text = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("flags", "Features")):
                    text += "|" + " ".join(sorted(line.split(":", 1)[1].split()))
                    break
    except OSError:
        text += "|" + platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_tag() -> str:
    parts = {
        "version": ENGINE_VERSION,
        "cmake_args": cmake_args(),
        "python": f"{sys.implementation.cache_tag}-{platform.system()}-{platform.machine()}",
        "cpu": "portable" if portable() else cpu_fingerprint(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def cache_dir() -> Path:
    root = os.environ.get("HEARTH_ENGINE_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                            "hearth", "engine")
    return Path(root)


def record_path(prefix: str | None = None) -> Path:
    """The record of the installed build, beside the environment it was installed into."""
    return Path(prefix or sys.prefix) / RECORD_NAME


def read_record(prefix: str | None = None) -> dict | None:
    try:
        return json.loads(record_path(prefix).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def rebuild_command(*, portable_build: bool = False, drop_kept: bool = False) -> str:
    """The one command that rebuilds (when the installed build does not match) and reinstalls
    the engine into this environment: with the settings it was built with, portable when asked,
    and with nothing kept in when ``drop_kept`` (after a crash in a feature kept on purpose)."""
    settings = build_settings()
    if portable_build:
        settings["HEARTH_ENGINE_PORTABLE"] = "1"
    if drop_kept:
        settings["HEARTH_ENGINE_KEEP"] = ""
    prefix = "".join(f"{name}={shlex.quote(value)} " for name, value in settings.items())
    return f"{prefix}{shlex.quote(sys.executable)} -m hearth.engine.build install"


def installed_fingerprint() -> str | None:
    """A hash of the installed llama-cpp-python's file list with pip's per-file hashes: another
    build installed over hearth's (a plain ``pip install llama-cpp-python``) changes it."""
    from importlib import metadata

    try:
        files = metadata.distribution("llama-cpp-python").read_text("RECORD")
    except metadata.PackageNotFoundError:
        return None
    return hashlib.sha256((files or "").encode()).hexdigest()[:20] if files else None


def record_matches(record: dict | None, installed: str | None = None) -> bool:
    """Whether the installed engine is the one hearth built for this machine and these settings
    (``installed``: its fingerprint, when the caller has read it already)."""
    if not record or record.get("tag") != build_tag():
        return False
    installed = installed or installed_fingerprint()
    return installed is not None and record.get("installed") == installed


def cached_wheel(tag: str) -> Path | None:
    wheels = sorted((cache_dir() / tag).glob("llama_cpp_python-*.whl"))
    return wheels[0] if wheels else None


def build_wheel(tag: str) -> tuple[Path, float]:
    """Compile llama-cpp-python into the cache under ``tag``; the folder appears whole or not at
    all (built in a temporary sibling, then renamed)."""
    target = cache_dir() / tag
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{tag}-", dir=target.parent))
    env = dict(os.environ, CMAKE_ARGS=cmake_args_text())
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    print(f"hearth: compiling llama.cpp (llama-cpp-python {ENGINE_VERSION}) from source; "
          "this takes several minutes", file=sys.stderr)
    print(f"hearth: CMAKE_ARGS={env['CMAKE_ARGS']}", file=sys.stderr)
    started = time.monotonic()
    try:
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
             "--disable-pip-version-check", "--wheel-dir", str(scratch),
             f"llama-cpp-python=={ENGINE_VERSION}"],
            env=env, check=True,
        )
        if not list(scratch.glob("llama_cpp_python-*.whl")):
            raise RuntimeError("pip built no llama-cpp-python wheel")
        seconds = time.monotonic() - started
        (scratch / BUILT_NAME).write_text(json.dumps(
            {"build_seconds": round(seconds, 1), "cmake_args": cmake_args()}, indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    wheel = cached_wheel(tag)
    assert wheel is not None
    return wheel, seconds


def _built_seconds(folder: Path) -> float | None:
    try:
        return json.loads((folder / BUILT_NAME).read_text("utf-8")).get("build_seconds")
    except (OSError, ValueError, AttributeError):
        return None


def install(force: bool = False) -> int:
    tag = build_tag()
    record = read_record()
    if not force and record_matches(record):
        print(f"hearth: engine {ENGINE_VERSION} (build {tag}) is installed", file=sys.stderr)
        return 0
    if installed_fingerprint() is not None:
        print("hearth: the installed llama-cpp-python is not hearth's build for this machine "
              "and these flags; replacing it", file=sys.stderr)
    wheel = None if force else cached_wheel(tag)
    if wheel is None:
        wheel, seconds = build_wheel(tag)
        seconds = round(seconds, 1)
    else:
        print(f"hearth: using the engine built earlier with the same flags: {wheel}", file=sys.stderr)
        seconds = _built_seconds(wheel.parent)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall",
                    "--no-cache-dir", "--disable-pip-version-check", "--quiet", str(wheel)], check=True)
    record_path().write_text(json.dumps({
        "tag": tag,
        "version": ENGINE_VERSION,
        "settings": build_settings(),
        "cmake_args": cmake_args(),
        "left_out": left_out(),
        "portable": portable(),
        "wheel": str(wheel),
        "installed": installed_fingerprint(),
        "build_seconds": seconds,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n", "utf-8")
    print(f"hearth: engine installed (build {tag})", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hearth.engine.build",
        description="Build llama-cpp-python from source without the code paths known to crash, "
        "cache it under a tag of its flags, and install it into this Python environment.")
    commands = parser.add_subparsers(dest="command", required=True)
    install_parser = commands.add_parser("install", help="build (or reuse the cached build) and install")
    install_parser.add_argument("--force", action="store_true", help="compile again even if cached")
    commands.add_parser("cmake-args", help="print the CMAKE_ARGS hearth builds with")
    commands.add_parser("tag", help="print the build tag for this machine and these settings")
    args = parser.parse_args(argv)
    if args.command == "install":
        try:
            return install(force=args.force)
        except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
            print(f"hearth: building the engine failed: {exc}", file=sys.stderr)
            return 1
    print(cmake_args_text() if args.command == "cmake-args" else build_tag())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
