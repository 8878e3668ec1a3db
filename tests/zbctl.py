"""zbctl (npm `zbctl@8.4.1`) as a second, independent Zeebe client for tests.

`zbctl_path()` returns `tools/zbctl/package/bin/zbctl-cli.linux`, fetching the package with
`npm pack` on first use (tools/zbctl/ is git-ignored). The statically linked Go binary is
called directly: the package's Node wrapper runs an npm update check that needs the network
(reference §4.1). Call it with `--insecure --address 127.0.0.1:PORT`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from tests.requirements import missing

ZBCTL_VERSION = "8.4.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
TOOLS_DIR = REPO_ROOT / "tools" / "zbctl"
BINARY = TOOLS_DIR / "package" / "bin" / "zbctl-cli.linux"


class ZbctlUnavailable(RuntimeError):
    """npm is missing or the package could not be fetched."""


def require_zbctl() -> Path:
    """`zbctl_path()` for a fixture: if zbctl cannot be had, skip locally and fail in CI."""
    try:
        return zbctl_path()
    except (ZbctlUnavailable, subprocess.SubprocessError, OSError, tarfile.TarError) as error:
        missing(f"zbctl is not available: {error}")


def zbctl_path() -> Path:
    if BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise ZbctlUnavailable("npm is not installed; cannot fetch zbctl")
    TOOLS_DIR.mkdir(parents=True, exist_ok=True)
    # Several test processes may ask at once: one fetches, the others wait on the lock.
    with open(TOOLS_DIR / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not BINARY.exists():
            result = subprocess.run(
                [npm, "pack", f"zbctl@{ZBCTL_VERSION}", "--silent"],
                cwd=TOOLS_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            if result.returncode != 0:
                raise ZbctlUnavailable(f"npm pack zbctl@{ZBCTL_VERSION} failed: {result.stderr.strip()}")
            with tarfile.open(TOOLS_DIR / f"zbctl-{ZBCTL_VERSION}.tgz") as archive:
                archive.extractall(TOOLS_DIR, filter="data")
        BINARY.chmod(BINARY.stat().st_mode | 0o111)
    return BINARY


def run_zbctl(address: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `zbctl --insecure --address ADDRESS ARGS...` and return the finished process."""
    env = dict(os.environ)
    env.pop("ZEEBE_ADDRESS", None)
    return subprocess.run(
        [str(zbctl_path()), *args, "--insecure", "--address", address],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
