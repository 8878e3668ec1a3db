"""A child of `run_stack` that keeps dying is a crash loop: the whole stack stops, says which child and
shows its last log lines, exits with code 1 and leaves no child behind.

The stack here also runs without REDIS_URL and without a redis-server on PATH: no local Redis, no Celery
worker, and the banner says that operator actions run in-process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from console.stack import CRASH_LOOP_COUNT
from tests.services import free_port
from tests.stack.helpers import StackProcess, alive, python
from tests.support import wait_for

pytestmark = pytest.mark.slow


def test_an_importer_that_keeps_dying_stops_the_stack_with_its_last_lines(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env["DEBUG"] = "1"
    env["PATH"] = str(tmp_path / "empty-path")  # no redis-server to be found
    stack = StackProcess(
        [
            python(),
            "manage.py",
            "run_stack",
            "--clusters",
            "1",
            "--partitions",
            "1",
            "--web-port",
            str(free_port()),
            "--proxy-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "stack"),
        ],
        env=env,
        log_dir=tmp_path,
    )
    try:
        banner = stack.wait_started(timeout=120)
        assert "no REDIS_URL and no redis-server binary: operator actions run in-process" in banner
        children = stack.children()
        assert not any("celery" in command or "redis-server" in command for command in children.values())
        killed: list[int] = []
        for _ in range(CRASH_LOOP_COUNT):
            importer = wait_for(
                what="an importer child",
                probe=lambda: [
                    pid
                    for pid, command in stack.children().items()
                    if "import_records" in command and pid not in killed and alive(pid)
                ],
                timeout=30,
                interval=0.1,
            )[0]
            os.kill(importer, signal.SIGKILL)
            killed.append(importer)
        code = stack.process.wait(timeout=60)
    except BaseException:
        stack.kill_all()
        print(stack.output())
        raise
    output = stack.output()
    assert code == 1, output
    assert f"importer crashed {CRASH_LOOP_COUNT} times" in output
    assert "Last lines of" in output and "importer.log" in output
    assert "restarting in" in output  # the earlier deaths were restarts, said as they happened
    survivors = [pid for pid in [*children, *killed] if alive(pid)]
    assert not survivors, {pid: children.get(pid) for pid in survivors}
