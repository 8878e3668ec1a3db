"""Seeding for `run_stack --demo`: the logins, the server inventory, and the hardware flows deployed
through the proxy. Every step is idempotent, so a second `make demo` on the same data folder reuses what
is there (a deployment of unchanged models is a no-op in Zeebe: same keys, no new version).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from django.contrib.auth import get_user_model
from django.db import transaction
from pyzeebe import ZeebeClient
from pyzeebe.errors import ZeebeGatewayUnavailableError

from demo.fleet import fleet
from processes.roles import Role, assign_role, ensure_role_groups
from servers.choices import ServerState
from servers.services import server_upsert

BPMN_DIR = Path(__file__).resolve().parent / "bpmn"
# Called processes first, so every call activity finds its process already deployed.
MODEL_FILES = ("hardware-diagnosis.bpmn", "server-repair.bpmn", "rack-sweep.bpmn")
# Demo-only passwords on a loopback-only console; printed at start so a newcomer can log in.
DEMO_LOGINS: tuple[tuple[str, str, Role], ...] = (
    ("admin", "admin", Role.ADMIN),
    ("operator", "operator", Role.OPERATOR),
    ("viewer", "viewer", Role.VIEWER),
)
DEPLOY_TIMEOUT_S = 30.0


def seed_logins() -> None:
    """One user per role; an existing user keeps its password (someone may have changed it)."""
    ensure_role_groups()
    user_model = get_user_model()
    for username, password, role in DEMO_LOGINS:
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if role == Role.ADMIN:
                user = user_model.objects.create_superuser(username, f"{username}@example.invalid", password)
            else:
                user = user_model.objects.create_user(username, f"{username}@example.invalid", password)
        assign_role(user=user, role=role)


def seed_fleet() -> int:
    """The inventory rows of the demo fleet (servers/ services); returns how many servers there are."""
    servers = fleet()
    with transaction.atomic():
        for index, server in enumerate(servers):
            # A few machines are already out of service, as in any fleet.
            state = ServerState.IN_REPAIR if index % 37 == 0 else ServerState.IN_SERVICE
            server_upsert(
                serial_number=server.serial_number,
                hostname=server.hostname,
                hardware_model=server.model,
                rack=server.rack,
                data_centre=server.data_centre,
                state=state,
            )
    return len(servers)


async def _deploy(gateway: str) -> list[str]:
    deployed = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEPLOY_TIMEOUT_S
    async with grpc.aio.insecure_channel(gateway) as channel:
        client = ZeebeClient(channel)
        for name in MODEL_FILES:
            while True:
                try:
                    await asyncio.wait_for(client.deploy_resource(str(BPMN_DIR / name)), DEPLOY_TIMEOUT_S)
                    break
                except ZeebeGatewayUnavailableError:
                    # Right after start the proxy has not yet seen the clusters' health checks succeed.
                    if loop.time() > deadline:
                        raise
                    await asyncio.sleep(0.5)
            deployed.append(name.removesuffix(".bpmn"))
    return deployed


def deploy_models(*, gateway: str) -> list[str]:
    """Deploy the demo flows through the proxy (which deploys to every cluster); returns their ids."""
    return asyncio.run(_deploy(gateway))
