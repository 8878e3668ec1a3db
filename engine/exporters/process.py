"""The engine's side of its exporters: a child process (`python -m engine.exporters`) it starts,
watches and stops.

The child reads the log files and keeps its own position files, so the engine hands it nothing
but the data directory and the `--export` URLs; when it dies it is started again (after a pause
that grows up to `RESTART_MAX_SECONDS`) and resumes from its saved positions. It stops by itself
when the engine is gone (kill -9), see engine/exporters/__main__.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("engine.exporters")

WATCH_SECONDS = 1.0
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


class ExporterProcess:
    def __init__(self, data_dir: str | Path, partitions: int, urls: list[str]):
        self.data_dir = Path(data_dir)
        self.partitions = partitions
        self.urls = list(urls)
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._watcher: asyncio.Task[None] | None = None

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "engine.exporters",
            "--data-dir",
            str(self.data_dir),
            "--partitions",
            str(self.partitions),
            "--parent-pid",
            str(os.getpid()),
            "--log-level",
            logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        ]
        for url in self.urls:
            args += ["--export", url]
        return args

    def _spawn(self) -> None:
        # stderr is the engine's: the exporters' log lines land where the engine's do.
        self.process = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        log.info(
            "exporters started (pid %d): %s", self.process.pid, ", ".join(_safe(url) for url in self.urls)
        )

    def start(self) -> None:
        self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        delay = RESTART_FIRST_SECONDS
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            assert self.process is not None
            code = self.process.poll()
            if code is None:
                delay = RESTART_FIRST_SECONDS
                continue
            log.error("exporters process exited with %s; restarting in %.0f s", code, delay)
            await asyncio.sleep(delay)
            delay = min(RESTART_MAX_SECONDS, delay * 2)
            self.restarts += 1
            self._spawn()

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.get_running_loop().run_in_executor(None, process.wait, STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("exporters process did not stop within %.0f s; killing it", STOP_TIMEOUT_SECONDS)
            process.kill()
            process.wait()


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = rest.split("@", 1)[1]
    return f"{scheme}://{rest.split('?', 1)[0]}"
