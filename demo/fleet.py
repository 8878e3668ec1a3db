"""The demo's server fleet, generated deterministically so that the seeding (run_stack) and the workers
(`python -m demo`) agree on every server without sharing state.

Three data centres, six racks each, twenty servers per rack: 360 servers over six hardware models, two
of them "special" (GPU machines whose logs the rules cannot read, so a person analyses them). A few
servers have a BMC that never answers: their log download fails until the retries run out and an
incident waits for an operator (who may then retry: the demo brings the machine back, see workers.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any

DATA_CENTRES = ("ams1", "fra2", "dub1")
RACKS_PER_DATA_CENTRE = 6
SERVERS_PER_RACK = 20
# (model, weight, special): special models go to manual analysis.
MODELS = (
    ("Dell PowerEdge R750", 30, False),
    ("HPE ProLiant DL380 Gen10", 25, False),
    ("Lenovo ThinkSystem SR650", 20, False),
    ("Supermicro SYS-6029P-TRT", 15, False),
    ("Dell PowerEdge XE8545", 10, True),
    ("Inspur NF5488M5", 8, True),
)
UNREACHABLE_SHARE = 0.04
SEED = 20260412


@dataclass(frozen=True)
class FleetServer:
    serial_number: str
    hostname: str
    model: str
    special_model: bool
    rack: str
    data_centre: str
    unreachable: bool

    def variables(self) -> dict[str, Any]:
        """The process variables a flow about this server starts with."""
        return {
            "serverSn": self.serial_number,
            "hostname": self.hostname,
            "model": self.model,
            "specialModel": self.special_model,
            "rack": self.rack,
            "dataCentre": self.data_centre,
        }


@cache
def fleet() -> tuple[FleetServer, ...]:
    rng = random.Random(SEED)
    names = [model for model, _, _ in MODELS]
    weights = [weight for _, weight, _ in MODELS]
    special = {model for model, _, is_special in MODELS if is_special}
    servers = []
    for data_centre in DATA_CENTRES:
        for rack_number in range(1, RACKS_PER_DATA_CENTRE + 1):
            rack = f"{data_centre}-r{rack_number:02d}"
            # A rack is mostly one model, as racks are bought that way, with a few odd ones.
            rack_model = rng.choices(names, weights)[0]
            for slot in range(1, SERVERS_PER_RACK + 1):
                model = rack_model if rng.random() < 0.7 else rng.choices(names, weights)[0]
                servers.append(
                    FleetServer(
                        serial_number=f"{model.split()[0][:2].upper()}{rng.randrange(16**7):07X}",
                        hostname=f"{rack}-u{slot * 2:02d}",
                        model=model,
                        special_model=model in special,
                        rack=rack,
                        data_centre=data_centre,
                        unreachable=rng.random() < UNREACHABLE_SHARE,
                    )
                )
    return tuple(servers)


@cache
def by_serial() -> dict[str, FleetServer]:
    return {server.serial_number: server for server in fleet()}


def racks() -> dict[str, list[FleetServer]]:
    result: dict[str, list[FleetServer]] = {}
    for server in fleet():
        result.setdefault(server.rack, []).append(server)
    return result
