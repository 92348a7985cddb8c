"""`hearth pull URL` against `curl -o FILE URL && sha256sum FILE`, from a loopback server.

One run, side by side: a GGUF file of --size-mb megabytes (a tiny model's header followed by
cheap pseudo-random bytes) is served by the Range-capable file server the tests use
(tests/file_server.py), on a loopback port, from a separate process. Each round then times, as
fresh subprocesses, in alternating order:

- **curl**: `curl -s -o OUT URL` followed by `sha256sum OUT` (a download you can trust needs
  its hash; hearth computes it while writing).
- **hearth**: `hearth pull URL --accept-license` into an empty temporary HEARTH_HOME (the
  whole command: start-up, plan, download, verification, manifest).

and, in this process, hearth's two download strategies (`hub/transfer.py`) on the same URL:
one stream hashed while it arrives, and 4 ranged parts in parallel hashed after.
MB/s is size / wall time (MB = 10^6 bytes). The verdict is best hearth / best curl; the target
is >= 0.85. Options: --size-mb 512, --rounds 2, --json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

SERVER_CODE = """
import sys, time
from pathlib import Path
from tests.file_server import serve_files
with serve_files() as server:
    server.add("/" + Path(sys.argv[1]).name, Path(sys.argv[1]))
    print(server.url, flush=True)
    sys.stdin.read()
"""


def make_model_file(path: Path, size: int) -> str:
    from tests.tinymodel import write_tiny_model

    write_tiny_model(path)
    hasher = hashlib.sha256(path.read_bytes())
    block = os.urandom(8 << 20)
    with open(path, "ab") as handle:
        written = path.stat().st_size
        counter = 0
        while written < size:
            piece = (counter.to_bytes(8, "little") + block)[: min(len(block), size - written)]
            handle.write(piece)
            hasher.update(piece)
            written += len(piece)
            counter += 1
    return "sha256:" + hasher.hexdigest()


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def run_curl(url: str, scratch: Path, expected: str) -> float:
    out = scratch / "curl.out"
    started = time.perf_counter()
    subprocess.run(["curl", "-s", "-f", "-o", str(out), url], check=True)
    digest = subprocess.run(["sha256sum", str(out)], check=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    assert "sha256:" + digest.stdout.split()[0] == expected, "curl got different bytes"
    out.unlink()
    return elapsed


def run_hearth_pull(url: str, scratch: Path) -> float:
    home = scratch / "hearth-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(HEARTH_HOME=str(home), HEARTH_HOST="127.0.0.1:1", PYTHONPATH=str(ROOT / "src"))
    try:
        return timed([sys.executable, "-m", "hearth", "pull", url, "--accept-license"], env)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def run_strategy(url: str, scratch: Path, expected: str, parallel: bool) -> float:
    from hearth.hub import transfer
    from hearth.store import ModelStore

    home = scratch / "strategy-home"
    saved = transfer.PARALLEL_MIN_BYTES
    transfer.PARALLEL_MIN_BYTES = 1 if parallel else 1 << 62
    try:
        started = time.perf_counter()
        digest, _ = transfer.download_to_blob(ModelStore(home), url, expected_digest=expected,
                                              progress=lambda e: None, status="bench")
        return time.perf_counter() - started
    finally:
        transfer.PARALLEL_MIN_BYTES = saved
        shutil.rmtree(home, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not shutil.which("curl") or not shutil.which("sha256sum"):
        print("curl and sha256sum are needed for this benchmark", file=sys.stderr)
        return 0
    size = args.size_mb * 1_000_000
    scratch = Path(tempfile.mkdtemp(prefix="hearth-pull-bench-"))
    server = None
    try:
        model = scratch / "Bench-Model-Q4_K_M.gguf"
        expected = make_model_file(model, size)
        server = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(model)], cwd=ROOT,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}:{ROOT}"))
        url = server.stdout.readline().strip() + "/" + model.name  # type: ignore[union-attr]
        results: dict[str, list[float]] = {"curl": [], "hearth": [], "one stream": [], "4 parts": []}
        run_curl(url, scratch, expected)  # warm the page cache for the served file
        for round_index in range(args.rounds):
            order = ["curl", "hearth", "one stream", "4 parts"]
            if round_index % 2:
                order.reverse()
            for name in order:
                if name == "curl":
                    seconds = run_curl(url, scratch, expected)
                elif name == "hearth":
                    seconds = run_hearth_pull(url, scratch)
                else:
                    seconds = run_strategy(url, scratch, expected, parallel=name == "4 parts")
                results[name].append(seconds)
        rates = {name: size / 1e6 / min(times) for name, times in results.items()}
        ratio = rates["hearth"] / rates["curl"]
        report = {"size_mb": args.size_mb, "rounds": args.rounds, "cpus": os.cpu_count(),
                  "seconds": results, "mb_per_s": rates, "hearth_over_curl": ratio}
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"{args.size_mb} MB over loopback, best of {args.rounds} rounds, {os.cpu_count()} CPUs")
            for name, rate in rates.items():
                label = {"curl": "curl -o + sha256sum", "hearth": "hearth pull (whole command)",
                         "one stream": "download_to_blob, one stream",
                         "4 parts": "download_to_blob, 4 ranged parts"}[name]
                times = ", ".join(f"{t:.2f}s" for t in results[name])
                print(f"  {label:36s} {rate:8.1f} MB/s   ({times})")
            print(f"hearth pull / curl+sha256sum: {ratio:.2f}x (target >= 0.85)")
    finally:
        if server is not None:
            server.stdin.close()  # type: ignore[union-attr]
            server.wait(10)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
