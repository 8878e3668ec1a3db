"""`python -m engine`: serves, logs to stderr, stops cleanly on SIGTERM, rejects bad arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.engine.conftest import REPO_ROOT, EngineProcess
from tests.engine.helpers import create, deploy, gateway, one_task_process


def test_sigterm_stops_cleanly_and_restart_continues(tmp_path: Path) -> None:
    engine = EngineProcess(tmp_path / "data", partitions=1).start()
    with gateway(engine.address) as stub:
        deploy(stub, "cli.bpmn", one_task_process("cli-flow", "cli-work"))
        first = create(stub, "cli-flow")
    assert engine.stop() == 0
    log = engine.stderr()
    assert "engine serving on 127.0.0.1:" in log and "engine stopped" in log

    again = EngineProcess(tmp_path / "data", partitions=1, port=engine.port).start()
    try:
        with gateway(again.address) as stub:
            second = create(stub, "cli-flow")  # the deployment survived the restart
        assert second > first
    finally:
        again.stop()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine", "--partitions", "0", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0 and "--partitions must be at least 1" in result.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "engine"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert missing.returncode != 0 and "--data-dir" in missing.stderr


def test_event_loop_choice(tmp_path: Path) -> None:
    """`--event-loop asyncio` runs on the standard loop even where uvloop is installed; the
    engine names its loop in the log; an unknown choice is refused."""
    engine = EngineProcess(tmp_path / "data", partitions=1, event_loop="asyncio").start()
    engine.stop()
    assert "event loop: asyncio" in engine.stderr()
    bogus = subprocess.run(
        [sys.executable, "-m", "engine", "--data-dir", str(tmp_path), "--event-loop", "trio"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert bogus.returncode != 0 and "--event-loop" in bogus.stderr
