"""One partition: state + processor + durable log, with group commit, snapshots and recovery.

Processing is synchronous on the event loop (one writer per partition, like Zeebe's stream
processor). `execute` runs a command, applies its events immediately and appends its records to
the pending batch; callers then `await durable()` before answering, because an answer is sent
only after its records are fsynced. The flusher writes every batch collected during one loop
turn (and during the previous fsync) with one write and one fsync: group commit.

Recovery: load `snapshot.json` (state + last applied position), then apply the log's tail
through the same appliers. Snapshots are written atomically (tmp + fsync + rename). An
unreadable snapshot is not fatal (the log is the source of truth): recovery says which file it
ignored and replays the whole log. Replayed records count towards the next snapshot, and a long
replay is followed by a snapshot before the partition serves, so an engine that crashes more
often than its snapshot interval still recovers in time bounded by that interval.

Atomicity: a command's records (the command, its follow-up commands and all their events, or
its rejection) are all kept or none. A command that fails unexpectedly half-way is rolled
back: its records are dropped from the pending batch before anything is written, the state
is rebuilt from what is durable plus the other commands' pending records, and the command is
answered with Zeebe's PROCESSING_ERROR rejection. Positions therefore stay dense whatever
fails.
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

import orjson

from engine.log import LogCorruption, LogReader, LogWriter, partition_dir
from engine.metrics import PartitionCounters
from engine.processing import catalog
from engine.processing.command import Command, Rejection
from engine.processing.context import FollowUpLimitExceeded, ProcessingContext
from engine.processing.registry import processor_for
from engine.processing.state import PartitionState
from engine.records import (
    COMMAND,
    COMMAND_REJECTION,
    EXCEEDED_BATCH_RECORD_SIZE,
    INVALID_ARGUMENT,
    PROCESSING_ERROR,
    make_record,
)

log = logging.getLogger("engine.partition")

SNAPSHOT_EVERY_RECORDS = 50_000
SNAPSHOT_EVERY_SECONDS = 60.0
# A recovery that replayed at least this many records (or for this long) snapshots before it
# serves: otherwise an engine killed more often than the interval above replays ever more.
SNAPSHOT_AFTER_REPLAY_RECORDS = 10_000
SNAPSHOT_AFTER_REPLAY_SECONDS = 1.0


def encode_record(record: dict[str, Any]) -> bytes:
    """A record's compact JSON for the log. orjson (encoding is a large share of a command's
    CPU, more so since follow-up commands are logged); the standard library for what orjson
    refuses (integers beyond 64 bits in variables). A lone surrogate fails in both (the
    command is refused, nothing written). NaN cannot get here: documents are checked first."""
    try:
        # Copied to its own exact size: orjson's result keeps the capacity of its working buffer
        # (about 4 KiB per record here, measured with tracemalloc and RSS), and the records of
        # one command stay pending until its batch is written.
        return bytes(memoryview(orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)))
    except orjson.JSONEncodeError:
        return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode()


def now_ms() -> int:
    return int(time.time() * 1000)


class PartitionUnavailable(Exception):
    """The partition's log can no longer be written: nothing more is acknowledged."""

    def __init__(self, partition_id: int, cause: BaseException):
        super().__init__(f"partition {partition_id} is unavailable: writing its log failed ({cause})")
        self.partition_id = partition_id


#: Every processor, behaviour and trigger kind registers itself on import (engine/processing).
PROCESSING_MODULES = catalog.__name__

Handler = Callable[[ProcessingContext, Command], Any]


