"""Durability: kill -9 in the middle of load loses no acknowledged command, duplicates none,
and keys stay unique after restart (key generators are rebuilt from the log)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from tests.engine.conftest import EngineProcess
from tests.engine.helpers import (
    activate,
    activate_one,
    all_records,
    complete,
    create,
    deploy,
    gateway,
    instance_state,
    one_task_process,
    wait_for,
)

pytestmark = pytest.mark.slow


class Load:
    """Creates instances and completes jobs until told to stop; records what was acknowledged."""

    def __init__(self, address: str):
        self.address = address
        self.created: list[int] = []
        self.completed: list[int] = []
        self.stop = threading.Event()
        self.errors: list[str] = []

    def creator(self) -> None:
        with gateway(self.address) as stub:
            while not self.stop.is_set():
                try:
                    self.created.append(create(stub, "crash-flow", {"n": len(self.created)}))
                except grpc.RpcError as error:
                    self.errors.append(str(error.code()))
                    return

    def completer(self) -> None:
        with gateway(self.address) as stub:
            while not self.stop.is_set():
                try:
                    for job in activate(
                        stub, "crash-work", max_jobs=20, request_timeout_ms=200, timeout_ms=1000
                    ):
                        complete(stub, job.key, {"done": True})
                        self.completed.append(job.key)
                except grpc.RpcError as error:
                    self.errors.append(str(error.code()))
                    return


def run_load_and_kill(engine: EngineProcess, seconds: float) -> Load:
    load = Load(engine.address)
    threads = [threading.Thread(target=load.creator) for _ in range(2)] + [
        threading.Thread(target=load.completer) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    engine.kill()  # SIGKILL while requests are in flight
    load.stop.set()
    for thread in threads:
        thread.join(30)
    return load


def completed_instances(data_dir: Path) -> set[int]:
    return {
        r["key"]
        for r in all_records(data_dir)
        if r["valueType"] == "PROCESS_INSTANCE"
        and r["intent"] == "ELEMENT_COMPLETED"
        and r["value"]["bpmnElementType"] == "PROCESS"
    }


def key_records(data_dir: Path) -> list[dict]:
    return [r for r in all_records(data_dir) if r["recordType"] == "EVENT"]


def test_kill_minus_nine_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    engine = EngineProcess(data_dir, partitions=2).start()
    with gateway(engine.address) as stub:
        deploy(stub, "crash.bpmn", one_task_process("crash-flow", "crash-work"))
    load = run_load_and_kill(engine, seconds=2.0)
    assert len(load.created) > 20 and len(load.completed) > 5, (len(load.created), len(load.completed))

    restarted = EngineProcess(data_dir, partitions=2).start()
    try:
        records = key_records(data_dir)
        creations = Counter(r["key"] for r in records if r["valueType"] == "PROCESS_INSTANCE_CREATION")
        completions = Counter(
            r["key"] for r in records if r["valueType"] == "JOB" and r["intent"] == "COMPLETED"
        )
        for key in load.created:
            assert creations[key] == 1, f"acknowledged instance {key} appears {creations[key]} times"
        for key in load.completed:
            assert completions[key] == 1, f"acknowledged completion {key} appears {completions[key]} times"
        # keys handed out by generators are never reused
        generating = {
            ("PROCESS_INSTANCE", "ELEMENT_ACTIVATING"),
            ("PROCESS_INSTANCE", "SEQUENCE_FLOW_TAKEN"),
            ("JOB", "CREATED"),
            ("VARIABLE", "CREATED"),
            ("JOB_BATCH", "ACTIVATED"),
        }
        new_keys = Counter(r["key"] for r in records if (r["valueType"], r["intent"]) in generating)
        duplicates = [key for key, count in new_keys.items() if count > 1]
        assert duplicates == []
        old_keys = set(new_keys)

        # the restarted engine continues: new keys do not collide, pending jobs still run
        with gateway(restarted.address) as stub:
            fresh = [create(stub, "crash-flow") for _ in range(6)]
            assert not set(fresh) & old_keys
            expected = set(load.created) | set(fresh)
            # jobs activated before the kill come back after their 1 s timeout
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not expected <= completed_instances(data_dir):
                for job in activate(stub, "crash-work", max_jobs=50, request_timeout_ms=500):
                    assert job.key not in completions
                    complete(stub, job.key)
        assert expected <= completed_instances(data_dir)
    finally:
        restarted.stop()


def test_restart_from_snapshot_and_tail(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    engine = EngineProcess(data_dir, partitions=1).start()
    with gateway(engine.address) as stub:
        deploy(stub, "crash.bpmn", one_task_process("crash-flow", "crash-work"))
        first = create(stub, "crash-flow", {"phase": 1})
    assert engine.stop() == 0  # graceful stop writes a snapshot
    assert (data_dir / "partition-1" / "snapshot.json").exists()

    engine = EngineProcess(data_dir, partitions=1).start()
    with gateway(engine.address) as stub:
        second = create(stub, "crash-flow", {"phase": 2})  # goes to the tail after the snapshot
        job = activate_one(stub, "crash-work", fetch=["phase"])
    engine.kill()

    engine = EngineProcess(data_dir, partitions=1).start()
    try:
        with gateway(engine.address) as stub:
            # the activated job is still activated (deadline not passed): not handed out twice
            remaining = activate(stub, "crash-work", max_jobs=10, request_timeout_ms=300)
            assert job.key not in [j.key for j in remaining]
            complete(stub, job.key)
            for other in remaining:
                assert json.loads(other.variables)["phase"] in (1, 2)
                complete(stub, other.key)
        for key in (first, second):
            assert wait_for(
                lambda k=key: instance_state(data_dir, k) == "ELEMENT_COMPLETED", what="completion"
            )
        assert "snapshot up to" in engine.stderr()
    finally:
        engine.stop()


def test_growing_partitions_redistributes_and_shrinking_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    engine = EngineProcess(data_dir, partitions=1).start()
    with gateway(engine.address) as stub:
        deploy(stub, "crash.bpmn", one_task_process("crash-flow", "crash-work"))
    engine.stop()

    grown = EngineProcess(data_dir, partitions=2).start()
    try:
        with gateway(grown.address) as stub:
            keys = [create(stub, "crash-flow") for _ in range(2)]
        # the new partition 2 received the deployment at start-up and runs instances
        assert sorted(key >> 51 for key in keys) == [1, 2]
    finally:
        grown.stop()

    shrunk = EngineProcess(data_dir, partitions=1)
    with pytest.raises(RuntimeError, match="holds partitions"):
        shrunk.start()
