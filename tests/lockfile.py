"""Does requirements.lock pin every package pyproject.toml pins, at the same version?

`make venv` installs requirements.lock alone (exactly what was tested), so a pin added to
pyproject.toml without `make lock` would silently not be installed. Run as a script (`make venv`
does, with a clear message) and as a test (tests/test_lockfile.py).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned(requirements: list[str]) -> dict[str, str]:
    """name -> version for every `name==version` line (extras and markers dropped)."""
    pins = {}
    for line in requirements:
        match = _PIN.match(line)
        if match:
            pins[_normalize(match.group(1))] = match.group(2)
    return pins


def problems(
    pyproject: Path = REPO_ROOT / "pyproject.toml", lock: Path = REPO_ROOT / "requirements.lock"
) -> list[str]:
    if not lock.exists():
        return [f"{lock.name} is missing"]
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    wanted: list[str] = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        wanted.extend(extra)
    unpinned = [spec for spec in wanted if not _PIN.match(spec)]
    locked = pinned(lock.read_text(encoding="utf-8").splitlines())
    found = [f"{spec!r} in pyproject.toml is not pinned with ==" for spec in unpinned]
    for name, version in sorted(pinned(wanted).items()):
        if name not in locked:
            found.append(f"{name}=={version} is not in {lock.name}")
        elif locked[name] != version:
            found.append(f"{name}: pyproject.toml pins {version}, {lock.name} has {locked[name]}")
    return found


if __name__ == "__main__":
    found = problems()
    for problem in found:
        print(f"requirements.lock is stale: {problem}", file=sys.stderr)
    if found:
        print("run `make lock` and commit requirements.lock with pyproject.toml", file=sys.stderr)
    sys.exit(1 if found else 0)
