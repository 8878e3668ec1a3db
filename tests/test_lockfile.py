"""requirements.lock pins what pyproject.toml pins (see tests/lockfile.py)."""

from __future__ import annotations

from pathlib import Path

from tests.lockfile import problems


def test_lock_matches_pyproject() -> None:
    assert problems() == []


def test_a_stale_lock_is_reported(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "x"\ndependencies = ["Django==5.2.19", "psycopg[binary]==3.3.9", "loose>=1"]\n'
        '[project.optional-dependencies]\ndev = ["new-tool==1.0"]\n'
    )
    lock = tmp_path / "requirements.lock"
    lock.write_text("django==5.2.18\n    # via x\npsycopg==3.3.9 ; python_version >= '3.11'\n")
    assert problems(pyproject, lock) == [
        "'loose>=1' in pyproject.toml is not pinned with ==",
        "django: pyproject.toml pins 5.2.19, requirements.lock has 5.2.18",
        "new-tool==1.0 is not in requirements.lock",
    ]
    assert problems(pyproject, tmp_path / "absent.lock") == ["absent.lock is missing"]
