"""tests/requirements.py: a missing outside requirement skips locally and fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

SAMPLE = """
import pytest
from tests.requirements import require, requires

NO_DATA = requires(False, "sample data not present at /nowhere")

@NO_DATA
def test_marked():
    pass

@pytest.fixture
def zbctl():
    require(False, "zbctl is not available: npm is not installed")

def test_fixture(zbctl):
    pass

@NO_DATA
@pytest.mark.parametrize("case", [])
def test_cases_of_an_absent_file(case):
    pass

@requires(True, "present")
def test_present():
    pass
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.requirements"]\n')
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(REPO_ROOT)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # the sample needs no plugin; loading them all is slow
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rfEs",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "-c",
            "/dev/null",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [None])
def test_locally_a_missing_requirement_skips_with_its_reason(tmp_path: Path, ci: str | None) -> None:
    result = _run(tmp_path, ci)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped" in result.stdout
    assert "SKIPPED [2] " in result.stdout and "sample data not present at /nowhere" in result.stdout
    assert "zbctl is not available: npm is not installed" in result.stdout


@pytest.mark.parametrize("ci", ["true"])
def test_in_ci_a_missing_requirement_fails_with_its_reason(tmp_path: Path, ci: str) -> None:
    result = _run(tmp_path, ci)
    assert result.returncode == 1, result.stdout
    assert "1 passed, 3 errors" in result.stdout, result.stdout
    assert "sample data not present at /nowhere (CI=true" in result.stdout
    assert "zbctl is not available: npm is not installed (CI=true" in result.stdout
