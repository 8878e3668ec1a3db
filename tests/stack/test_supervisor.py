"""console/stack.py with real child processes: a crashed child is restarted and the restart said; one
that crashes in a loop stops the stack with its last log lines; stop() ends every child, including one
that ignores SIGTERM, and whatever it started in its session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from console.stack import CRASH_LOOP_COUNT, ChildSpec, Stack, StackError
from tests.stack.helpers import REPO, alive
from tests.support import wait_for


def spec(name: str, code: str) -> ChildSpec:
    return ChildSpec(name=name, argv=[sys.executable, "-c", code], env=dict(os.environ))


def test_a_crashed_child_is_restarted_and_the_restart_is_said(tmp_path: Path) -> None:
    said: list[str] = []
    stack = Stack(log_dir=tmp_path, say=said.append)
    marker = tmp_path / "ran-once"
    # First run: exit 3 after writing the marker; the restarted one finds it and keeps running.
    child = stack.start(
        spec(
            "flaky",
            f"import pathlib, sys, time\nm = pathlib.Path({str(marker)!r})\n"
            "if not m.exists():\n    m.write_text('x'); print('dying now', flush=True); sys.exit(3)\n"
            "print('second life', flush=True); time.sleep(60)",
        )
    )
    first_pid = child.pid
    try:
        wait_for(
            what="the first run to exit",
            probe=lambda: child.process and child.process.poll() is not None,
            timeout=20,
        )
        stack.check_children()
        assert child.pid != first_pid
        assert child.restarts == 1
        assert any("flaky" in line and "exited with code 3" in line and "dying now" in line for line in said)
        wait_for(
            what="the second run to log",
            probe=lambda: "second life" in child.log_path.read_text(),
            timeout=20,
        )
    finally:
        stack.stop()
    assert child.process is not None and child.process.returncode is not None


def test_a_crash_loop_stops_with_the_last_log_lines(tmp_path: Path) -> None:
    stack = Stack(log_dir=tmp_path, say=lambda message: None)
    stack.start(
        spec("broken", "print('cannot open database: no such table', flush=True); raise SystemExit(2)")
    )
    deadline = time.monotonic() + 60
    with pytest.raises(StackError) as raised:
        while time.monotonic() < deadline:
            stack.check_children()
            time.sleep(0.05)
    stack.stop()
    message = str(raised.value)
    assert f"broken crashed {CRASH_LOOP_COUNT} times" in message
    assert "cannot open database: no such table" in message


def test_stop_ends_every_child_even_one_ignoring_sigterm(tmp_path: Path) -> None:
    stack = Stack(log_dir=tmp_path, say=lambda message: None)
    polite = stack.start(spec("polite", "import time; time.sleep(60)"))
    stubborn = stack.start(
        spec(
            "stubborn",
            "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "print('ready', flush=True); time.sleep(60)",
        )
    )
    wait_for(
        what="the stubborn child to start its own child",
        probe=lambda: "ready" in stubborn.log_path.read_text(),
        timeout=20,
    )
    grandchildren = [
        int(pid) for pid in Path(f"/proc/{stubborn.pid}/task/{stubborn.pid}/children").read_text().split()
    ]
    assert grandchildren
    stack.stop(timeout=2)
    for child in (polite, stubborn):
        assert child.pid is not None and not alive(child.pid)
    wait_for(
        what="the grandchild to be gone",
        probe=lambda: not any(alive(pid) for pid in grandchildren),
        timeout=10,
    )


def test_children_die_with_a_supervisor_killed_by_sigkill(tmp_path: Path) -> None:
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from console.stack import ChildSpec, Stack\n"
        f"stack = Stack(log_dir=Path({str(tmp_path)!r}), say=print)\n"
        "child = stack.start(ChildSpec(name='sleeper', argv=[sys.executable, '-c', 'import time; time.sleep(120)'],"
        " env=dict(os.environ)))\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert supervisor.stdout is not None
        child_pid = int(supervisor.stdout.readline())
        assert alive(child_pid)
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=10)
        wait_for(what="the orphaned child to be gone", probe=lambda: not alive(child_pid), timeout=20)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
