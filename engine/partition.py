"""One partition: state + processor + durable log, with group commit, snapshots and recovery.

Processing is synchronous on the event loop (one writer per partition, like Zeebe's stream
processor). `execute` runs a command, applies its events immediately and appends its records to
the pending batch; callers then `await durable()` before answering, because an answer is sent
only after its records are fsynced. The flusher writes every batch collected during one loop
turn (and during the previous fsync) with one write and one fsync: group commit.

Recovery: load `snapshot.json` (state + last applied position), then apply the log's tail
through the same appliers. Snapshots are written atomically (tmp + fsync + rename).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.commands import CommandProcessor, Rejection
from engine.log import LogReader, LogWriter, partition_dir
from engine.records import COMMAND, COMMAND_REJECTION, make_record
from engine.state import PartitionState

log = logging.getLogger("engine.partition")

SNAPSHOT_EVERY_RECORDS = 50_000
SNAPSHOT_EVERY_SECONDS = 60.0


def now_ms() -> int:
    return int(time.time() * 1000)


class PartitionUnavailable(Exception):
    """The partition's log can no longer be written: nothing more is acknowledged."""

    def __init__(self, partition_id: int, cause: BaseException):
        super().__init__(f"partition {partition_id} is unavailable: writing its log failed ({cause})")
        self.partition_id = partition_id


