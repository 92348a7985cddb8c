"""The layer contract (``[tool.importlinter]`` in pyproject.toml) holds for the code, and it
really fails when a module imports a layer above it (imports inside functions included)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(source_root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(source_root))
    return subprocess.run([str(LINT_IMPORTS), str(cwd / "pyproject.toml"), "--no-cache"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_code_keeps_its_layers() -> None:
    result = lint(ROOT / "src", ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def lint_with(tmp_path: Path, module: str, added: str) -> subprocess.CompletedProcess[str]:
    """Lint a scratch copy of the package in which ``module`` (a path below hearth/) ends with
    ``added``."""
    shutil.copytree(ROOT / "src" / "hearth", tmp_path / "src" / "hearth",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "hearth" / module
    target.write_text(target.read_text() + added)
    return lint(tmp_path / "src", tmp_path)


def test_an_import_that_points_up_breaks_the_contract(tmp_path: Path) -> None:
    # Inside a function, where a lazy import would hide it from a casual reader.
    result = lint_with(tmp_path, "gguf/cursor.py",
                       "\n\ndef sneak():\n    from hearth.runtime import Runtime\n    return Runtime\n")
    assert result.returncode != 0
    assert "hearth.gguf.cursor -> hearth.runtime" in result.stdout


def test_only_the_engine_imports_llama_cpp(tmp_path: Path) -> None:
    result = lint_with(tmp_path, "server/metrics.py",
                       "\n\ndef sneak():\n    import llama_cpp\n    return llama_cpp\n")
    assert result.returncode != 0
    assert "hearth.server is not allowed to import llama_cpp" in result.stdout
    assert "hearth.server.metrics -> llama_cpp" in result.stdout


def test_the_cli_goes_through_the_runtime(tmp_path: Path) -> None:
    result = lint_with(tmp_path, "cli/models.py",
                       "\n\ndef sneak():\n    from hearth.store import ModelStore\n    return ModelStore\n")
    assert result.returncode != 0
    assert "hearth.cli is not allowed to import hearth.store" in result.stdout
