"""ruff (pyproject.toml: line length 140, pyflakes, pycodestyle, isort, bugbear, pyupgrade) is clean,
and the code is formatted as `ruff format` would write it."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _ruff() -> list[str]:
    """The ruff installed next to this Python (the dev extra); missing ruff fails the test."""
    return [sys.executable, "-m", "ruff"]


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]])
def test_ruff(args):
    result = subprocess.run([*_ruff(), *args], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