class Partition(CommandProcessor):
    def __init__(self, data_dir: str | Path, partition_id: int):
        super().__init__()
        self.partition_id = partition_id
        self.data_dir = Path(data_dir)
        self.directory = partition_dir(data_dir, partition_id)
        self.state = PartitionState(partition_id)
        self.now: Callable[[], int] = now_ms
        self._pending: list[bytes] = []
        self._pending_waiters: list[asyncio.Future[None]] = []
        self._inflight_waiters: list[asyncio.Future[None]] = []
        self._flushing = False
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fsync-{partition_id}")
        self._source_position = -1
        self._next_position = 1
        self._records_since_snapshot = 0
        self._last_snapshot_time = time.monotonic()
        self.writer: LogWriter | None = None
        self.closed = False
        self.failure: BaseException | None = None

    # ------------------------------------------------------------------ lifecycle
    def recover(self) -> None:
        self.writer = LogWriter(self.data_dir, self.partition_id)
        snapshot_path = self.directory / "snapshot.json"
        from_position = 1
        if snapshot_path.exists():
            snapshot = json.loads(snapshot_path.read_text())
            if snapshot["lastPosition"] < self.writer.next_position:
                self.state.load_snapshot(snapshot)
                from_position = snapshot["lastPosition"] + 1
            else:
                log.warning("partition %d: snapshot is ahead of the log, ignoring it", self.partition_id)
        replayed = 0
        for record in LogReader(self.data_dir, self.partition_id).iter_records(from_position):
            self.state.apply(record)
            replayed += 1
        self._next_position = self.writer.next_position
        log.info(
            "partition %d recovered: snapshot up to %d, %d records replayed, next position %d",
            self.partition_id,
            from_position - 1,
            replayed,
            self._next_position,
        )

    def start(self) -> None:
        self._wake = asyncio.Event()
        self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())

    async def close(self) -> None:
        self.closed = True
        if self._flusher is not None:
            with contextlib.suppress(PartitionUnavailable):
                await self.durable()
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        if self.writer is not None and self.failure is None:
            self._write_snapshot_now()
            self.writer.close()
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------------ record emission
    def _append(self, record: dict[str, Any]) -> dict[str, Any]:
        record["position"] = self._next_position
        self._next_position += 1
        self._pending.append(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())
        return record

    def emit(self, value_type: str, intent: str, key: int, value: dict[str, Any]) -> dict[str, Any]:
        record = make_record(
            partition_id=self.partition_id,
            key=key,
            value_type=value_type,
            intent=intent,
            value=value,
            timestamp=self.now(),
            source_record_position=self._source_position,
        )
        self._append(record)
        self.state.apply(record)
        return record

    def execute(
        self,
        value_type: str,
        intent: str,
        command_value: dict[str, Any],
        handler: Callable[..., Any],
        *args: Any,
        key: int = -1,
        log_command: bool = True,
    ) -> Any:
        """Process one command: log it, run the handler (events), drain follow-ups.

        A `Rejection` is logged as COMMAND_REJECTION and re-raised for the gateway.
        """
        if self.failure is not None:
            raise PartitionUnavailable(self.partition_id, self.failure)
        command_position = -1
        if log_command:
            command = make_record(
                partition_id=self.partition_id,
                key=key,
                value_type=value_type,
                intent=intent,
                value=command_value,
                timestamp=self.now(),
                record_type=COMMAND,
            )
            self._append(command)
            command_position = command["position"]
        self._source_position = command_position
        try:
            result = handler(*args)
            self.drain()
            return result
        except Rejection as rejection:
            self.queue.clear()
            self.closing_scopes.clear()
            self._append(
                make_record(
                    partition_id=self.partition_id,
                    key=key,
                    value_type=value_type,
                    intent=intent,
                    value=command_value,
                    timestamp=self.now(),
                    record_type=COMMAND_REJECTION,
                    source_record_position=command_position,
                    rejection_type=rejection.rejection_type,
                    rejection_reason=rejection.reason,
                )
            )
            raise
        except Exception:
            self.queue.clear()
            self.closing_scopes.clear()
            log.exception(
                "partition %d: unexpected error processing %s %s", self.partition_id, value_type, intent
            )
            raise
        finally:
            self._source_position = -1
            self._schedule_flush()

    # ------------------------------------------------------------------ group commit
    def _schedule_flush(self) -> None:
        if self._pending and self._wake is not None:
            self._wake.set()

    async def durable(self) -> None:
        """Wait until every record appended so far is fsynced."""
        if self.failure is not None:
            raise PartitionUnavailable(self.partition_id, self.failure)
        if self._pending:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._pending_waiters.append(future)
            self._schedule_flush()
            await future
        elif self._flushing:
            future = asyncio.get_running_loop().create_future()
            self._inflight_waiters.append(future)
            await future

    async def _flush_loop(self) -> None:
        assert self._wake is not None and self.writer is not None
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One more loop turn: long polls woken by this batch activate their jobs now and
            # share the fsync instead of waiting for the next one.
            await asyncio.sleep(0)
            if not self._pending:
                continue
            payloads, self._pending = self._pending, []
            waiters, self._pending_waiters = self._pending_waiters, []
            self._inflight_waiters = waiters
            self._flushing = True
            snapshot_text = None
            try:
                # State now mirrors exactly the records written below (processing is synchronous).
                self.writer.append_batch(payloads)
                self._records_since_snapshot += len(payloads)
                if (
                    self._records_since_snapshot >= SNAPSHOT_EVERY_RECORDS
                    or time.monotonic() - self._last_snapshot_time >= SNAPSHOT_EVERY_SECONDS
                ):
                    snapshot_text = json.dumps(self.state.to_snapshot(), separators=(",", ":"))
                    self._records_since_snapshot = 0
                    self._last_snapshot_time = time.monotonic()
                await loop.run_in_executor(self._executor, self.writer.sync)
            except Exception as exc:
                # The in-memory state is now ahead of the log: never acknowledge anything again
                # on this partition; a restart recovers from what is durable.
                log.critical(
                    "partition %d: log write failed, partition unavailable: %s", self.partition_id, exc
                )
                self.failure = exc
                self._flushing = False
                error = PartitionUnavailable(self.partition_id, exc)
                for waiter in self._inflight_waiters + self._pending_waiters:
                    if not waiter.done():
                        waiter.set_exception(error)
                self._inflight_waiters, self._pending_waiters, self._pending = [], [], []
                return
            if snapshot_text is not None:
                try:
                    await loop.run_in_executor(self._executor, self._write_snapshot, snapshot_text)
                except OSError:  # a missed snapshot only makes the next recovery longer
                    log.exception("partition %d: snapshot failed", self.partition_id)
            self._flushing = False
            for waiter in self._inflight_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._inflight_waiters = []
            if self._pending:
                self._wake.set()

    def _write_snapshot(self, text: str) -> None:
        path = self.directory / "snapshot.json"
        tmp = self.directory / "snapshot.json.tmp"
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _write_snapshot_now(self) -> None:
        if self._pending:
            return
        self._write_snapshot(json.dumps(self.state.to_snapshot(), separators=(",", ":")))
