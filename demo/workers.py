"""pyzeebe workers for the demo flows, with the trouble a real fleet has.

- BMC log download: a BMC that times out now and then (failed with a growing retry backoff, then it
  answers), and the few unreachable machines of the fleet (demo/fleet.py), whose retries run out and
  leave an incident for an operator. When an operator retries such a job the machine is "back": the
  worker remembers the job keys it exhausted and completes them the next time, so a retry finishes.
- Rules: most servers are healthy, some match our own rules, some a vendor rule (vendor diagnosis,
  slow, with the occasional 503 from the vendor's API).
- Replace part: sometimes the part is out of stock (BPMN error NO_STOCK -> a person orders it).
- Manual analysis and part orders are job-based user tasks: no worker takes them, they wait for a person.

Work takes a few seconds per step (asyncio.sleep) so that flows are seen moving in the console.

No `from __future__ import annotations` here: pyzeebe finds the `job: Job` parameter by comparing the
annotation with the Job class, which a string annotation never equals.
"""

import asyncio
import logging
import random
from collections import OrderedDict
from typing import Any

import grpc
from pyzeebe import Job, JobController, ZeebeWorker

from demo.fleet import by_serial, racks

log = logging.getLogger("demo.workers")

BMC_TIMEOUT_SHARE = 0.15
VENDOR_API_ERROR_SHARE = 0.10
NO_STOCK_SHARE = 0.08
BACKOFF_BASE_MS = 2000
# Job keys whose retries ran out on an unreachable machine; bounded (oldest forgotten first).
EXHAUSTED_REMEMBERED = 10_000
PARTS = ("DIMM", "PSU", "NVMe SSD", "fan module", "CPU", "NIC", "RAID controller", "BMC board")


class DemoTrouble(Exception):
    """A simulated, retryable failure; its message is what the operator reads in the incident."""


class NoStock(Exception):
    """The part is not in stock: a BPMN error (NO_STOCK) that the model catches, not a failure."""


