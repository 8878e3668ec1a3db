"""`python -m engine.exporters --data-dir DIR --partitions N --export URL [--export URL ...]
[--parent-pid PID]`: the exporters of one engine, in a process of their own.

`python -m engine --export ...` starts this as its child (engine/exporters/process.py), so that
reading, encoding and sending records runs on another core than command processing (the engine
is one Python thread; in-process exporters took up to half of its throughput in
bench/exporters.py). It reads the same log files and keeps the same position files, so it can
also be run by hand on a stopped engine's data directory to export what it holds.

With `--parent-pid` it stops when that process is gone (the engine was killed with -9): a
restarted engine starts a new one, which resumes from the saved positions.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from typing import BinaryIO

from engine.exporters import ExporterConfigError, ExporterRunner, exporter_for
from engine.log import partition_ids

log = logging.getLogger("engine.exporters")

PARENT_CHECK_SECONDS = 0.5


def _die_with_parent() -> None:
    """Linux: SIGTERM us when the parent dies (PR_SET_PDEATHSIG), at once rather than at the next
    parent check."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass


class DurablePositions:
    """The engine's fsynced log positions, read from our stdin (engine/exporters/process.py writes
    `PARTITION POSITION` lines after its fsyncs). Until a partition's first line, nothing of it is
    exported. End of input means the engine is gone: stop."""

    def __init__(self, stream: BinaryIO, stop: threading.Event):
        self.stream = stream
        self.stop = stop
        self.positions: dict[int, int] = {}
        self._thread = threading.Thread(target=self._read, name="durable-positions", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get(self, partition_id: int) -> int:
        return self.positions.get(partition_id, 0)

    def _read(self) -> None:
        for line in self.stream:
            try:
                partition_id, position = (int(part) for part in line.split())
            except ValueError:
                log.warning("ignoring a malformed durable position line %r", line[:100])
                continue
            if position > self.positions.get(partition_id, 0):
                self.positions[partition_id] = position
        log.info("the engine closed our input: stopping")
        self.stop.set()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.exporters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--partitions", type=int, help="partition count (default: those under --data-dir)")
    parser.add_argument("--export", action="append", required=True, metavar="URL")
    parser.add_argument("--parent-pid", type=int, help="stop when this process is gone")
    parser.add_argument(
        "--durable-from-stdin",
        action="store_true",
        help="export only up to the positions the engine says are fsynced: lines 'PARTITION POSITION' on stdin",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        stream=sys.stderr,
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    partitions = list(range(1, args.partitions + 1)) if args.partitions else partition_ids(args.data_dir)
    if not partitions:
        parser.error(f"no partitions under {args.data_dir}")
    try:
        exporters = [exporter_for(url) for url in args.export]
    except ExporterConfigError as exc:
        parser.error(str(exc))
    _die_with_parent()
    if args.parent_pid is not None and os.getppid() != args.parent_pid:
        return 0  # the engine died before we got here
    stop = threading.Event()
    # The handler only records the signal: it runs in the main thread, which may be inside
    # `stop.wait` holding the event's (non-reentrant) lock, so `stop.set()` there deadlocked the
    # process for good when SIGTERM (the engine's death) came while the input thread stopped it.
    signalled: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda number, _frame: signalled.append(number))
    durable: DurablePositions | None = None
    if args.durable_from_stdin:
        durable = DurablePositions(sys.stdin.buffer, stop)
        durable.start()
    try:
        runners = [
            ExporterRunner(
                exporter,
                args.data_dir,
                partitions,
                durable_position=durable.get if durable is not None else None,
            )
            for exporter in exporters
        ]
    except ValueError as exc:  # an unreadable position file: refuse to guess where to resume
        log.critical("exporters cannot start: %s", exc)
        return 2
    for runner in runners:
        runner.start()
    while not stop.wait(PARENT_CHECK_SECONDS) and not signalled:
        if args.parent_pid is not None and os.getppid() != args.parent_pid:
            log.warning("the engine (pid %d) is gone: stopping its exporters", args.parent_pid)
            break
    for runner in runners:
        runner.stop()
    return 0


if __name__ == "__main__":
    code = main()
    # Leave at once, not through interpreter finalization: the runner threads are daemons that
    # may sit in a socket call, and an exporters process must end with its engine.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