class Partition:
    def __init__(self, data_dir: str | Path, partition_id: int):
        self.partition_id = partition_id
        self.data_dir = Path(data_dir)
        self.directory = partition_dir(data_dir, partition_id)
        self.now: Callable[[], int] = now_ms
        self.ctx = ProcessingContext(
            partition_id, PartitionState(partition_id), self.emit, lambda: self.now()
        )
        self._pending: list[bytes] = []
        self._pending_waiters: list[asyncio.Future[None]] = []
        self._inflight_waiters: list[asyncio.Future[None]] = []
        self._flushing = False
        self._wake: asyncio.Event | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fsync-{partition_id}")
        self.ctx.write_command = self._write_follow_up
        self._next_position = 1
        self._records_since_snapshot = 0
        self._last_snapshot_time = time.monotonic()
        self._events_emitted = 0
        self.writer: LogWriter | None = None
        self.closed = False
        self.failure: BaseException | None = None
        self.metrics = PartitionCounters()  # read by engine/metrics.py (--metrics-port)
        # Told the log position fsynced after each group commit (the exporters export no further:
        # engine/exporters/process.py).
        self.on_durable: Callable[[int], None] | None = None

    @property
    def state(self) -> PartitionState:
        return self.ctx.state

    @state.setter
    def state(self, state: PartitionState) -> None:
        self.ctx.state = state

    # ------------------------------------------------------------------ lifecycle
    def _load_snapshot(self) -> PartitionState | None:
        """The state of `snapshot.json`, or None (no file, or unreadable: then say which)."""
        path = self.directory / "snapshot.json"
        if not path.exists():
            return None
        state = PartitionState(self.partition_id)
        state.on_jobs_available = self.state.on_jobs_available
        try:
            state.load_snapshot(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError, OSError) as exc:
            log.warning(
                "partition %d: snapshot %s is unreadable (%s: %s); replaying the whole log instead",
                self.partition_id,
                path,
                type(exc).__name__,
                exc,
            )
            return None
        return state

    def _snapshot_age(self) -> float:
        """Seconds since snapshot.json was written (as if very old when there is none)."""
        try:
            modified = (self.directory / "snapshot.json").stat().st_mtime
        except OSError:
            return SNAPSHOT_EVERY_SECONDS
        return min(max(0.0, time.time() - modified), SNAPSHOT_EVERY_SECONDS)

    def _state_from_disk(self, log_end: int) -> tuple[PartitionState, int]:
        """(state, records replayed): the snapshot, if usable, plus the log up to `log_end`."""
        assert self.writer is not None
        state = self._load_snapshot()
        if state is not None and state.last_position > log_end:
            log.warning(
                "partition %d: snapshot %s covers position %d, beyond the log's end %d; ignoring it",
                self.partition_id,
                self.directory / "snapshot.json",
                state.last_position,
                log_end,
            )
            state = None
        if state is None:
            state = PartitionState(self.partition_id)
            state.on_jobs_available = self.state.on_jobs_available
        replayed = 0
        for record in LogReader(self.data_dir, self.partition_id).iter_records(state.last_position + 1):
            if record["position"] > log_end:
                break
            state.apply(record)
            replayed += 1
        if state.last_position != log_end:
            segment = self.writer.directory
            raise LogCorruption(
                segment,
                0,
                f"recovery reached position {state.last_position}, but the log's last complete record is "
                f"{log_end} (a gap in the positions)",
            )
        return state, replayed

    def recover(self) -> None:
        self.writer = LogWriter(self.data_dir, self.partition_id)
        started = time.monotonic()
        log_end = self.writer.next_position - 1
        self.state, replayed = self._state_from_disk(log_end)
        took = time.monotonic() - started
        from_position = self.state.last_position - replayed + 1
        self._next_position = self.writer.next_position
        # Replayed records and the snapshot's age count towards the next snapshot (issue 21):
        # a crash loop must not grow the replay without bound.
        self._records_since_snapshot = replayed
        self._last_snapshot_time = time.monotonic() - self._snapshot_age()
        snapshotted = ""
        if replayed >= SNAPSHOT_AFTER_REPLAY_RECORDS or (replayed and took >= SNAPSHOT_AFTER_REPLAY_SECONDS):
            self.writer.sync()  # the snapshot must never cover records the log could still lose
            self._write_snapshot(json.dumps(self.state.to_snapshot(), separators=(",", ":")))
            self._records_since_snapshot = 0
            self._last_snapshot_time = time.monotonic()
            snapshotted = ", snapshot written"
        log.info(
            "partition %d recovered: snapshot up to %d, %d records replayed in %.2f s, next position %d%s",
            self.partition_id,
            from_position - 1,
            replayed,
            took,
            self._next_position,
            snapshotted,
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
        # Encode before taking the position: a record that cannot be encoded takes none.
        record["position"] = self._next_position
        try:
            payload = encode_record(record)
        except BaseException:
            record["position"] = -1
            raise
        self._pending.append(payload)
        self._next_position += 1
        return record

    def emit(self, value_type: str, intent: str, key: int, value: dict[str, Any]) -> dict[str, Any]:
        record = make_record(
            partition_id=self.partition_id,
            key=key,
            value_type=value_type,
            intent=intent,
            value=value,
            timestamp=self.now(),
            source_record_position=self.ctx.source_position,
        )
        self._append(record)
        self._events_emitted += 1
        self.state.apply(record)
        return record

    def _write_follow_up(self, value_type: str, intent: str, key: int, value: dict[str, Any]) -> int:
        """Log a follow-up command (ACTIVATE_ELEMENT, COMPLETE_ELEMENT...) as Zeebe does, inside
        the current command's batch; returns its position (the source of its events)."""
        record = make_record(
            partition_id=self.partition_id,
            key=key,
            value_type=value_type,
            intent=intent,
            value=value,
            timestamp=self.now(),
            record_type=COMMAND,
            source_record_position=self.ctx.source_position,
        )
        self._append(record)
        self.state.apply(record)
        return record["position"]

    def _rejection_record(
        self,
        value_type: str,
        intent: str,
        key: int,
        command_value: dict[str, Any],
        command_position: int,
        rejection_type: str,
        reason: str,
    ) -> dict[str, Any]:
        return make_record(
            partition_id=self.partition_id,
            key=key,
            value_type=value_type,
            intent=intent,
            value=command_value,
            timestamp=self.now(),
            record_type=COMMAND_REJECTION,
            source_record_position=command_position,
            rejection_type=rejection_type,
            rejection_reason=reason,
        )

    def _roll_back(self, mark: int, position: int, events_before: int, state_marks: tuple[int, int]) -> None:
        """Drop every record appended since `mark` and undo what they did to the state."""
        del self._pending[mark:]
        self._next_position = position
        if self._events_emitted == events_before:
            # Only a command record (no events): it moved nothing but these two counters.
            self.state.last_position, self.state.next_local_key = state_marks
            return
        self._events_emitted = events_before
        self._rebuild_state()

    def _rebuild_state(self) -> None:
        """State = durable snapshot + log (the batch being fsynced is already in the file) +
        the records still pending. Costs one replay since the last snapshot: only taken when
        a command failed after its events had changed the state (an engine defect)."""
        assert self.writer is not None
        started = time.monotonic()
        state, _ = self._state_from_disk(self.writer.next_position - 1)
        for payload in self._pending:
            state.apply(json.loads(payload))
        self.state = state
        log.warning(
            "partition %d: state rebuilt after a failed command in %.3f s",
            self.partition_id,
            time.monotonic() - started,
        )

    def execute(self, command: Command, handler: Handler | None = None) -> Any:
        """Process one command: log it, run its processor (events), drain follow-ups (each logged
        as a follow-up COMMAND record when queued, its events pointing at it).

        The processor is the one registered for the command's value type and intent
        (engine/processing/registry.py); `handler` replaces it (tests inject failures so).

        All or nothing: a `Rejection` keeps only the command and its COMMAND_REJECTION and is
        re-raised for the gateway; any other failure keeps no event of the command (the state
        is rolled back), logs the command with a PROCESSING_ERROR rejection and raises that.
        """
        if self.failure is not None:
            raise PartitionUnavailable(self.partition_id, self.failure)
        value_type, intent, key = command.value_type, command.intent, command.key
        command_value = command.value
        if handler is None:
            handler = processor_for(value_type, intent)
            if handler is None:
                raise Rejection(intent, PROCESSING_ERROR, f"no processor for {value_type} {intent}")
        mark, position_mark, events_before = len(self._pending), self._next_position, self._events_emitted
        state_marks = (self.state.last_position, self.state.next_local_key)
        command_record: dict[str, Any] | None = None
        command_position = -1
        if command.logged:
            command_record = make_record(
                partition_id=self.partition_id,
                key=key,
                value_type=value_type,
                intent=intent,
                value=command_value,
                timestamp=self.now(),
                record_type=COMMAND,
            )
            try:
                self._append(command_record)
            except (ValueError, RecursionError) as exc:
                # The gateway validates documents first; this is the last line of defence.
                raise Rejection(intent, INVALID_ARGUMENT, f"the command cannot be encoded: {exc}") from None
            self.state.apply(command_record)
            command_position = command_record["position"]
        kept = len(self._pending)
        kept_marks = (self.state.last_position, state_marks[1])
        self.ctx.source_position = command_position
        try:
            try:
                result = handler(self.ctx, command)
                self.ctx.drain()
            except FollowUpLimitExceeded as exceeded:
                # Zeebe's rejection type for a command whose batch outgrows what it may write.
                raise Rejection(
                    intent, EXCEEDED_BATCH_RECORD_SIZE, exceeded.reason(value_type, intent)
                ) from None
        except Rejection as rejection:
            self.ctx.discard_follow_ups()
            if len(self._pending) > kept or self._events_emitted != events_before:
                self._roll_back(kept, position_mark + kept - mark, events_before, kept_marks)
            if command_record is not None:
                self._append_rejection(
                    value_type,
                    intent,
                    key,
                    command_value,
                    command_position,
                    rejection.rejection_type,
                    rejection.reason,
                )
            raise
        except Exception as exc:
            self.ctx.discard_follow_ups()
            self._roll_back(mark, position_mark, events_before, state_marks)
            log.exception(
                "partition %d: unexpected error processing %s %s; none of its records were kept",
                self.partition_id,
                value_type,
                intent,
            )
            reason = (
                f"Expected to process {value_type} {intent}, but an unexpected error occurred: "
                f"{type(exc).__name__}: {str(exc)[:500]}"
            )
            if command_record is not None:
                try:  # Zeebe logs the command and a PROCESSING_ERROR rejection of it
                    self._append(command_record)
                    self.state.apply(command_record)
                    self._append_rejection(
                        value_type,
                        intent,
                        key,
                        command_value,
                        command_record["position"],
                        PROCESSING_ERROR,
                        reason,
                    )
                except Exception:
                    self._roll_back(mark, position_mark, events_before, state_marks)
            raise Rejection(intent, PROCESSING_ERROR, reason) from exc
        else:
            callbacks, self.ctx.after_command = self.ctx.after_command, []
            for callback in callbacks:
                callback()
            self.metrics.command_done(value_type, intent, result)
            return result
        finally:
            self.ctx.source_position = -1
            self._schedule_flush()

    def _append_rejection(
        self,
        value_type: str,
        intent: str,
        key: int,
        command_value: dict[str, Any],
        command_position: int,
        rejection_type: str,
        reason: str,
    ) -> None:
        record = self._rejection_record(
            value_type, intent, key, command_value, command_position, rejection_type, reason
        )
        self._append(record)
        self.state.apply(record)
        self.metrics.command_rejected(value_type, rejection_type)

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
            if self.on_durable is not None:
                self.on_durable(self.writer.next_position - 1)
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