class Trouble:
    """What the workers share: the randomness (seedable for tests) and the exhausted job keys."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        speed: float = 1.0,
        bmc_timeout_share: float = BMC_TIMEOUT_SHARE,
        vendor_api_error_share: float = VENDOR_API_ERROR_SHARE,
        no_stock_share: float = NO_STOCK_SHARE,
    ) -> None:
        self.rng = random.Random(seed)
        self.speed = speed
        self.bmc_timeout_share = bmc_timeout_share
        self.vendor_api_error_share = vendor_api_error_share
        self.no_stock_share = no_stock_share
        self.exhausted: OrderedDict[int, None] = OrderedDict()

    async def work(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high) / self.speed)

    def remember_exhausted(self, job_key: int) -> None:
        self.exhausted[job_key] = None
        while len(self.exhausted) > EXHAUSTED_REMEMBERED:
            self.exhausted.popitem(last=False)


def _backoff_handler(trouble: Trouble) -> Any:
    async def handle(exception: Exception, job: Job, controller: JobController) -> None:
        if isinstance(exception, NoStock):
            await controller.set_error_status(str(exception), error_code="NO_STOCK")
            return
        # Zeebe's retry backoff (FailJob retryBackOff): 2 s, 4 s, 8 s ... as attempts go by.
        attempt = max(0, 4 - job.retries)
        backoff_ms = int(BACKOFF_BASE_MS * 2**attempt / trouble.speed) if job.retries > 1 else 0
        if job.retries <= 1:
            trouble.remember_exhausted(job.key)
        log.info("job %s (%s) failed: %s; retries left %d", job.key, job.type, exception, job.retries - 1)
        await controller.set_failure_status(str(exception), retry_back_off_ms=backoff_ms)

    return handle


def build_worker(channel: grpc.aio.Channel, trouble: Trouble) -> ZeebeWorker:
    worker = ZeebeWorker(channel, name="fleetflow-demo", request_timeout=10_000, poll_retry_delay=1)
    on_failure = _backoff_handler(trouble)
    # pyzeebe's overloads of `task` resolve to Never for async functions under mypy; the runtime
    # contract (a dict of variables returned) is what the worker relies on.
    task: Any = worker.task

    @task(task_type="bmc-log-download", exception_handler=on_failure, max_running_jobs=20)
    async def download_logs(job: Job) -> dict[str, Any]:
        serial = str(job.variables.get("serverSn", ""))
        server = by_serial().get(serial)
        host = server.hostname if server else serial
        await trouble.work(1.0, 3.0)
        if server is not None and server.unreachable and job.key not in trouble.exhausted:
            raise DemoTrouble(f"BMC {host}-bmc unreachable: no route to host (ICMP and IPMI timed out)")
        if trouble.rng.random() < trouble.bmc_timeout_share and job.retries > 1:
            raise DemoTrouble(f"BMC {host}-bmc timed out after 30 s reading the SEL")
        lines = trouble.rng.randrange(2_000, 90_000)
        return {"logBundle": f"s3://fleet-logs/{serial}/sel-{job.key}.tar.zst", "logLines": lines}

    @task(task_type="rules-load", max_running_jobs=20)
    async def load_rules() -> dict[str, Any]:
        await trouble.work(0.3, 1.0)
        return {"ruleSet": "hw-rules-2026.11", "ruleCount": 412}

    @task(task_type="rules-match", max_running_jobs=20)
    async def match_rules(job: Job) -> dict[str, Any]:
        await trouble.work(1.0, 2.5)
        roll = trouble.rng.random()
        if roll < 0.45:
            return {"matchedRule": "none", "verdict": "healthy", "part": None}
        part = trouble.rng.choice(PARTS)
        if roll < 0.80:
            return {"matchedRule": f"own-{trouble.rng.randrange(1, 412)}", "verdict": "fault", "part": part}
        return {"matchedRule": "vendor", "verdict": "pending-vendor", "part": None}

    @task(task_type="vendor-diagnosis", exception_handler=on_failure, max_running_jobs=20)
    async def vendor_diagnosis(job: Job) -> dict[str, Any]:
        await trouble.work(3.0, 8.0)
        if trouble.rng.random() < trouble.vendor_api_error_share and job.retries > 1:
            raise DemoTrouble("vendor support API answered 503 Service Unavailable")
        return {
            "verdict": "fault",
            "part": trouble.rng.choice(PARTS),
            "vendorCase": f"CASE-{trouble.rng.randrange(10**6):06d}",
        }

    @task(task_type="replace-part", exception_handler=on_failure, max_running_jobs=20)
    async def replace_part(job: Job) -> dict[str, Any]:
        await trouble.work(2.0, 5.0)
        part = job.variables.get("part") or "DIMM"
        if trouble.rng.random() < trouble.no_stock_share:
            raise NoStock(f"no {part} in stock at {job.variables.get('dataCentre', 'the site')}")
        return {"replacedPart": part}

    @task(task_type="burn-in-test", max_running_jobs=20)
    async def burn_in() -> dict[str, Any]:
        await trouble.work(3.0, 6.0)
        return {"burnInPassed": True}

    @task(task_type="rack-list-servers")
    async def list_servers(rack: str) -> dict[str, Any]:
        await trouble.work(0.5, 1.5)
        members = racks().get(rack, [])
        regular = [server for server in members if not server.special_model] or members
        chosen = trouble.rng.sample(regular, k=min(4, len(regular)))
        while chosen and len(chosen) < 4:  # the BPMN has four fixed branches (no multi-instance yet)
            chosen.append(chosen[-1])
        return {"servers": [server.variables() for server in chosen]}

    @task(task_type="rack-report")
    async def rack_report(rack: str) -> dict[str, Any]:
        await trouble.work(0.5, 1.5)
        return {"reportUrl": f"https://reports.example.invalid/racks/{rack}"}

    return worker
