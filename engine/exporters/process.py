"""The engine's side of its exporters: a child process (`python -m engine.exporters`) it starts,
watches and stops.

The child reads the log files and keeps its own position files, so the engine hands it the data
directory, the `--export` URLs and, on its stdin, the log positions each partition has fsynced
(`durable`): the child exports nothing beyond them, so no exported record can be lost from the log
by a power failure and its position reused by another record. When it dies it is started again (after a pause
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
    def __init__(
        self, data_dir: str | Path, partitions: int, urls: list[str], *, track_durable: bool = False
    ):
        self.data_dir = Path(data_dir)
        self.partitions = partitions
        self.urls = list(urls)
        self.track_durable = track_durable
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._watcher: asyncio.Task[None] | None = None
        self._durable: dict[int, int] = {}
        self._unsent: set[int] = set()
        self._out = b""
        self._send_scheduled = False

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
        if self.track_durable:
            args.append("--durable-from-stdin")
        return args

    def _spawn(self) -> None:
        # stderr is the engine's: the exporters' log lines land where the engine's do.
        self.process = subprocess.Popen(
            self.argv(),
            stdin=subprocess.PIPE if self.track_durable else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        if self.process.stdin is not None:
            os.set_blocking(self.process.stdin.fileno(), False)  # never stall the engine's loop
        self._out = b""
        self._unsent = set(self._durable)  # a new child learns every position again
        self._send()
        log.info(
            "exporters started (pid %d): %s", self.process.pid, ", ".join(_safe(url) for url in self.urls)
        )

    def start(self) -> None:
        self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    def durable(self, partition_id: int, position: int) -> None:
        """Partition `partition_id`'s log is fsynced up to `position` (called after each fsync)."""
        if position <= self._durable.get(partition_id, 0):
            return
        self._durable[partition_id] = position
        self._unsent.add(partition_id)
        if not self._send_scheduled and self.process is not None:
            # Coalesced: one write per loop turn however many fsyncs completed in it.
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._send_scheduled = False
        process = self.process
        if process is None or process.stdin is None:
            return
        lines = "".join(
            f"{partition_id} {self._durable[partition_id]}\n" for partition_id in sorted(self._unsent)
        )
        self._unsent.clear()
        data = self._out + lines.encode()
        if not data:
            return
        try:
            written = os.write(process.stdin.fileno(), data)
        except BlockingIOError:
            written = 0  # the child is busy: the next send carries it (positions only grow)
        except OSError:
            self._out = b""  # the child is gone; the watcher starts a new one
            return
        self._out = data[written:]

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
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
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
