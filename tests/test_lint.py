"""CI runs what a developer runs: ``ruff check`` and ``ruff format --check`` on the
whole repository (settings in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    try:
        import ruff  # noqa: F401
    except ImportError:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ruff_check():
    proc = _ruff("check", "--no-cache", ".")
    assert proc.returncode == 0, f"ruff check failed:\n{proc.stdout}{proc.stderr}"


def test_ruff_format():
    proc = _ruff("format", "--check", "--no-cache", ".")
    assert proc.returncode == 0, f"ruff format --check failed:\n{proc.stdout}{proc.stderr}"
