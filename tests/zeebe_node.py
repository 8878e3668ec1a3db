"""zeebe-node (npm `zeebe-node@8.3.2`, the Node.js Zeebe client) as a third client for tests.

`zeebe_node_dir()` returns `var/cache/zeebe-node` (git-ignored, like tools/zbctl/), installing
the pinned package there with `npm install` on first use; a script run with that directory as its
working directory (or with NODE_PATH set by `run_node`) can `require("zeebe-node")`.
`require_zeebe_node()` skips locally and fails under CI=true when npm or node is missing.
The package asks for node >= 16.6.1 (its `engines`); /usr/bin/node is checked against that.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

from tests.requirements import missing

ZEEBE_NODE_VERSION = "8.3.2"
NODE_MINIMUM = (16, 6, 1)
REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / "var" / "cache" / "zeebe-node"
PACKAGE_JSON = CACHE_DIR / "node_modules" / "zeebe-node" / "package.json"


class ZeebeNodeUnavailable(RuntimeError):
    """node or npm is missing, too old, or the package could not be installed."""


def require_zeebe_node() -> Path:
    """`zeebe_node_dir()` for a fixture: if it cannot be had, skip locally and fail in CI."""
    try:
        return zeebe_node_dir()
    except (ZeebeNodeUnavailable, subprocess.SubprocessError, OSError, ValueError) as error:
        missing(f"zeebe-node is not available: {error}")


def node_path() -> str:
    node = shutil.which("node")
    if node is None:
        raise ZeebeNodeUnavailable("node is not installed")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=True)
    found = tuple(int(part) for part in version.stdout.strip().lstrip("v").split(".")[:3])
    if found < NODE_MINIMUM:
        raise ZeebeNodeUnavailable(f"node {version.stdout.strip()} is older than zeebe-node needs")
    return node


def installed_version() -> str | None:
    try:
        return str(json.loads(PACKAGE_JSON.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def zeebe_node_dir() -> Path:
    node_path()
    if installed_version() == ZEEBE_NODE_VERSION:
        return CACHE_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise ZeebeNodeUnavailable("npm is not installed; cannot fetch zeebe-node")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    # Several test processes may ask at once: one installs, the others wait on the lock.
    with open(CACHE_DIR / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed_version() != ZEEBE_NODE_VERSION:
            manifest = CACHE_DIR / "package.json"
            if not manifest.exists():
                manifest.write_text('{"private": true}\n')
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--save-exact",
                    f"zeebe-node@{ZEEBE_NODE_VERSION}",
                ],
                cwd=CACHE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0 or installed_version() != ZEEBE_NODE_VERSION:
                raise ZeebeNodeUnavailable(
                    f"npm install zeebe-node@{ZEEBE_NODE_VERSION} failed: {result.stderr.strip()[-2000:]}"
                )
    return CACHE_DIR


def run_node(script: Path, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `node SCRIPT` able to require zeebe-node, with only the given environment (plus PATH,
    NODE_PATH): no ZEEBE_* variable of the caller leaks into the client's configuration."""
    directory = zeebe_node_dir()
    return subprocess.run(
        [node_path(), str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=directory,
        env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(directory / "node_modules"), **env},
    )
