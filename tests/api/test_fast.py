"""The fast read path (processes/api/fast.py) answers exactly what DRF's generic serializer does."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from processes.api import serializers as api
from processes.api.fast import FastRepresentationMixin
from processes.models import ElementInstance, Incident, Job, ProcessInstance, Variable
from processes.operations.models import Operation
from processes.selectors import process_instance_detail
from servers.models import Server
from tests.api import data
from tests.api.world import build_world

pytestmark = pytest.mark.django_db


def test_fast_representation_equals_drf(db):
    world = build_world(fan_out=2)
    data.variable(world.root, "nested", {"a": [1, 2.5, None], "b": "x"})
    ProcessInstance.objects.filter(pk=world.child.pk).update(start_date=None, server=None)
    cases = [
        (api.ProcessInstanceSerializer, ProcessInstance.objects.all(), {}),
        (api.ProcessInstanceDetailSerializer, process_instance_detail(), {}),
        (
            api.TimelineInstanceSerializer,
            ProcessInstance.objects.all(),
            {"steps": {world.root.key: [world.step]}},
        ),
        (api.ElementInstanceSerializer, ElementInstance.objects.all(), {}),
        (api.VariableSerializer, Variable.objects.all(), {}),
        (api.JobSerializer, Job.objects.all(), {}),
        (api.IncidentSerializer, Incident.objects.all(), {}),
        (api.ServerSerializer, Server.objects.all(), {}),
        (api.OperationSerializer, Operation.objects.all(), {}),
    ]
    compared = 0
    for serializer_class, rows, context in cases:
        assert issubclass(serializer_class, FastRepresentationMixin)
        serializer = serializer_class(context=context)
        for row in rows:
            fast = serializer.to_representation(row)
            generic = dict(serializers.ModelSerializer.to_representation(serializer, row))
            assert fast == generic, serializer_class.__name__
            assert list(fast) == list(generic)
            compared += 1
    assert compared > 40
