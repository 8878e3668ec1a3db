"""PROCESS_INSTANCE_BATCH ACTIVATE (Zeebe's ProcessInstanceBatchActivateProcessor): the next
slice of inner instances of a parallel multi-instance body, one command per slice, written by
the broker loop for bodies whose collection is larger than one slice."""

from __future__ import annotations

from engine.processing.command import Command
from engine.processing.context import ProcessingContext
from engine.processing.elements.multi_instance import activate_next_slice
from engine.processing.registry import processor


@processor("PROCESS_INSTANCE_BATCH", "ACTIVATE")
def activate_batch(ctx: ProcessingContext, command: Command) -> int:
    return activate_next_slice(ctx, command.key)
