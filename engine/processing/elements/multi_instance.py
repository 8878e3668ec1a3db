"""Multi-instance activities (reference §5.2; Zeebe's MultiInstanceBodyProcessor).

An activity with `multiInstanceLoopCharacteristics` is activated as a MULTI_INSTANCE_BODY
element instance (same element id) that owns the activity's boundary events; the activity runs
inside it as inner instances, one per item of `inputCollection`: all at once (parallel) or one
after the other (sequential). Each inner instance gets the local variables `loopCounter`
(1-based) and, when `inputElement` is set, the item. `outputCollection` is a local variable of
the body, initialised with one null per item; when an inner instance completes, its
`outputElement` is written at its `loopCounter`. After each inner completion the
`completionCondition` is evaluated in the inner instance's scope, with `numberOfInstances`,
`numberOfActiveInstances`, `numberOfCompletedInstances` and `numberOfTerminatedInstances`
(the completing instance counted as completed); true terminates the other inner instances.
The body completes when no inner instance is left, and propagates `outputCollection` to its
flow scope.

The input collection is evaluated at activation and kept on the body while the variables it
reads are unchanged (`_collection`): an inner completion costs no evaluation of the whole list,
and a changed collection variable is still read again, as Zeebe does.

`transitions` knows only two things about it: an element with loop characteristics that is not
activated inside its own body becomes a body, and an inner instance that completes hands its
path back to the body instead of taking the outgoing flows.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from engine.feel import compile_expression
from engine.processing.command import MappingFailure
from engine.processing.context import ProcessingContext
from engine.processing.expressions import evaluate
from engine.processing.registry import behavior
from engine.processing.state import ElementInstance, ProcessInfo
from engine.processing.subscriptions import close_subscriptions, open_subscriptions
from engine.processing.transitions import (
    BaseBehavior,
    activate_element,
    check_scope_completion,
    queue_complete,
    take_outgoing,
    terminate_children,
)
from engine.processing.variables import merge_variables, set_variable
from engine.values import feel_type_name

#: Inner instances a parallel body activates per command: its activation creates the first
#: slice, the broker loop writes one PROCESS_INSTANCE_BATCH ACTIVATE command per further slice
#: (processors/multi_instance.py), so a huge collection does not hold the partition (and every
#: other client of it) for one giant command. 10,000 inner instances in one command took 4 s.
PARALLEL_SLICE = 1000

#: child key -> the completion condition held when that inner instance completed (evaluated
#: in its scope, before its variables are removed; read by `on_child_completed` in the same
#: command, so an in-memory hand-over is enough).
_CONDITION_MET: dict[int, bool] = {}


#: FEEL functions whose result is not a function of the variables alone (`now()`, `today()`,
#: `random number()`): an input collection that may call one is evaluated every time.
_VOLATILE = re.compile(r"\b(now|today|random)\b")


def input_items(ctx: ProcessingContext, body: ElementInstance, element: Any) -> list[Any]:
    """The evaluated `inputCollection`; `MappingFailure` (EXTRACT_VALUE_ERROR) unless a list."""
    return _collection(ctx.state, body, element)


def _collection(state: Any, body: ElementInstance, element: Any) -> list[Any]:
    """The body's input collection, evaluated once and then kept on the body.

    Zeebe reads the input collection again whenever it needs it (the next sequential item, the
    completion check), so a collection variable changed while the body runs changes the items
    still to come. The engine keeps that, but an evaluation converts the whole list (twice:
    to FEEL values and back), so a sequential body over n items cost n evaluations of an
    n-item list. The result is kept on the body (`ElementInstance.mi_items`) together with the
    Variable objects the expression read, and reused while those are still the visible ones:
    each VARIABLE CREATED/UPDATED applier makes a new Variable, so the same objects mean the
    same values and the same result. A restart or rollback starts without it and evaluates
    once; nothing of it is written, so replay and snapshots are unchanged.
    """
    expression = element.multi_instance.input_collection
    sources = _sources(state, body.key, expression)
    kept = body.mi_items
    if sources is not None and kept is not None and _same_objects(kept[0], sources):
        items: list[Any] = kept[1]
        return items
    value = evaluate(expression, state.visible_variables(body.key), "EXTRACT_VALUE_ERROR")
    if not isinstance(value, list):
        body.mi_items = None
        raise MappingFailure(
            "EXTRACT_VALUE_ERROR",
            f"Expected result of the expression '{expression.text.strip()}' to be 'ARRAY', "
            f"but was '{feel_type_name(value)}'.",
        )
    body.mi_items = None if sources is None else (sources, value)
    return value


def _sources(state: Any, scope_key: int, expression: Any) -> tuple[Any, ...] | None:
    """The Variable objects (None where undefined) `expression` reads, as seen from the scope;
    None when its result may change without them (static text, `now()`, `random number()`)."""
    if not expression.is_feel or _VOLATILE.search(expression.text):
        return None
    try:
        compiled = expression.compiled or compile_expression(expression.text)
    except Exception:  # a syntax error: the evaluation itself raises it as the incident
        return None
    chain = state.scope_chain(scope_key)
    found: list[Any] = []
    for name in sorted(compiled.referenced_names()):
        variable = None
        for scope in chain:  # innermost first: the definition the evaluation sees
            variable = state.variables.get(scope, {}).get(name)
            if variable is not None:
                break
        found.append(variable)
    return tuple(found)


def _same_objects(kept: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))


def _items_left(state: Any, body: ElementInstance, element: Any) -> int:
    """Items of the input collection that have no inner instance yet (0 when it cannot be
    evaluated: the body's own evaluation raises that incident)."""
    try:
        return max(len(_collection(state, body, element)) - body.mi_created, 0)
    except MappingFailure:
        return 0


@behavior("MULTI_INSTANCE_BODY")
class MultiInstanceBodyBehavior(BaseBehavior):
    def activate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        characteristics = element.multi_instance
        items = input_items(ctx, instance, element)  # before anything is written
        open_subscriptions(ctx, instance, element)
        proc = ProcessInfo.of(instance)
        if characteristics.output_collection:
            set_variable(ctx, instance.key, characteristics.output_collection, [None] * len(items), proc)
        ctx.emit_pi(instance, "ELEMENT_ACTIVATED")
        if not items:
            queue_complete(ctx, instance.key)
        elif characteristics.is_sequential:
            _queue_inner(ctx, instance, element, items, 0, 1)
        else:
            _queue_inner(ctx, instance, element, items, 0, PARALLEL_SLICE)

    def on_child_completing(
        self, ctx: ProcessingContext, body: ElementInstance, element: Any, child: ElementInstance
    ) -> None:
        """An inner instance completed its output mappings: collect its output element and
        evaluate the completion condition while its variables still exist."""
        characteristics = element.multi_instance
        visible = ctx.state.visible_variables(child.key)
        if characteristics.output_collection and characteristics.output_element is not None:
            output = evaluate(characteristics.output_element, visible, "EXTRACT_VALUE_ERROR")
            loop_counter = visible.get("loopCounter")
            current = ctx.state.variables.get(body.key, {}).get(characteristics.output_collection)
            collection = (
                list(current.value) if current is not None and isinstance(current.value, list) else []
            )
            if isinstance(loop_counter, int) and 1 <= loop_counter <= len(collection):
                collection[loop_counter - 1] = output
                set_variable(
                    ctx, body.key, characteristics.output_collection, collection, ProcessInfo.of(body)
                )
        if characteristics.completion_condition is not None:
            active = len(ctx.state.children.get(body.key, {}))
            context = dict(visible)
            context.update(
                numberOfInstances=_number_of_instances(ctx, body, element),
                numberOfActiveInstances=max(active - 1, 0),
                numberOfCompletedInstances=body.mi_completed + 1,
                numberOfTerminatedInstances=body.mi_terminated,
            )
            met = evaluate(characteristics.completion_condition, context, "EXTRACT_VALUE_ERROR")
            if not isinstance(met, bool):
                raise MappingFailure(
                    "EXTRACT_VALUE_ERROR",
                    f"Expected result of the expression '{characteristics.completion_condition.text.strip()}' "
                    f"to be 'BOOLEAN', but was '{feel_type_name(met)}'.",
                )
            _CONDITION_MET[child.key] = met

    def on_child_completed(
        self, ctx: ProcessingContext, scope: ElementInstance, element: Any, child: ElementInstance | None
    ) -> None:
        met = _CONDITION_MET.pop(child.key, False) if child is not None else False
        if scope.state != "ELEMENT_ACTIVATED":
            return
        if met:
            terminate_children(ctx, scope.key)
        elif element.multi_instance.is_sequential and child is not None:
            # The next item of the collection as it is now (Zeebe re-reads it too); a
            # collection that went away or shrank has nothing more to run.
            if _items_left(ctx.state, scope, element):
                items = _collection(ctx.state, scope, element)
                _queue_inner(ctx, scope, element, items, scope.mi_created, 1)
                return
        elif not ctx.state.children.get(scope.key) and _items_left(ctx.state, scope, element):
            return  # a parallel body whose next slice the broker loop has yet to activate
        check_scope_completion(ctx, scope.key)

    def complete(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)
        name = element.multi_instance.output_collection
        if name:
            variable = ctx.state.variables.get(instance.key, {}).get(name)
            if variable is not None and instance.flow_scope_key > 0:
                merge_variables(
                    ctx, instance.flow_scope_key, {name: variable.value}, ProcessInfo.of(instance)
                )
        ctx.emit_pi(instance, "ELEMENT_COMPLETED")
        take_outgoing(ctx, instance, element)

    def terminate(self, ctx: ProcessingContext, instance: ElementInstance, element: Any) -> None:
        close_subscriptions(ctx, instance, element)


def _number_of_instances(ctx: ProcessingContext, body: ElementInstance, element: Any) -> int:
    name = element.multi_instance.output_collection
    if name:
        variable = ctx.state.variables.get(body.key, {}).get(name)
        if variable is not None and isinstance(variable.value, list):
            return len(variable.value)
    try:
        return len(_collection(ctx.state, body, element))
    except MappingFailure:
        return body.mi_created


def _queue_inner(
    ctx: ProcessingContext, body: ElementInstance, element: Any, items: list[Any], start: int, count: int
) -> None:
    ctx.queue.append(functools.partial(_activate_inner, ctx, body.key, element, items, start, count))


def _activate_inner(
    ctx: ProcessingContext, body_key: int, element: Any, items: list[Any], start: int, count: int
) -> None:
    """Activate inner instances `start` .. `start + count - 1`; the rest of a parallel body is
    queued as the next slice."""
    body = ctx.state.element_instances.get(body_key)
    if body is None or body.state != "ELEMENT_ACTIVATED":
        return
    proc = ProcessInfo.of(body)
    input_element = element.multi_instance.input_element
    end = min(start + count, len(items))
    for index in range(start, end):
        key = ctx.state.new_key()
        # The inner instance's local variables exist before it activates (its input mappings
        # may read them), as in Zeebe.
        set_variable(ctx, key, "loopCounter", index + 1, proc)
        if input_element:
            set_variable(ctx, key, input_element, items[index], proc)
        activate_element(ctx, element, body_key, proc, key=key)


def body_needs_next_slice(state: Any, body_key: int) -> bool:
    """For the broker loop: does this multi-instance body wait for its next slice?"""
    body = state.element_instances.get(body_key)
    if body is None or body.state != "ELEMENT_ACTIVATED" or body.element_type != "MULTI_INSTANCE_BODY":
        return False
    element = state.model(body.process_definition_key).elements_by_id[body.element_id]
    return not element.multi_instance.is_sequential and _items_left(state, body, element) > 0


def activate_next_slice(ctx: ProcessingContext, body_key: int) -> int:
    """PROCESS_INSTANCE_BATCH ACTIVATE: the next slice of a parallel body; how many started."""
    body = ctx.state.element_instances.get(body_key)
    if body is None or body.state != "ELEMENT_ACTIVATED" or body.element_type != "MULTI_INSTANCE_BODY":
        return 0
    element = ctx.element_of(body)
    if element.multi_instance.is_sequential or not _items_left(ctx.state, body, element):
        return 0
    items = _collection(ctx.state, body, element)
    start = body.mi_created
    _activate_inner(ctx, body_key, element, items, start, PARALLEL_SLICE)
    return min(len(items), start + PARALLEL_SLICE) - start
