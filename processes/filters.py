"""Filters of the processes app: one definition per list, shared by the REST API, the console lists and
batch operations (CONVENTIONS §5, issue 11's contract for the names).

Keys arrive as strings (global keys exceed 2**53, DESIGN §2) and are validated: a value that is not a
number, a key outside int64, a key whose high bits name cluster 0 or a cluster that does not exist is
a field error naming the filter, never an empty result that looks like "nothing matched".
"""

from __future__ import annotations

import json
import re
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from drf_spectacular.utils import extend_schema_field

from processes.choices import INCIDENT_ACTIVE_STATES, IncidentState, InstanceState
from processes.models import Cluster, Incident, ProcessInstance, Variable
from routing.keys import KeyCodecError, UnknownClusterError, from_global

_DIGITS = re.compile(r"^[0-9]{1,20}$")

# The API speaks Zeebe's/Operate's word for an ended-by-cancel instance; the model stores the
# PROCESS_INSTANCE intent family name (terminated), which is what a canceled instance ends in.
INSTANCE_STATE_FILTER_CHOICES = [
    ("active", "Active"),
    ("completed", "Completed"),
    ("canceled", "Canceled"),
]
INSTANCE_STATE_BY_FILTER_VALUE = {
    "active": InstanceState.ACTIVE,
    "completed": InstanceState.COMPLETED,
    "canceled": InstanceState.TERMINATED,
}
INSTANCE_STATE_API_NAME: dict[str, str] = {
    str(model): api for api, model in INSTANCE_STATE_BY_FILTER_VALUE.items()
}

# A variable_value longer than this cannot be an inline (preview-sized) value anyway.
VARIABLE_VALUE_MAX_LENGTH = 8192


def parse_global_key(value: object) -> int:
    """Parse a global key given as a string (or int); raises ValidationError with a readable reason.

    Checks the codec (DESIGN §2) and that the cluster in the key's high bits exists; used by the
    filters, the API's path parameters and its action inputs.
    """
    if isinstance(value, bool):
        raise ValidationError("A key must be a decimal number given as a string.", code="invalid_key")
    text = str(value).strip()
    if not _DIGITS.match(text):
        raise ValidationError(
            f"{text[:40]!r} is not a key: keys are positive decimal numbers (given as strings).",
            code="invalid_key",
        )
    try:
        cluster_id, _zeebe_key = from_global(int(text))
    except UnknownClusterError as error:
        raise ValidationError(str(error), code="unknown_cluster") from error
    except KeyCodecError as error:
        raise ValidationError(str(error), code="invalid_key") from error
    if not Cluster.objects.filter(pk=cluster_id).exists():
        raise ValidationError(
            f"Key {text} belongs to cluster {cluster_id}, which is not a known cluster.",
            code="unknown_cluster",
        )
    return int(text)


class GlobalKeyFormField(forms.CharField):
    """A form field for a global key given as a string; cleans to an int."""

    def clean(self, value: Any) -> int | None:
        value = super().clean(value)
        if value in (None, ""):
            return None
        return parse_global_key(value)


