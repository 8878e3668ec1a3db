"""Every processor, element behaviour and trigger kind of the engine: importing this module
registers them all. Adding a module to engine/processing is adding its import line here
(one line per module, sorted within its group, so parallel additions merge cleanly)."""

# ruff: noqa: F401  (imported for their registrations)
from __future__ import annotations

# --- element behaviours (registry.behavior)
import engine.processing.elements.business_rule_tasks
import engine.processing.elements.call_activity
import engine.processing.elements.event_based_gateway
import engine.processing.elements.event_subprocesses
import engine.processing.elements.events
import engine.processing.elements.gateways
import engine.processing.elements.inclusive_gateway
import engine.processing.elements.multi_instance
import engine.processing.elements.process
import engine.processing.elements.receive_tasks
import engine.processing.elements.subprocesses
import engine.processing.elements.tasks

# --- command processors (registry.processor)
import engine.processing.processors.cancel
import engine.processing.processors.creation
import engine.processing.processors.decisions
import engine.processing.processors.deployment
import engine.processing.processors.incidents
import engine.processing.processors.jobs
import engine.processing.processors.messages
import engine.processing.processors.migration
import engine.processing.processors.modification
import engine.processing.processors.multi_instance
import engine.processing.processors.signals
import engine.processing.processors.timers
import engine.processing.processors.variables

# --- catch-event trigger kinds (registry.trigger_kind) and throw-side triggers
import engine.processing.triggers.compensation
import engine.processing.triggers.errors
import engine.processing.triggers.escalations
import engine.processing.triggers.messages
import engine.processing.triggers.signals
import engine.processing.triggers.timers
