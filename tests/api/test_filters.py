"""processes.filters on PostgreSQL: every filter of issue 11's contract narrows as documented, and bad
input is a field error (never a silent "no filter")."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from processes.choices import IncidentState, InstanceState
from processes.filters import IncidentFilterSet, ProcessInstanceFilterSet, filter_queryset, parse_global_key
from processes.models import Incident, ProcessInstance
from routing.keys import to_global
from tests.api import data

pytestmark = pytest.mark.django_db


def keys(filters: dict[str, str]) -> set[int]:
    filterset = ProcessInstanceFilterSet(data=filters, queryset=ProcessInstance.objects.all())
    assert filterset.is_valid(), filterset.errors
    return set(filterset.qs.values_list("key", flat=True))


def errors(filters: dict[str, str], filterset_class=ProcessInstanceFilterSet) -> dict:
    filterset = filterset_class(data=filters, queryset=filterset_class._meta.model.objects.all())
    assert not filterset.is_valid()
    return filterset.errors


@pytest.fixture
def fleet():
    root = data.instance(bpmn_process_id="provision", version=2, minutes=0, server_serial="SN-A")
    child = data.instance(parent=root, bpmn_process_id="firmware", minutes=1)
    grandchild = data.instance(parent=child, bpmn_process_id="flash", minutes=2)
    done = data.instance(bpmn_process_id="provision", version=1, state=InstanceState.COMPLETED, minutes=10)
    canceled = data.instance(
        cluster_id=2,
        bpmn_process_id="decommission",
        state=InstanceState.TERMINATED,
        minutes=20,
        server_serial="SN-B",
    )
    step = data.element(grandchild, element_id="flash-bios")
    data.incident_on(step, error_type="JOB_NO_RETRIES", error_message="BIOS flash timed out")
    resolved_step = data.element(done)
    data.incident_on(resolved_step, error_message="old failure", state=IncidentState.RESOLVED)
    data.variable(root, "serverSn", "SN-A")
    data.variable(done, "attempts", 3)
    data.variable(canceled, "meta", {"rack": "r1"})
    return {"root": root, "child": child, "grandchild": grandchild, "done": done, "canceled": canceled}


def test_each_instance_filter(fleet):
    f = {name: row.key for name, row in fleet.items()}
    assert keys({}) == set(f.values())
    assert keys({"bpmn_process_id": "provision"}) == {f["root"], f["done"]}
    assert keys({"bpmn_process_id": "provision", "version": "2"}) == {f["root"]}
    assert keys({"state": "active"}) == {f["root"], f["child"], f["grandchild"]}
    assert keys({"state": "completed"}) == {f["done"]}
    assert keys({"state": "canceled"}) == {f["canceled"]}
    assert keys({"incident": "true"}) == {f["root"], f["child"], f["grandchild"]}
    assert keys({"incident": "false"}) == {f["done"], f["canceled"]}
    assert keys({"cluster": "2"}) == {f["canceled"]}
    assert keys({"server": "SN-A"}) == {f["root"], f["child"], f["grandchild"]}
    assert keys({"root_key": str(f["root"])}) == {f["root"], f["child"], f["grandchild"]}
    assert keys({"parent_key": str(f["child"])}) == {f["grandchild"]}
    assert keys({"roots_only": "true"}) == {f["root"], f["done"], f["canceled"]}
    assert keys({"roots_only": "false"}) == set(f.values())
    assert keys({"roots_only": "unknown"}) == set(f.values())  # the console's "either" choice
    assert keys({"roots_only": "TRUE"}) == {f["root"], f["done"], f["canceled"]}
    after = (data.BASE_TIME + timedelta(minutes=10)).isoformat()
    assert keys({"started_after": after}) == {f["done"], f["canceled"]}
    assert keys({"started_before": after}) == {f["root"], f["child"], f["grandchild"]}
    # Active incidents only; the root of the tree with the incident matches as well as its owner.
    assert keys({"error_message": "bios FLASH"}) == {f["root"], f["grandchild"]}
    assert keys({"error_message": "old failure"}) == set()
    assert keys({"variable_name": "serverSn"}) == {f["root"]}
    assert keys({"variable_name": "serverSn", "variable_value": "SN-A"}) == {f["root"]}
    assert keys({"variable_name": "serverSn", "variable_value": '"SN-A"'}) == {f["root"]}
    assert keys({"variable_name": "attempts", "variable_value": "3"}) == {f["done"]}
    assert keys({"variable_name": "attempts", "variable_value": "4"}) == set()
    assert keys({"variable_name": "meta", "variable_value": '{"rack": "r1"}'}) == {f["canceled"]}
    assert keys({"roots_only": "true", "state": "active", "server": "SN-A"}) == {f["root"]}


@pytest.mark.parametrize(
    ("filters", "field", "fragment"),
    [
        ({"root_key": "abc"}, "root_key", "not a key"),
        ({"root_key": "-5"}, "root_key", "not a key"),
        ({"parent_key": "1.5"}, "parent_key", "not a key"),
        ({"root_key": "99999999999999999999"}, "root_key", "64-bit"),
        ({"root_key": "12345"}, "root_key", "cluster id 0"),
        ({"root_key": str(to_global(9, 77))}, "root_key", "not a known cluster"),
        ({"state": "running"}, "state", "valid choice"),
        ({"state": "terminated"}, "state", "valid choice"),
        ({"incident": "maybe"}, "incident", "not a boolean"),
        ({"roots_only": "yes"}, "roots_only", "not a boolean"),
        ({"roots_only": "1"}, "roots_only", "not a boolean"),
        ({"version": "two"}, "version", "whole number"),
        ({"version": "1.5"}, "version", "whole number"),
        ({"cluster": "9"}, "cluster", "valid choice"),
        ({"cluster": "x"}, "cluster", "valid choice"),
        ({"started_after": "yesterday"}, "started_after", "valid date"),
        ({"variable_value": "1"}, "variable_value", "needs variable_name"),
    ],
)
def test_bad_instance_filter_is_a_field_error(fleet, filters, field, fragment):
    found = errors(filters)
    assert field in found, found
    assert fragment in " ".join(found[field]), found


def test_started_range_must_be_ordered(fleet):
    found = errors({"started_after": "2026-02-01T00:00:00Z", "started_before": "2026-01-01T00:00:00Z"})
    assert "started_before" in found


def test_incident_filters(fleet):
    other = data.element(fleet["canceled"], element_id="unplug")
    mapping = data.incident_on(other, error_type="IO_MAPPING_ERROR", error_message="no variable rack")

    def incident_keys(filters):
        filterset = IncidentFilterSet(data=filters, queryset=Incident.objects.all())
        assert filterset.is_valid(), filterset.errors
        return set(filterset.qs.values_list("key", flat=True))

    everything = set(Incident.objects.values_list("key", flat=True))
    assert len(everything) == 3
    active = set(Incident.objects.filter(state="active").values_list("key", flat=True))
    assert incident_keys({"state": "active"}) == active
    assert incident_keys({"error_type": "IO_MAPPING_ERROR"}) == {mapping.key}
    assert incident_keys({"error_message": "RACK"}) == {mapping.key}
    assert incident_keys({"bpmn_process_id": "decommission"}) == {mapping.key}
    assert incident_keys({"cluster": "2"}) == {mapping.key}
    assert incident_keys({"server": "SN-B"}) == {mapping.key}
    assert incident_keys({"server": "SN-A"}) == set(
        Incident.objects.filter(bpmn_process_id="flash").values_list("key", flat=True)
    )
    assert errors({"state": "open"}, IncidentFilterSet).keys() == {"state"}
    assert errors({"cluster": "30"}, IncidentFilterSet).keys() == {"cluster"}


def test_filter_queryset_from_dict_for_batches(fleet):
    found = filter_queryset(
        ProcessInstanceFilterSet, {"roots_only": True, "version": 2}, ProcessInstance.objects.all()
    )
    assert set(found.values_list("key", flat=True)) == {fleet["root"].key}
    with pytest.raises(ValidationError) as raised:
        filter_queryset(ProcessInstanceFilterSet, {"stat": "active"}, ProcessInstance.objects.all())
    assert "stat" in raised.value.message_dict
    with pytest.raises(ValidationError) as raised:
        filter_queryset(ProcessInstanceFilterSet, {"root_key": "x"}, ProcessInstance.objects.all())
    assert "root_key" in raised.value.message_dict
    with pytest.raises(ValidationError):
        filter_queryset(ProcessInstanceFilterSet, ["state"], ProcessInstance.objects.all())  # type: ignore[arg-type]


def test_parse_global_key_accepts_string_and_int(fleet):
    key = fleet["root"].key
    assert parse_global_key(str(key)) == key
    assert parse_global_key(f" {key} ") == key
    assert parse_global_key(key) == key
    with pytest.raises(ValidationError):
        parse_global_key(True)