class StrictBooleanFormField(forms.Field):
    """true/false (or 1/0); anything else is an error (Django's NullBooleanField reads it as "no filter")."""

    TRUE_VALUES = frozenset({"true"})
    FALSE_VALUES = frozenset({"false"})
    # What django-filter's NullBooleanSelect submits for "either" (console forms render that widget).
    EITHER_VALUES = frozenset({"unknown"})

    def clean(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in self.EITHER_VALUES:
            return None
        if text in self.TRUE_VALUES:
            return True
        if text in self.FALSE_VALUES:
            return False
        raise ValidationError(f"{str(value)[:40]!r} is not a boolean: use true or false.", code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


@extend_schema_field({"type": "string", "pattern": "^[0-9]{1,20}$", "description": "A global key (string)."})
class GlobalKeyFilter(django_filters.Filter):
    """Exact match on a global-key column, the key validated by :func:`parse_global_key`."""

    field_class = GlobalKeyFormField


def parse_variable_value(text: str) -> Any:
    """A variable value as typed in a filter: JSON if it parses (42, true, "a b", {"x": 1}), else the
    plain string, so ``variable_value=SN123`` matches the string "SN123" without quoting."""
    try:
        return json.loads(text)
    except ValueError:
        return text


class ProcessInstanceFilterForm(forms.Form):
    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        name, value = cleaned.get("variable_name"), cleaned.get("variable_value")
        if value not in (None, "") and not name:
            self.add_error("variable_value", "variable_value needs variable_name.")
        started_after, started_before = cleaned.get("started_after"), cleaned.get("started_before")
        if started_after and started_before and started_after > started_before:
            self.add_error("started_before", "started_before is earlier than started_after.")
        return cleaned


class ProcessInstanceFilterSet(django_filters.FilterSet):
    """Instance list filters (DESIGN §7; issue 11). Every filter narrows by an indexed column or by a
    key subquery on an indexed column; ordering and pagination are the caller's (newest first)."""

    bpmn_process_id = django_filters.CharFilter(field_name="bpmn_process_id", max_length=255)
    version = IntegerFilter(field_name="version", min_value=0, max_value=2**31 - 1)
    state = django_filters.ChoiceFilter(choices=INSTANCE_STATE_FILTER_CHOICES, method="filter_state")
    incident = StrictBooleanFilter(
        field_name="subtree_incident",
        help_text="True: the instance or an instance it called has an active incident.",
    )
    cluster = django_filters.ModelChoiceFilter(field_name="cluster", queryset=Cluster.objects.all())
    server = django_filters.CharFilter(field_name="server_id", max_length=128, help_text="Serial number.")
    root_key = GlobalKeyFilter(field_name="root_id")
    parent_key = GlobalKeyFilter(field_name="parent_id")
    roots_only = StrictBooleanFilter(method="filter_roots_only", help_text="Only top-level instances.")
    started_after = django_filters.IsoDateTimeFilter(field_name="start_date", lookup_expr="gte")
    started_before = django_filters.IsoDateTimeFilter(field_name="start_date", lookup_expr="lt")
    error_message = django_filters.CharFilter(
        method="filter_error_message",
        max_length=1000,
        help_text="Substring of an active incident's message, on the instance itself or in its tree "
        "(the root of a tree with such an incident matches too).",
    )
    variable_name = django_filters.CharFilter(method="filter_variable", max_length=255)
    variable_value = django_filters.CharFilter(
        method="filter_noop",
        max_length=VARIABLE_VALUE_MAX_LENGTH,
        help_text="With variable_name: JSON value (or a plain string) the variable equals. Values "
        "above the inline preview size are not compared.",
    )

    class Meta:
        model = ProcessInstance
        form = ProcessInstanceFilterForm
        fields: list[str] = []

    def filter_state(
        self, queryset: QuerySet[ProcessInstance], name: str, value: str
    ) -> QuerySet[ProcessInstance]:
        if not value:
            return queryset
        return queryset.filter(state=INSTANCE_STATE_BY_FILTER_VALUE[value])

    def filter_roots_only(
        self, queryset: QuerySet[ProcessInstance], name: str, value: bool | None
    ) -> QuerySet[ProcessInstance]:
        if value:
            return queryset.filter(parent__isnull=True)
        return queryset

    def filter_error_message(
        self, queryset: QuerySet[ProcessInstance], name: str, value: str
    ) -> QuerySet[ProcessInstance]:
        if not value:
            return queryset
        incidents = Incident.objects.filter(state__in=INCIDENT_ACTIVE_STATES, error_message__icontains=value)
        return queryset.filter(
            Q(key__in=incidents.values("process_instance_id")) | Q(key__in=incidents.values("root_key"))
        )

    def filter_variable(
        self, queryset: QuerySet[ProcessInstance], name: str, value: str
    ) -> QuerySet[ProcessInstance]:
        if not value:
            return queryset
        variables = Variable.objects.filter(name=value)  # variable_name_idx
        raw_value = self.form.cleaned_data.get("variable_value")
        if raw_value not in (None, ""):
            variables = variables.filter(value=parse_variable_value(raw_value))
        return queryset.filter(key__in=variables.values("process_instance_id"))

    def filter_noop(
        self, queryset: QuerySet[ProcessInstance], name: str, value: str
    ) -> QuerySet[ProcessInstance]:
        # variable_value is applied together with variable_name in filter_variable.
        return queryset


class IncidentFilterSet(django_filters.FilterSet):
    """Incident list filters (issue 11). ``server`` narrows to incidents of the server's instances."""

    state = django_filters.ChoiceFilter(field_name="state", choices=IncidentState.choices)
    error_type = django_filters.CharFilter(field_name="error_type", max_length=64)
    error_message = django_filters.CharFilter(
        field_name="error_message", lookup_expr="icontains", max_length=1000
    )
    bpmn_process_id = django_filters.CharFilter(field_name="bpmn_process_id", max_length=255)
    cluster = django_filters.ModelChoiceFilter(field_name="cluster", queryset=Cluster.objects.all())
    server = django_filters.CharFilter(method="filter_server", max_length=128, help_text="Serial number.")
    process_instance_key = GlobalKeyFilter(field_name="process_instance_id")
    root_key = GlobalKeyFilter(field_name="root_key")

    class Meta:
        model = Incident
        fields: list[str] = []

    def filter_server(self, queryset: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        if not value:
            return queryset
        return queryset.filter(
            process_instance_id__in=ProcessInstance.objects.filter(server_id=value).values("key")
        )


def filter_queryset(
    filterset_class: type[django_filters.FilterSet], data: dict[str, Any], queryset: QuerySet[Any]
) -> QuerySet[Any]:
    """Apply a FilterSet to a plain dict (batch operations store their selection as such a dict).

    Raises ValidationError with the per-field errors when the dict is not a valid filter, including
    names the FilterSet does not know (a typo must not widen a batch to every instance).
    """
    if not isinstance(data, dict):
        raise ValidationError({"filter": ["The filter must be a JSON object."]})
    unknown = sorted(set(data) - set(filterset_class.base_filters))
    if unknown:
        raise ValidationError({name: ["Unknown filter."] for name in unknown})
    as_strings = {
        name: (json.dumps(value) if isinstance(value, bool) else str(value)) for name, value in data.items()
    }
    filterset = filterset_class(data=as_strings, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationError(
            {name: [str(message) for message in messages] for name, messages in filterset.errors.items()}
        )
    return filterset.qs
