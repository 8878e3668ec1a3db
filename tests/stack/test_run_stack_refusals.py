"""`run_stack` refuses what would break a running system, with a message and exit code 1, before
starting anything: a port already in use, a data directory another stack is using, bad numbers."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

from console.stack import lock_data_dir
from tests.services import free_port
from tests.stack.helpers import REPO, python


def run_stack(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env["DEBUG"] = "1"
    return subprocess.run(
        [python(), "manage.py", "run_stack", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        result = run_stack("--web-port", str(taken), "--proxy-port", str(free_port()), data_dir=tmp_path)
    assert result.returncode == 1
    assert f"127.0.0.1:{taken} is already in use; choose another --web-port" in result.stderr
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_a_data_directory_in_use_is_refused(tmp_path: Path) -> None:
    held = lock_data_dir(tmp_path)
    try:
        result = run_stack(
            "--web-port", str(free_port()), "--proxy-port", str(free_port()), data_dir=tmp_path
        )
    finally:
        held.close()
    assert result.returncode == 1
    assert f"another run_stack (pid {os.getpid()}) is using {tmp_path}" in result.stderr
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--clusters", "0"), "--clusters must be within 1..16"),
        (("--partitions", "99"), "--partitions must be within 1..32"),
        (("--web-port", "26500"), "--proxy-port and --web-port must differ"),
        (("--proxy-port", "70000"), "--proxy-port must be within 1..65535"),
    ],
)
def test_bad_numbers_are_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = run_stack(*args, data_dir=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr
