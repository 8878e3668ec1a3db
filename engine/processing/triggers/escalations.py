"""Escalations (reference §5.2; Zeebe's BpmnEventPublicationBehavior for escalations).

An escalation intermediate throw or end event throws its code (static or FEEL). The catch is
searched from the thrower upward, scope by scope and into calling parents: at each instance the
escalation starts of its event sub-processes, then its escalation boundary events; a catch for
the code beats a catch-all at the same instance. Found: ESCALATION ESCALATED and the catch
event is triggered (an interrupting one ends the scope, the thrower with it; a
non-interrupting one runs beside it and the thrower goes on). Not found: ESCALATION
NOT_ESCALATED and the thrower goes on; an uncaught escalation is not an incident in Zeebe.
Escalation catch events need no subscription: a thrown escalation searches for them.
"""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.registry import SearchedTrigger, trigger_kind
from engine.processing.state import ElementInstance
from engine.processing.subscriptions import catch_search_path, trigger
from engine.values import feel_type_name


@trigger_kind("ESCALATION")
class EscalationTrigger(SearchedTrigger):
    """Escalation catch events need no subscription: a thrown escalation searches for them."""


def escalation_code(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> str:
    """The code a throw event escalates (evaluated before it is activated: a failure is an
    EXTRACT_VALUE_ERROR incident and nothing else is written)."""
    definition = element.escalation
    if definition is None or definition.code is None:
        return ""
    expression = definition.code
    if expression.is_static:
        return str(expression.text)
    code = evaluate(expression, ctx.state.visible_variables(instance.key), "EXTRACT_VALUE_ERROR")
    if not isinstance(code, str):
        raise MappingFailure(
            "EXTRACT_VALUE_ERROR",
            f"Expected result of the expression '{expression.text}' to be 'STRING', "
            f"but was '{feel_type_name(code)}'.",
        )
    return code


def _catch_code(catch_event: Any) -> str | None:
    definition = catch_event.escalation
    if definition is None or definition.code is None:
        return None
    return str(definition.code.text)


def _catch_events(element: Any) -> list[Any]:
    events = [
        start
        for sub_process in getattr(element, "event_sub_processes", ())
        for start in getattr(sub_process, "start_events", ())
        if start.event_type.value == "ESCALATION"
    ]
    events.extend(b for b in element.boundary_events if b.event_type.value == "ESCALATION")
    return events


def find_escalation_catch(ctx: ProcessingContext, start_key: int, code: str) -> tuple[int, Any] | None:
    """(owner instance key, catch event) of the innermost catch for `code` along
    subscriptions.catch_search_path (a catch for the code beats a catch-all at one instance)."""
    for instance in catch_search_path(ctx, start_key):
        catch_all = None
        for catch_event in _catch_events(ctx.element_of(instance)):
            catch_code = _catch_code(catch_event)
            if catch_code == code:
                return instance.key, catch_event
            if catch_code is None and catch_all is None:
                catch_all = catch_event
        if catch_all is not None:
            return instance.key, catch_all
    return None


def throw_escalation(ctx: ProcessingContext, instance: ElementInstance, element: Any, code: str) -> bool:
    """Throw `code` from the (activated) throw event `instance`; True if the thrower goes on."""
    found = find_escalation_catch(ctx, instance.key, code)
    value = {
        "processInstanceKey": instance.process_instance_key,
        "escalationCode": code,
        "throwElementId": instance.element_id,
        "catchElementId": found[1].id if found is not None else "",
    }
    if found is None:
        ctx.emit("ESCALATION", "NOT_ESCALATED", ctx.state.new_key(), value)
        return True
    ctx.emit("ESCALATION", "ESCALATED", ctx.state.new_key(), value)
    owner_key, catch_event = found
    trigger(ctx, owner_key, catch_event, None)
    thrower = ctx.state.element_instances.get(instance.key)
    return thrower is not None and thrower.state == "ELEMENT_ACTIVATED"
