"""Error catching (reference §5.2 "Error events"): find the boundary event or event
sub-process that catches an error code, scope by scope upward and into calling parents
(subscriptions.catch_search_path, which stops at an interrupted scope as Zeebe does), and
trigger it; otherwise the caller raises UNHANDLED_ERROR_EVENT with Zeebe's message."""

from __future__ import annotations

from typing import Any

from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.incidents import raise_incident
from engine.processing.registry import SearchedTrigger, trigger_kind
from engine.processing.state import ElementInstance
from engine.processing.subscriptions import catch_search_path, trigger
from engine.values import feel_type_name


@trigger_kind("ERROR")
class ErrorTrigger(SearchedTrigger):
    """Error catch events need no subscription: a thrown error searches for them."""


def find_error_catch(ctx: ProcessingContext, start_key: int, error_code: str) -> tuple[int, Any] | None:
    """(owner instance key, catch event) of the innermost catch for `error_code`, or None.

    At each instance of the search path (subscriptions.catch_search_path): the error start events of its
    event sub-processes, then its error boundary events; a catch for the code beats a
    catch-all at the same instance (reference §5.2 "Error events")."""
    for instance in catch_search_path(ctx, start_key):
        catch = _match_error_catch(error_catch_events(ctx.element_of(instance), instance), error_code)
        if catch is not None:
            return instance.key, catch
    return None


def error_catch_events(element: Any, instance: ElementInstance | None = None) -> list[Any]:
    """The error catch events an instance of `element` owns, in search order (a
    multi-instance activity's boundary events belong to its body)."""
    if getattr(element, "multi_instance", None) is not None:
        boundaries = instance is not None and instance.element_type == "MULTI_INSTANCE_BODY"
        if boundaries:
            return [b for b in element.boundary_events if b.event_type.value == "ERROR"]
        element_boundaries: Any = ()
    else:
        element_boundaries = element.boundary_events
    events = [
        start
        for sub_process in getattr(element, "event_sub_processes", ())
        for start in getattr(sub_process, "start_events", ())
        if start.event_type.value == "ERROR"
    ]
    events.extend(boundary for boundary in element_boundaries if boundary.event_type.value == "ERROR")
    return events


def available_error_events(ctx: ProcessingContext, start_key: int) -> list[str]:
    return [
        catch.error_code or ""
        for instance in catch_search_path(ctx, start_key)
        for catch in error_catch_events(ctx.element_of(instance), instance)
    ]


def throw_error(ctx: ProcessingContext, start_key: int, error_code: str, variables: dict[str, Any]) -> bool:
    """Throw from the instance `start_key`; False if nothing catches it."""
    found = find_error_catch(ctx, start_key, error_code)
    if found is None:
        return False
    owner_key, catch_event = found
    trigger(ctx, owner_key, catch_event, variables)
    return True


def unhandled_error_message(
    ctx: ProcessingContext, start_key: int, error_code: str, error_message: str
) -> str:
    message_part = f" with message '{error_message}'" if error_message else ""
    available = available_error_events(ctx, start_key)
    if available:
        tail = " Available error events are [" + ", ".join(available) + "]"
    else:
        tail = " No error events are available in the scope."
    return f"Expected to throw an error event with the code '{error_code}'{message_part}, but it was not caught.{tail}"


def throw_end_event_error(ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
    """An error end event throws its (static or FEEL) error code."""
    code = element.error_code
    if code is None and element.error_code_expression is not None:
        variables = ctx.state.visible_variables(instance.flow_scope_key)
        code = evaluate(element.error_code_expression, variables, "EXTRACT_VALUE_ERROR")
        if not isinstance(code, str):
            raise MappingFailure(
                "EXTRACT_VALUE_ERROR",
                f"Expected result of the expression '{element.error_code_expression.text}' to be 'STRING', "
                f"but was '{feel_type_name(code)}'.",
            )
    code = code or ""
    if not throw_error(ctx, instance.key, code, {}):
        message = unhandled_error_message(ctx, instance.key, code, "")
        raise_incident(ctx, instance, "UNHANDLED_ERROR_EVENT", message)


def _match_error_catch(catch_events: list[Any], error_code: str) -> Any:
    catch_all = None
    for catch in catch_events:
        if catch.error_code is None:
            if catch_all is None:
                catch_all = catch
        elif catch.error_code == error_code:
            return catch
    return catch_all
