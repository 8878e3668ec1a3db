"""Helpers for the whole suite: one `wait_for`, one launcher for `python -m engine` and
`python -m routing`, one BPMN builder. Import from here:

    from tests.support import wait_for, engine_process, proxy_process, sequence_process
"""

from __future__ import annotations

from tests.services import free_port
from tests.support.bpmn import flow, process_xml, sequence_process, service_task
from tests.support.processes import ServiceProcess, engine_process, proxy_process, python_env
from tests.support.waiting import wait_for

__all__ = [
    "ServiceProcess",
    "engine_process",
    "flow",
    "free_port",
    "process_xml",
    "proxy_process",
    "python_env",
    "sequence_process",
    "service_task",
    "wait_for",
]
