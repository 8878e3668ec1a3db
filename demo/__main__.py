"""`python -m demo --gateway HOST:PORT`: the demo's workers and the flow starter, through the proxy.

`python -m demo --routing-journal FILE` instead routes in-process (issue 16: no second gRPC hop for
our own Python workers): a `routing.connect` channel over the Cluster table, the same source as
`manage.py run_gateway_proxy`, sharing the proxy's deployment journal FILE so placement and
replays agree with it. `run_stack --demo` starts the workers this way; outside clients keep the proxy.

The starter keeps the fleet busy at a steady pace: a new flow every `--pace` seconds (server repairs
mostly, some diagnoses alone, now and then a rack sweep) while fewer than `--max-active` root flows are
active. Flows waiting for a person or an operator stay for `--max-age` minutes; then the "night shift"
cancels them (through the proxy, as an operator would), so the demo runs for hours without the
engines' state growing without bound. The counts come from the imported query models (Django).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
from datetime import timedelta
from typing import Any

import grpc
from pyzeebe import ZeebeClient

from demo.fleet import fleet, racks
from demo.workers import Trouble, build_worker

log = logging.getLogger("demo")

INITIAL_BURST = 12
SPECIAL_MODEL_SHARE = 0.05
CANCEL_BATCH = 25


def _active_roots() -> int:
    from django.db import close_old_connections

    from processes.choices import InstanceState
    from processes.models import ProcessInstance

    close_old_connections()
    return ProcessInstance.objects.filter(parent__isnull=True, state=InstanceState.ACTIVE).count()


def _stale_roots(max_age_minutes: float) -> list[int]:
    from django.db import close_old_connections
    from django.utils import timezone

    from processes.choices import InstanceState
    from processes.models import ProcessInstance

    close_old_connections()
    cutoff = timezone.now() - timedelta(minutes=max_age_minutes)
    return list(
        ProcessInstance.objects.filter(parent__isnull=True, state=InstanceState.ACTIVE, start_date__lt=cutoff)
        .order_by("start_date")
        .values_list("key", flat=True)[:CANCEL_BATCH]
    )


class Starter:
    def __init__(self, client: ZeebeClient, *, rng: random.Random) -> None:
        self.client = client
        self.rng = rng
        servers = fleet()
        self.regular = [server for server in servers if not server.special_model]
        self.special = [server for server in servers if server.special_model]
        self.rack_names = sorted(racks())
        # The first flows make sure there is something to act on within the first minute: a diagnosis
        # of an unreachable machine (an incident an operator's retry resolves; a diagnosis alone, so
        # after the retry it always finishes) and one of a special model (waits for a person).
        lost = next(server for server in servers if server.unreachable and not server.special_model)
        self.opening: list[tuple[str, dict[str, Any]]] = [
            ("hardware-diagnosis", lost.variables()),
            ("hardware-diagnosis", self.special[0].variables()),
        ]

    async def start_one(self) -> None:
        if self.opening:
            opening_process, opening_variables = self.opening[0]
            await self.start(opening_process, opening_variables)
            self.opening.pop(0)
            return
        roll = self.rng.random()
        if roll < 0.08:
            rack = self.rng.choice(self.rack_names)
            variables: dict[str, Any] = {"rack": rack, "dataCentre": rack.split("-")[0]}
            process_id = "rack-sweep"
        else:
            pool = self.special if self.rng.random() < SPECIAL_MODEL_SHARE else self.regular
            variables = self.rng.choice(pool).variables()
            process_id = "hardware-diagnosis" if roll < 0.25 else "server-repair"
        await self.start(process_id, variables)

    async def start(self, process_id: str, variables: dict[str, Any]) -> None:
        created = await self.client.run_process(process_id, variables=variables)
        log.info(
            "started %s %s for %s",
            process_id,
            created.process_instance_key,
            variables.get("serverSn") or variables["rack"],
        )


def open_channel(args: argparse.Namespace) -> grpc.aio.Channel:
    """The channel the workers and the starter share: in-process routing over the Cluster table
    with ``--routing-journal``, else a plain channel to the ``--gateway`` proxy."""
    if args.routing_journal is None:
        return grpc.aio.insecure_channel(args.gateway)
    import routing
    from processes.management.commands.run_gateway_proxy import cluster_table_source

    # No state_dir: metrics.json is the proxy's (the console reads cluster health from it).
    return routing.connect(source=cluster_table_source, journal=args.routing_journal)


async def run(args: argparse.Namespace, stop: asyncio.Event) -> None:
    rng = random.Random(args.random_seed)
    async with open_channel(args) as channel:
        worker = build_worker(channel, Trouble(seed=args.random_seed, speed=args.speed))
        starter = Starter(ZeebeClient(channel), rng=rng)
        work = asyncio.create_task(worker.work())

        async def keep_starting() -> None:
            started = 0
            while not stop.is_set():
                try:
                    active = await asyncio.to_thread(_active_roots)
                    if started < INITIAL_BURST or active < args.max_active:
                        await starter.start_one()
                        started += 1
                except Exception as error:  # the proxy or the database may be restarting: try again later
                    log.warning("could not start a flow: %s", error)
                pace = 0.3 if started < INITIAL_BURST else args.pace * rng.uniform(0.5, 1.5)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pace)

        async def night_shift() -> None:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), 60)
                    return
                except TimeoutError:
                    pass
                try:
                    stale = await asyncio.to_thread(_stale_roots, args.max_age)
                except Exception as error:
                    log.warning("could not list old flows: %s", error)
                    continue
                for key in stale:
                    try:
                        await starter.client.cancel_process_instance(key)
                        log.info("night shift: canceled flow %s (older than %g min)", key, args.max_age)
                    except Exception as error:  # already finished, or its cluster is away: next round
                        log.info("night shift: could not cancel %s: %s", key, error)

        helpers = [asyncio.create_task(keep_starting()), asyncio.create_task(night_shift())]
        await stop.wait()
        log.info("stopping the demo workers")
        for helper in helpers:
            helper.cancel()
        await worker.stop()
        work.cancel()
        await asyncio.gather(work, *helpers, return_exceptions=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m demo", description="Fleetflow demo workers and flows")
    parser.add_argument(
        "--gateway",
        help="HOST:PORT of the gateway proxy (for --seed; and the workers without --routing-journal)",
    )
    parser.add_argument(
        "--routing-journal",
        help="route in-process over the Cluster table (no proxy hop), sharing the proxy's deployment journal FILE",
    )
    parser.add_argument("--pace", type=float, default=4.0, help="seconds between new flows (default 4)")
    parser.add_argument("--max-active", type=int, default=80, help="active root flows kept at most (80)")
    parser.add_argument("--max-age", type=float, default=30.0, help="minutes before a stuck flow is canceled")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="work speed factor (2 = steps twice as fast)"
    )
    parser.add_argument("--random-seed", type=int, default=None, help="random seed (reproducible trouble)")
    parser.add_argument(
        "--seed",
        action="store_true",
        help="first create the demo logins and fleet and deploy the flows (run_stack --demo does this itself)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.gateway is None and (args.routing_journal is None or args.seed):
        parser.error("--gateway is required (unless --routing-journal is given and --seed is not)")
    if args.pace <= 0 or args.speed <= 0 or args.max_active < 1 or args.max_age <= 0:
        parser.error("--pace, --speed and --max-age must be positive, --max-active at least 1")
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    import django

    django.setup()
    if args.seed:
        from demo.seed import deploy_models, seed_fleet, seed_logins

        seed_logins()
        log.info(
            "seeded %d servers; deployed %s", seed_fleet(), ", ".join(deploy_models(gateway=args.gateway))
        )

    async def main_async() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(args, stop)

    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
