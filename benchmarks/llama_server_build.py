"""Build llama.cpp's own ``llama-server`` from the llama.cpp source that the installed
llama-cpp-python was made from, with the flags hearth's engine build uses.

The peer benchmark (``peers.py``) compares ``hearth serve`` with llama.cpp's server; for the
comparison to say something about hearth, both must run the same llama.cpp compiled the same
way. So the source is the sdist of the *installed* llama-cpp-python version (its
``vendor/llama.cpp``), fetched from PyPI with ``pip download --no-binary :all:`` (never a
prebuilt binary), and the C/C++ flags are ``hearth.engine.build.cmake_args()``: the user's
CMAKE_ARGS with AMX's compiler macros undefined (llama.cpp's AMX path crashes on this class of
CPU; see that module). Like the engine, it is a native (``-march=native``) Release build with
OpenMP, llama.cpp's defaults.

The result is cached under ``.cache/llama-server/<tag>/`` in the repository, where the tag hashes
the version, the CMake arguments and the CPU's instruction-set flags; a finished build (its
``built.json``) is reused. Usage::

    .venv/bin/python benchmarks/llama_server_build.py [--force] [--verbose]

prints the path of the binary on stdout (progress goes to stderr). ``ensure_llama_server()`` is
what the benchmark calls.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path

from hearth.engine import build as engine_build

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "llama-server"
BUILT_NAME = "built.json"

# llama.cpp's own options (vendor/llama.cpp/CMakeLists.txt): the server lives under tools/, which
# is added only with LLAMA_BUILD_COMMON and LLAMA_BUILD_TOOLS; LLAMA_BUILD_SERVER adds
# tools/server (and tools/ui, tools/cli). LLAMA_CURL is deprecated in this llama.cpp (a warning;
# downloads go through cpp-httplib now) but harmless; OpenSSL (HTTPS model downloads) and the
# prebuilt web UI (downloaded from a Hugging Face bucket at build time) are not needed on
# loopback, and this machine has no internet, so both are off. Tests and examples are not built.
SERVER_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_COMMON=ON",
    "-DLLAMA_BUILD_TOOLS=ON",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def log(message: str) -> None:
    print(f"llama-server build: {message}", file=sys.stderr, flush=True)


def installed_version() -> str:
    return metadata.version("llama-cpp-python")


def configure_args() -> list[str]:
    """hearth's engine flags (AMX macros undefined, the user's CMAKE_ARGS merged in) followed by
    the options that make llama.cpp build its server."""
    return [*engine_build.cmake_args(), *SERVER_OPTIONS]


def build_tag(version: str | None = None) -> str:
    parts = {
        "version": version or installed_version(),
        "cmake_args": configure_args(),
        "cpu": "portable" if engine_build.portable() else engine_build.cpu_fingerprint(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def tag_dir(version: str | None = None) -> Path:
    return CACHE / build_tag(version)


def binary_path(folder: Path) -> Path:
    return folder / "build" / "bin" / "llama-server"


def cached_llama_server(version: str | None = None) -> Path | None:
    folder = tag_dir(version)
    binary = binary_path(folder)
    if (folder / BUILT_NAME).is_file() and binary.is_file() and os.access(binary, os.X_OK):
        return binary
    return None


def download_sdist(version: str) -> Path:
    """The llama-cpp-python sdist of ``version`` from PyPI (source only), kept in the cache."""
    folder = CACHE / "sdist"
    folder.mkdir(parents=True, exist_ok=True)
    found = sorted(folder.glob(f"llama_cpp_python-{version}.tar.gz"))
    if found:
        log(f"using the sdist downloaded earlier: {found[0]}")
        return found[0]
    log(f"downloading the llama-cpp-python {version} sdist from PyPI (source only)")
    # --no-build-isolation is not used: pip prepares an sdist's metadata in an isolated
    # environment, which only installs the build backend, not llama.cpp.
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "--quiet", "-d", str(folder),
         f"llama-cpp-python=={version}"],
        check=True,
    )
    found = sorted(folder.glob(f"llama_cpp_python-{version}.tar.gz"))
    if not found:
        raise RuntimeError(f"pip download left no llama_cpp_python-{version}.tar.gz in {folder}")
    return found[0]


def unpack(sdist: Path, folder: Path, version: str) -> Path:
    """Unpack the sdist into ``folder/src`` (once) and return its llama.cpp source tree."""
    source = folder / "src" / f"llama_cpp_python-{version}"
    llama_cpp = source / "vendor" / "llama.cpp"
    if (llama_cpp / "CMakeLists.txt").is_file():
        return llama_cpp
    scratch = folder / "src.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    log(f"unpacking {sdist.name}")
    with tarfile.open(sdist) as archive:
        archive.extractall(scratch, filter="data")
    shutil.rmtree(folder / "src", ignore_errors=True)
    os.replace(scratch, folder / "src")
    if not (llama_cpp / "CMakeLists.txt").is_file():
        raise RuntimeError(f"the sdist has no vendor/llama.cpp/CMakeLists.txt under {source}")
    return llama_cpp


def _run_logged(command: list[str], log_file: Path, *, verbose: bool) -> None:
    """Run a build step, its output appended to ``log_file``; progress lines ("[ 42%] ...")
    are echoed about every 10 %, everything when ``verbose``, the tail on failure."""
    log("$ " + shlex.join(command))
    tail: list[str] = []
    shown = -10
    with log_file.open("a", encoding="utf-8") as out:
        out.write("$ " + shlex.join(command) + "\n")
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, errors="replace")
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            tail = (tail + [line.rstrip()])[-40:]
            if verbose:
                print(line.rstrip(), file=sys.stderr)
                continue
            text = line.strip()
            if text.startswith("[") and "%]" in text[:8]:
                try:
                    percent = int(text[1:text.index("%")])
                except ValueError:
                    continue
                if percent >= shown + 10:
                    shown = percent
                    log(text[:110])
        code = process.wait()
    if code != 0:
        print("\n".join(tail), file=sys.stderr)
        raise subprocess.CalledProcessError(code, command)


def build_llama_server(version: str, *, verbose: bool = False) -> Path:
    folder = tag_dir(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BUILT_NAME).unlink(missing_ok=True)
    llama_cpp = unpack(download_sdist(version), folder, version)
    build = folder / "build"
    log_file = folder / "build.log"
    jobs = str(os.cpu_count() or 2)
    args = configure_args()
    log(f"llama-cpp-python {version}, tag {folder.name}, {jobs} jobs; log: {log_file}")
    log("flags: " + shlex.join(args))
    started = time.monotonic()
    _run_logged(["cmake", "-S", str(llama_cpp), "-B", str(build), *args], log_file, verbose=verbose)
    _run_logged(["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs],
                log_file, verbose=verbose)
    binary = binary_path(folder)
    if not binary.is_file():
        raise RuntimeError(f"the build finished but {binary} is missing")
    seconds = round(time.monotonic() - started, 1)
    (folder / BUILT_NAME).write_text(json.dumps({
        "version": version,
        "cmake_args": args,
        "binary": str(binary),
        "build_seconds": seconds,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n", "utf-8")
    log(f"built {binary} in {seconds:.0f} s")
    return binary


def ensure_llama_server(*, force: bool = False, verbose: bool = False) -> Path:
    """The path of a ``llama-server`` built from the installed llama-cpp-python's llama.cpp with
    hearth's engine flags: the cached one when present, otherwise built now (minutes)."""
    version = installed_version()
    if not force:
        cached = cached_llama_server(version)
        if cached is not None:
            log(f"using the build cached earlier: {cached}")
            return cached
    return build_llama_server(version, verbose=verbose)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="build again even if cached")
    parser.add_argument("--verbose", action="store_true", help="show all of CMake's output")
    args = parser.parse_args(argv)
    try:
        print(ensure_llama_server(force=args.force, verbose=args.verbose))
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        log(f"failed: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
