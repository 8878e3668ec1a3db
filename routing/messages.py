"""Which published messages start process instances, read from the deployment journal.

The core fans a PublishMessage out to every cluster, because a catch event waiting for it may
be on any of them. A process with a **message start event** is deployed (by fan-out) to every
cluster too, so a fanned-out publish would start one instance *per cluster*. The core sends a
message whose name is a process-level start message of a deployed process to exactly one cluster
instead (routing/core.py ``RoutingCore.publish_message``).

This module reads those names from the BPMN resources in the journal. Routing does not import the
engine (separate programs), so it parses the XML itself, defensively: a resource with a DOCTYPE
(and so any entity declaration) is ignored, as is one above :data:`MAX_RESOURCE_BYTES`, and one
that does not parse; none of that stops routing — the cluster refuses or accepts it on its own.

Only **literal** names are known: a start event's message name given as a FEEL expression
(``name="=..."``) is evaluated by the cluster, and cannot be known here, so such a message keeps
being fanned out (and may start one instance per cluster). Zeebe itself requires start-event
message names to be static in practice (no variables exist before the instance), so this is a
corner case. Per process id only the **latest** deployed version counts, as in Zeebe: a new
version without the start event removes its subscription.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable

log = logging.getLogger(__name__)

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAX_RESOURCE_BYTES = 4 * 1024 * 1024
"""Larger resources are not inspected (Zeebe's default max message size is 4 MiB)."""

_PROCESS = f"{{{BPMN_NS}}}process"
_MESSAGE = f"{{{BPMN_NS}}}message"
_START_EVENT = f"{{{BPMN_NS}}}startEvent"
_MESSAGE_DEFINITION = f"{{{BPMN_NS}}}messageEventDefinition"


def _refused(content: bytes) -> str | None:
    if len(content) > MAX_RESOURCE_BYTES:
        return f"larger than {MAX_RESOURCE_BYTES} bytes"
    # A DOCTYPE is the only way to declare entities (billion laughs, external entities): no BPMN
    # needs one. Checked on the raw bytes, case-insensitively, before any parsing; UTF-16 input
    # would hide it from this check, so only UTF-8/ASCII documents are parsed at all.
    if content.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in content[:200]:
        return "not UTF-8"
    if b"<!doctype" in content.lower():
        return "it has a DOCTYPE"
    return None


def start_messages_by_process(name: str, content: bytes) -> dict[str, frozenset[str]]:
    """Process id -> literal message names of its process-level message start events, for one
    BPMN resource (every process in it, with or without such events); ``{}`` for anything that
    is not an inspectable BPMN document."""
    if not name.lower().endswith((".bpmn", ".xml")):
        return {}
    reason = _refused(content)
    if reason is not None:
        log.warning("resource %s not inspected for message start events: %s", name, reason)
        return {}
    try:
        root = ET.fromstring(content)  # noqa: S314 -- DOCTYPE (entities) refused above, size bounded
    except ET.ParseError as error:
        log.info("resource %s not inspected for message start events: %s", name, error)
        return {}
    messages = {m.get("id"): m.get("name") or "" for m in root.iter(_MESSAGE) if m.get("id") is not None}
    result: dict[str, frozenset[str]] = {}
    for process in root.iter(_PROCESS):
        process_id = process.get("id")
        if not process_id:
            continue
        names: set[str] = set()
        # Direct children only: start events of (event) sub-processes are not process-level;
        # a message event sub-process is a catch (correlated to a running instance).
        for start in process.findall(_START_EVENT):
            for definition in start.findall(_MESSAGE_DEFINITION):
                message_name = messages.get(definition.get("messageRef"), "")
                if message_name and not message_name.startswith("="):
                    names.add(message_name)
        result[process_id] = frozenset(names)
    return result


def start_message_names(resources: Iterable[tuple[str, bytes]]) -> frozenset[str]:
    """Literal start-message names of the latest version of every process in ``resources``
    (in deployment order: a later deployment of a process id replaces what an earlier one had)."""
    latest: dict[str, frozenset[str]] = {}
    for name, content in resources:
        latest.update(start_messages_by_process(name, content))
    return frozenset().union(*latest.values()) if latest else frozenset()
