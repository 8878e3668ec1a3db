"""The broker: all partitions of one embedded cluster and the work that spans them.

- deployment on partition 1 (keys from partition 1), distributed to every other partition;
- round-robin instance creation; key-addressed commands go to `decode_partition(key)`;
- job activation over all partitions, long-poll waiters per job type (reference §1.4),
  woken whenever a job becomes activatable (created, failed with retries, timed out, recurred);
- one timer loop for job deadlines (JOB TIMED_OUT), retry backoffs (RECURRED_AFTER_BACKOFF)
  and due BPMN timers (TIMER TRIGGER; one whose trigger failed while it is still in state is
  tried again with a backoff, as Zeebe's checker finds it in the state again);
- CreateProcessInstanceWithResult waiters;
- messages (reference §2.3, §5.2): PublishMessage on the correlation key's partition, the
  commands the message and instance partitions send each other (delivered on the event loop
  after the sending command, sent again after a restart from what is still pending), TTL
  expiry and the release of message-start locks in the same timer loop;
- signal broadcasts (processing/signal_state.py): written on their origin partition, then
  distributed to every other partition under the origin's key, in key order per partition;
  a failed delivery is retried from the timer loop (with a backoff), and after a restart
  every broadcast a partition misses is distributed again, as Zeebe retries a command
  distribution until it is acknowledged. The origin forgets a broadcast once every
  partition has it durably.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from pathlib import Path
from typing import Any

from engine.bpmn import BpmnValidationError, Problem, zeebe_rejection_reason
from engine.bpmn.errors import DEPLOYMENT_REJECTION_PREFIX
from engine.bpmn.parser import parse_bpmn
from engine.dmn import DmnParseError, parse_dmn
from engine.log import partition_ids
from engine.partition import Partition, PartitionUnavailable, now_ms
from engine.processing import message_state, signal_state
from engine.processing.command import Command, Rejection
from engine.processing.decisions import distribution_plans, distribution_resources, duplicate_id_problems
from engine.processing.elements.multi_instance import body_needs_next_slice
from engine.processing.processors.creation import Created, CreateInstance
from engine.processing.processors.deployment import DeployResources, DistributeDeployment
from engine.processing.processors.jobs import ActivateJobs
from engine.processing.processors.messages import PublishMessage, publish_command_value
from engine.processing.processors.signals import BroadcastSignal
from engine.processing.triggers.messages import message_subscription_value
from engine.processing.triggers.signals import signal_value
from engine.records import INVALID_ARGUMENT, NOT_FOUND, decode_local_key, decode_partition

log = logging.getLogger("engine.broker")

TIMER_INTERVAL_SECONDS = 0.05
#: Due BPMN timers triggered per partition per check: a burst of due timers (many instances
#: waiting for the same date, or after a restart) is spread over several loop turns instead of
#: holding the event loop; the rest fire at the next check.
TIMERS_PER_CHECK = 500
#: Multi-instance bodies given their next slice per partition per check (elements/multi_instance.py).
MI_BODIES_PER_CHECK = 20
#: Expired messages written per partition per check (as TIMERS_PER_CHECK).
MESSAGES_PER_CHECK = 500
#: How often ended message-started instances are looked for (their buffered messages may
#: start the next instance of the same correlation key).
START_LOCK_CHECK_MS = 500
#: A failed signal distribution is tried again from the timer loop after this long, doubled
#: after every failed try up to the maximum (Zeebe retries a command distribution until it is
#: acknowledged, with a backoff).
SIGNAL_RETRY_MS = 1000
SIGNAL_RETRY_MAX_MS = 60_000
#: A due timer whose TIMER TRIGGER was rejected or failed while the timer is still in state is
#: tried again after this long, the wait doubling after every failed try up to the maximum
#: (Zeebe's DueDateTimerChecker finds it in the state again at a later check; the backoff keeps
#: a timer that always fails from spinning). One that no longer exists is dropped.
TIMER_RETRY_MS = 1000
TIMER_RETRY_MAX_MS = 60_000


class TimerRetries:
    """The due timers of one partition whose trigger failed, each with when to try it again
    and the wait that led there. Not state: a restart re-arms every timer from the state."""

    def __init__(self) -> None:
        #: timer key -> (when to try again, the wait before that try), both in ms
        self.pending: dict[int, tuple[int, int]] = {}
        #: min-heap of (when, timer key); entries that no longer match `pending` are stale
        self.heap: list[tuple[int, int]] = []

    def __contains__(self, timer_key: int) -> bool:
        return timer_key in self.pending

    def schedule(self, timer_key: int, now: int) -> int:
        """A try failed: the next one comes after TIMER_RETRY_MS, or after twice the last
        wait (at most TIMER_RETRY_MAX_MS). Returns the wait."""
        last = self.pending.get(timer_key)
        wait = TIMER_RETRY_MS if last is None else min(last[1] * 2, TIMER_RETRY_MAX_MS)
        self.pending[timer_key] = (now + wait, wait)
        heapq.heappush(self.heap, (now + wait, timer_key))
        return wait

    def due(self, now: int, limit: int) -> list[int]:
        """Up to `limit` timers whose wait has passed (they stay pending until their outcome)."""
        due: list[int] = []
        while self.heap and self.heap[0][0] <= now and len(due) < limit:
            when, timer_key = heapq.heappop(self.heap)
            entry = self.pending.get(timer_key)
            if entry is not None and entry[0] == when:
                due.append(timer_key)
        return due

    def drop(self, timer_key: int) -> None:
        self.pending.pop(timer_key, None)


class Broker:
    def __init__(self, data_dir: str | Path, partition_count: int):
        if partition_count < 1:
            raise ValueError("partition count must be at least 1")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        existing = partition_ids(self.data_dir)
        if existing and max(existing) > partition_count:
            # Keys and instances live on their partition forever (reference §2.1): dropping a
            # partition would silently lose them.
            raise ValueError(
                f"data directory {self.data_dir} holds partitions {existing}; cannot start with only "
                f"{partition_count} partition(s)"
            )
        self.partitions: dict[int, Partition] = {
            partition_id: Partition(self.data_dir, partition_id)
            for partition_id in range(1, partition_count + 1)
        }
        self._round_robin = 0
        self._activation_round_robin = 0
        self._job_waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._result_waiters: dict[int, list[asyncio.Future[dict[str, Any]]]] = {}
        self._timer_task: asyncio.Task[None] | None = None
        self._timer_retries: dict[int, TimerRetries] = {
            partition_id: TimerRetries() for partition_id in self.partitions
        }
        for partition in self.partitions.values():
            partition.state.on_jobs_available = self._notify_jobs_available
            partition.ctx.on_process_completed = self._process_completed
            signal_state.connect(partition.ctx, self._signals_broadcasted)
            message_state.connect(partition.ctx, self._send_message_command, partition_count)
        self._last_lock_check = 0
        # Signal distribution: when to try failed deliveries again, and the tasks that
        # distribute or forget broadcasts once records are durable (kept so none is collected).
        self._signal_retry_at: int | None = None
        self._signal_retry_ms = SIGNAL_RETRY_MS
        self._signal_tasks: set[asyncio.Task[None]] = set()

    @property
    def partition_count(self) -> int:
        return len(self.partitions)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        for partition in self.partitions.values():
            partition.recover()
            partition.start()
        await self._redistribute_deployments()
        await self._redistribute_signals()
        self._resend_pending_message_commands()
        self._timer_task = asyncio.get_running_loop().create_task(self._timer_loop())

    async def stop(self) -> None:
        if self._timer_task is not None:
            self._timer_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer_task
        for partition in self.partitions.values():
            await partition.close()

    async def _redistribute_deployments(self) -> None:
        """A crash between partition 1 and a distribution target leaves the target behind;
        distribute again what it misses (Zeebe retries distribution until acknowledged)."""
        first = self.partitions[1]
        for partition in list(self.partitions.values())[1:]:
            for deployment_key, deployment in first.state.deployments.items():
                if deployment_key in partition.state.deployments:
                    continue
                self._distribute(partition, deployment_key, deployment["processesMetadata"], first)
            await partition.durable()

    def _distribute(
        self, partition: Partition, deployment_key: int, metadata: list[dict[str, Any]], source: Partition
    ) -> None:
        processes = [
            dict(source.state.processes[entry["processDefinitionKey"]].value)
            for entry in metadata
            if not entry["duplicate"] or entry["processDefinitionKey"] not in partition.state.processes
        ]
        resources = []
        seen = set()
        for process in processes:
            if process["resourceName"] not in seen:
                seen.add(process["resourceName"])
                resources.append({"resourceName": process["resourceName"], "resource": process["resource"]})
        entry = source.state.deployments.get(deployment_key, {})
        decisions = distribution_plans(source.state.decision_state, entry)
        resources.extend(distribution_resources(decisions))
        deployment = {
            "resources": resources,
            "processesMetadata": metadata,
            "decisionsMetadata": entry.get("decisionsMetadata", []),
            "decisionRequirementsMetadata": entry.get("decisionRequirementsMetadata", []),
            "formMetadata": [],
            "tenantId": "<default>",
            "deploymentKey": deployment_key,
        }
        partition.execute(
            Command(
                "DEPLOYMENT",
                "CREATE",
                {"resources": [], "processesMetadata": metadata},
                key=deployment_key,
                request=DistributeDeployment(deployment_key, deployment, processes, decisions),
            )
        )

    # ------------------------------------------------------------------ routing
    def partition_of(self, key: int) -> Partition | None:
        return self.partitions.get(decode_partition(key)) if key > 0 else None

    def next_partition(self) -> Partition:
        self._round_robin = self._round_robin % self.partition_count + 1
        return self.partitions[self._round_robin]

    # ------------------------------------------------------------------ signals
    def broadcast_signal(self, name: str, variables: dict[str, Any]) -> int:
        """SIGNAL BROADCAST on the deployment partition (its key is the answer), then on every
        other partition with that key (Zeebe distributes the command to all partitions), in
        this call, so that the gateway's wait for durability covers every partition (as
        deployments do)."""
        value = signal_value(name, variables)
        key = int(
            self.partitions[1].execute(
                Command("SIGNAL", "BROADCAST", dict(value), request=BroadcastSignal(name, variables))
            )
        )
        self._distribute_signals(1)
        return key

    def _signals_broadcasted(self, origin_id: int) -> None:
        """A partition wrote broadcasts of its own (a thrown signal, or the one above): once its
        records are durable, distribute them (never nested in the writing command; never a
        broadcast its own partition could still lose, whose key it would hand out again)."""
        self._spawn_signal_distribution(origin_id)

    def _spawn_signal_distribution(self, origin_id: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a broker driven synchronously): nothing to wait for
            undistributed = self.partitions[origin_id].state.signal_state.undistributed
            for key in self._distribute_signals(origin_id):
                undistributed.pop(key, None)
            return
        task = loop.create_task(self._distribute_signals_when_durable(origin_id))
        self._signal_tasks.add(task)  # a task nobody references may be collected mid-way
        task.add_done_callback(self._signal_tasks.discard)

    async def _distribute_signals_when_durable(self, origin_id: int) -> None:
        origin = self.partitions[origin_id]
        if origin.state.signal_state.undistributed:
            with contextlib.suppress(PartitionUnavailable):
                await origin.durable()
                delivered = self._distribute_signals(origin_id)
                await self._forget_distributed_signals(origin_id, delivered)

    def _distribute_signals(self, origin_id: int) -> list[int]:
        """Deliver the origin's undistributed broadcasts to every partition that misses them,
        strictly in key order per partition (what "already has" relies on: signal_state.py);
        a failed delivery holds back that partition's later ones until the timer loop tries
        again. Returns the broadcasts every partition now has."""
        origin = self.partitions[origin_id]
        undistributed = origin.state.signal_state.undistributed
        if not undistributed:
            return []
        complete = True
        for target in self.partitions.values():
            if target is origin:
                continue
            if target.closed or target.failure is not None:
                complete = False  # distributed again when it is back (restart)
                continue
            for key, value in list(undistributed.items()):
                if target.state.signal_state.has_received(origin_id, key):
                    continue
                request = BroadcastSignal(value["signalName"], value["variables"], distributed=True)
                try:
                    target.execute(Command("SIGNAL", "BROADCAST", dict(value), key=key, request=request))
                except Exception:
                    if self._signal_retry_at is None:
                        self._signal_retry_at = now_ms() + self._signal_retry_ms
                    log.exception(
                        "distributing signal %d to partition %d failed; trying again in %d ms",
                        key,
                        target.partition_id,
                        max(0, self._signal_retry_at - now_ms()),
                    )
                    complete = False
                    break
        if complete and self._signal_retry_at is None:
            self._signal_retry_ms = SIGNAL_RETRY_MS
        return [
            key
            for key in undistributed
            if all(
                partition.state.signal_state.has_received(origin_id, key)
                for partition in self.partitions.values()
                if partition is not origin
            )
        ]

    async def _forget_distributed_signals(self, origin_id: int, keys: list[int]) -> None:
        """Drop broadcasts every partition has from the origin's state, once those partitions'
        records are durable: a snapshot of the origin without them is then safe."""
        if not keys:
            return
        origin = self.partitions[origin_id]
        targets = [partition for partition in self.partitions.values() if partition is not origin]
        await asyncio.gather(*(partition.durable() for partition in targets))
        undistributed = origin.state.signal_state.undistributed
        for key in keys:
            undistributed.pop(key, None)

    async def _redistribute_signals(self) -> None:
        """After a restart: every broadcast a partition misses (killed between the origin and
        its distribution, or a failed delivery) is distributed again; none is repeated."""
        for origin_id, origin in self.partitions.items():
            # A partition killed before its log had a broadcast that another partition
            # already got (the gateway distributes before the answer's fsync) must not hand
            # out that key again: the others would take a new broadcast under it for a repeat.
            received = max(
                (p.state.signal_state.received.get(origin_id, 0) for p in self.partitions.values()),
                default=0,
            )
            if received > 0 and decode_local_key(received) >= origin.state.next_local_key:
                log.warning(
                    "partition %d lost broadcast %d that other partitions have; its keys go on after it",
                    origin_id,
                    received,
                )
                origin.state.next_local_key = decode_local_key(received) + 1
        for origin_id in self.partitions:
            with contextlib.suppress(PartitionUnavailable):
                await self._forget_distributed_signals(origin_id, self._distribute_signals(origin_id))

    def _check_signal_distribution(self, now: int) -> None:
        """Timer loop: after a failed delivery, try every partition's undistributed broadcasts
        again once the backoff has passed."""
        if self._signal_retry_at is None or now < self._signal_retry_at:
            return
        self._signal_retry_at = None
        # the wait before the next try, should this one fail too (a success resets it)
        self._signal_retry_ms = min(self._signal_retry_ms * 2, SIGNAL_RETRY_MAX_MS)
        for origin_id, origin in self.partitions.items():
            if origin.state.signal_state.undistributed:
                self._spawn_signal_distribution(origin_id)

    # ------------------------------------------------------------------ deployment
    async def deploy(self, resources: list[tuple[str, bytes]]) -> dict[str, Any]:
        first = self.partitions[1]
        command_value = {"resources": [{"resourceName": name} for name, _ in resources]}
        if not resources:
            raise Rejection(
                "CREATE", INVALID_ARGUMENT, "Expected to deploy at least one resource, but none given"
            )
        parsed: list[list[Any]] = []
        errors: list[BpmnValidationError] = []
        drgs: list[tuple[str, bytes, Any]] = []
        dmn_errors: list[str] = []
        for name, content in resources:
            if name.endswith(".dmn"):
                parsed.append([])
                try:
                    drgs.append((name, content, parse_dmn(content)))
                except DmnParseError as error:
                    dmn_errors.append(error.resource_message(name))
                except Exception as exc:  # a parser defect must not take the engine down
                    log.exception("DMN parser failed on %s", name)
                    dmn_errors.append(f"'{name}': Failed to parse the resource: {exc}")
                continue
            if not name.endswith((".bpmn", ".xml")):
                kind = name.rsplit(".", 1)[-1] if "." in name else name
                raise Rejection(
                    "CREATE",
                    INVALID_ARGUMENT,
                    f"Expected to deploy new resources, but encountered the following errors:\n'{name}': "
                    f"resource type '.{kind}' is not supported by this engine (only BPMN processes and DMN decisions)",
                )
            try:
                parsed.append(parse_bpmn(name, content))
            except BpmnValidationError as error:
                errors.append(error)
            except Exception as exc:  # a parser defect must not take the engine down
                log.exception("parser failed on %s", name)
                errors.append(
                    BpmnValidationError(name, [Problem(None, f"Failed to parse the resource: {exc}")])
                )
        dmn_errors.extend(duplicate_id_problems([(name, drg) for name, _content, drg in drgs]))
        if errors or dmn_errors:
            # one rejection for every bad resource: a deployment is atomic (reference §1.3)
            reason = zeebe_rejection_reason(errors) if errors else DEPLOYMENT_REJECTION_PREFIX
            reason += "".join("\n" + line for line in dmn_errors)
            rejection = Rejection("CREATE", INVALID_ARGUMENT, reason)
            try:
                first.execute(Command("DEPLOYMENT", "CREATE", command_value), _refuse(rejection))
            finally:
                await first.durable()
        result = first.execute(
            Command("DEPLOYMENT", "CREATE", command_value, request=DeployResources(resources, parsed, drgs))
        )
        for partition in list(self.partitions.values())[1:]:
            self._distribute(partition, result["key"], result["value"]["processesMetadata"], first)
        await asyncio.gather(*(partition.durable() for partition in self.partitions.values()))
        return dict(result)

    # ------------------------------------------------------------------ instances
    def create_instance(
        self,
        bpmn_process_id: str,
        version: int,
        process_definition_key: int,
        variables: dict[str, Any],
        start_instructions: list[str],
        await_result: bool = False,
    ) -> tuple[Partition, Created, asyncio.Future[dict[str, Any]] | None]:
        partition = self.next_partition()
        waiter: list[asyncio.Future[dict[str, Any]]] = []

        def register(process_instance_key: int) -> None:
            waiter.append(self.register_result_waiter(process_instance_key))

        request = CreateInstance(
            bpmn_process_id,
            version,
            process_definition_key,
            variables,
            start_instructions,
            on_created=register if await_result else None,
        )
        command_value = {
            "bpmnProcessId": bpmn_process_id,
            "version": version,
            "processDefinitionKey": process_definition_key,
            "variables": variables,
        }
        result = partition.execute(
            Command("PROCESS_INSTANCE_CREATION", "CREATE", command_value, request=request)
        )
        return partition, result, (waiter[0] if waiter else None)

    def register_result_waiter(self, process_instance_key: int) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._result_waiters.setdefault(process_instance_key, []).append(future)
        return future

    def drop_result_waiter(self, process_instance_key: int, future: asyncio.Future[dict[str, Any]]) -> None:
        waiters = self._result_waiters.get(process_instance_key)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._result_waiters[process_instance_key]

    def _process_completed(self, process_instance_key: int, variables: dict[str, Any]) -> None:
        for future in self._result_waiters.pop(process_instance_key, []):
            if not future.done():
                future.set_result(variables)

    def keyed(self, key: int, intent: str, reason: str) -> Partition:
        partition = self.partition_of(key)
        if partition is None:
            raise Rejection(intent, NOT_FOUND, reason)
        return partition

    # ------------------------------------------------------------------ jobs
    def activate_jobs(
        self, job_type: str, worker: str, timeout: int, max_jobs: int, fetch_variables: list[str]
    ) -> list[tuple[Partition, list[dict[str, Any]]]]:
        """Activate up to max_jobs jobs, partitions round-robin; one batch per partition."""
        batches = []
        remaining = max_jobs
        count = self.partition_count
        self._activation_round_robin = self._activation_round_robin % count + 1
        for offset in range(count):
            if remaining <= 0:
                break
            partition = self.partitions[(self._activation_round_robin + offset - 1) % count + 1]
            if not partition.state.activatable.get(job_type) or partition.failure is not None:
                continue
            jobs = partition.execute(
                Command(
                    "JOB_BATCH",
                    "ACTIVATE",
                    request=ActivateJobs(job_type, worker, timeout, remaining, fetch_variables),
                    logged=False,
                )
            )
            if jobs:
                batches.append((partition, jobs))
                remaining -= len(jobs)
        return batches

    def job_waiter(self, job_type: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._job_waiters.setdefault(job_type, []).append(future)
        return future

    def drop_job_waiter(self, job_type: str, future: asyncio.Future[None]) -> None:
        waiters = self._job_waiters.get(job_type)
        if waiters and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._job_waiters[job_type]

    def _notify_jobs_available(self, job_type: str) -> None:
        waiters = self._job_waiters.pop(job_type, None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(None)

    # ------------------------------------------------------------------ timers
    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TIMER_INTERVAL_SECONDS)
            try:
                self.check_timers(now_ms())
            except Exception:
                log.exception("timer check failed")

    def check_timers(self, now: int) -> None:
        check_locks = now - self._last_lock_check >= START_LOCK_CHECK_MS
        if check_locks:
            self._last_lock_check = now
        self._check_signal_distribution(now)
        for partition in self.partitions.values():
            for intent, due in (
                ("TIME_OUT", partition.state.due_jobs(now)),
                ("RECUR_AFTER_BACKOFF", partition.state.due_jobs(now, backoff=True)),
            ):
                for job_key in due:
                    job = partition.state.jobs.get(job_key)
                    if job is not None:
                        partition.execute(Command("JOB", intent, dict(job.value), key=job_key))
            self._check_messages(partition, now, check_locks)
            self._check_multi_instance_bodies(partition)
            self._trigger_due_timers(partition, now)

    def _trigger_due_timers(self, partition: Partition, now: int) -> None:
        """TIMER TRIGGER for the timers that came due (popped from the partition's heap) and
        for those whose retry wait has passed, up to TIMERS_PER_CHECK of each per check."""
        if partition.failure is not None:
            return  # nothing can be written until a restart, which re-arms every timer
        retries = self._timer_retries[partition.partition_id]
        for timer_key in partition.state.due_timers(now, TIMERS_PER_CHECK):
            # one waiting for its retry is tried when the wait is over, not sooner (its heap
            # entry can come back when a failed command rebuilds the partition's state)
            if timer_key not in retries:
                self._trigger_timer(partition, timer_key, retries, now)
        for timer_key in retries.due(now, TIMERS_PER_CHECK):
            self._trigger_timer(partition, timer_key, retries, now)

    def _trigger_timer(self, partition: Partition, timer_key: int, retries: TimerRetries, now: int) -> None:
        """One TIMER TRIGGER. The heap entry is gone once the timer is popped, so a trigger that
        was rejected or failed while the timer is still in state is tried again later (with a
        backoff), as Zeebe's checker finds it in the state again; once the timer no longer
        exists (triggered or canceled meanwhile), nothing is left to fire and it is dropped."""
        timer = partition.state.timers.get(timer_key)
        if timer is None:
            retries.drop(timer_key)
            return
        try:
            fired = partition.execute(Command("TIMER", "TRIGGER", dict(timer.value), key=timer_key))
        except Exception as error:  # a rejection, a processing error, an unavailable partition
            reason = error.reason if isinstance(error, Rejection) else str(error)
            if timer_key not in partition.state.timers:
                retries.drop(timer_key)
                log.warning("timer %d was not triggered and no longer exists: %s", timer_key, reason)
                return
            wait = retries.schedule(timer_key, now)
            log.warning("timer %d was not triggered: %s; trying again in %d ms", timer_key, reason, wait)
            return
        retries.drop(timer_key)
        if fired is False and partition.state.timers.get(timer_key) is timer:
            # Not due by the partition's clock (behind the loop's): the processor never fires
            # early and wrote nothing; the timer goes back on the heap for a later check.
            partition.state.index_timer(timer)

    def _check_multi_instance_bodies(self, partition: Partition) -> None:
        """Parallel multi-instance bodies larger than one slice: one PROCESS_INSTANCE_BATCH
        ACTIVATE command per body and turn (elements/multi_instance.py); a body is dropped
        from the list once it has every inner instance (or is gone)."""
        bodies = partition.state.mi_bodies_to_check
        for body_key in list(bodies)[:MI_BODIES_PER_CHECK]:
            if not body_needs_next_slice(partition.state, body_key):
                bodies.pop(body_key, None)
                continue
            body = partition.state.element_instances[body_key]
            value = {
                "batchElementInstanceKey": body_key,
                "index": body.mi_created,
                "processInstanceKey": body.process_instance_key,
                "tenantId": body.tenant_id,
            }
            try:
                partition.execute(Command("PROCESS_INSTANCE_BATCH", "ACTIVATE", value, key=body_key))
            except Rejection as rejection:
                log.warning("multi-instance slice of %d not activated: %s", body_key, rejection.reason)
                bodies.pop(body_key, None)

    # ------------------------------------------------------------------ messages
    def publish_message(self, request: PublishMessage) -> tuple[Partition, int]:
        """PublishMessage on the partition of its correlation key (reference §2.3)."""
        partition_id = message_state.subscription_partition_id(request.correlation_key, self.partition_count)
        partition = self.partitions[partition_id]
        key = partition.execute(
            Command("MESSAGE", "PUBLISH", publish_command_value(request), request=request)
        )
        return partition, int(key)

    def _send_message_command(
        self, partition_id: int, value_type: str, intent: str, value: dict[str, Any]
    ) -> None:
        """Deliver a command of one partition to another after the sending command is done
        (queued on the loop: processing never nests)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a broker driven synchronously): deliver now
            self._deliver_message_command(partition_id, value_type, intent, value)
            return
        loop.call_soon(self._deliver_message_command, partition_id, value_type, intent, value)

    def _deliver_message_command(
        self, partition_id: int, value_type: str, intent: str, value: dict[str, Any]
    ) -> None:
        partition = self.partitions.get(partition_id)
        if partition is None or partition.closed or partition.failure is not None:
            return  # sent again from the pending state after a restart
        try:
            partition.execute(Command(value_type, intent, value))
        except Rejection as rejection:
            log.debug(
                "%s %s on partition %d rejected: %s", value_type, intent, partition_id, rejection.reason
            )
        except Exception:
            log.exception("delivering %s %s to partition %d failed", value_type, intent, partition_id)

    def _resend_pending_message_commands(self) -> None:
        """After a restart: what one partition sent another may have been lost with the
        process (Zeebe's pending subscription checkers send it again; every receiver
        tolerates a repeat)."""
        for partition in self.partitions.values():
            state = partition.state.message_state
            for entry in list(state.process_subscriptions.values()):
                value = entry["value"]
                target = message_state.subscription_partition_id(
                    value["correlationKey"], self.partition_count
                )
                intent = {"CREATING": "CREATE", "DELETING": "DELETE"}.get(entry["state"])
                if intent is not None:
                    self._send_message_command(
                        target, "MESSAGE_SUBSCRIPTION", intent, message_subscription_value(value)
                    )
            for subscription in list(state.subscriptions.values()):
                message_key = subscription["correlating"]
                message = state.messages.get(message_key)
                if message_key == -1 or message is None:
                    continue
                value = message_subscription_value(subscription)
                value["messageKey"] = message_key
                value["variables"] = dict(message["variables"])
                target = decode_partition(int(subscription["elementInstanceKey"]))
                self._send_message_command(target, "PROCESS_MESSAGE_SUBSCRIPTION", "CORRELATE", value)

    def _check_messages(self, partition: Partition, now: int, check_locks: bool) -> None:
        state = partition.state.message_state
        for message_key in state.expired_messages(now, MESSAGES_PER_CHECK):
            message = state.messages.get(message_key)
            if message is None:
                continue
            try:
                partition.execute(Command("MESSAGE", "EXPIRE", dict(message), key=message_key))
            except Rejection as rejection:
                log.warning("message %d did not expire: %s", message_key, rejection.reason)
        if not check_locks:
            return
        instances = partition.state.element_instances
        for (process_id, correlation_key), holder in list(state.start_locks.items()):
            if holder in instances:
                continue
            # the instance ended: a buffered message with its key may start the next one
            started = partition.execute(
                Command(
                    "MESSAGE",
                    "CORRELATE_START",
                    {"bpmnProcessId": process_id, "correlationKey": correlation_key},
                    logged=False,
                )
            )
            if not started and state.start_locks.get((process_id, correlation_key)) == holder:
                # nothing waits for it: forget the ended lock (a stale lock means "free", so
                # this changes no outcome; snapshots leave ended locks out likewise)
                del state.start_locks[(process_id, correlation_key)]


def _refuse(rejection: Rejection) -> Any:
    """A handler that rejects: the command is logged with its rejection."""

    def handler(ctx: Any, command: Command) -> None:
        raise rejection

    return handler
