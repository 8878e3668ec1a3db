"""A real flow through any gateway address: pyzeebe deploys, a pyzeebe worker does the job, the
instance completes with the worker's variables (run_process_with_result)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import grpc
from pyzeebe import ZeebeClient, ZeebeWorker

from tests.engine.helpers import one_task_process


async def pyzeebe_flow(
    channel: grpc.aio.Channel, tmp_path: Path, name: str, instances: int = 1, keep_going_for: float = 0.0
) -> list[dict[str, Any]]:
    """Run ``instances`` instances one after another, and more until ``keep_going_for`` seconds
    have passed (at most 5000 in all)."""
    bpmn = tmp_path / f"{name}.bpmn"
    bpmn.write_bytes(one_task_process(name, f"{name}-work"))
    client = ZeebeClient(channel)
    await client.deploy_resource(str(bpmn))
    worker = ZeebeWorker(channel, name="security-test", poll_retry_delay=0)

    @worker.task(task_type=f"{name}-work")
    async def work(n: int) -> dict[str, Any]:
        return {"doubled": n * 2}

    running = asyncio.create_task(worker.work())
    try:
        results = []
        deadline = time.monotonic() + keep_going_for
        for n in range(5000):
            if n >= instances and time.monotonic() >= deadline:
                break
            result = await asyncio.wait_for(
                client.run_process_with_result(name, {"n": n}, timeout=20_000), 30
            )
            results.append(result.variables)
        return results
    finally:
        await worker.stop()
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
