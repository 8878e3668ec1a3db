"""Serializers of the API. Keys are KeyFields (JSON strings); related rows appear by key, never nested,
so a list needs no join (every key is a column of the listed row)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from processes.api.fast import FastRepresentationMixin
from processes.api.fields import KeyField
from processes.filters import INSTANCE_STATE_API_NAME
from processes.models import (
    Cluster,
    ElementInstance,
    Incident,
    Job,
    ProcessDefinition,
    ProcessInstance,
    Variable,
)
from processes.operations.models import BatchOperation, Operation
from processes.operations.selectors import batch_progress
from servers.models import Server


class PartitionLagSerializer(serializers.Serializer):
    partition_id = serializers.IntegerField()
    position = serializers.IntegerField()
    last_record_timestamp = serializers.DateTimeField(allow_null=True)
    lag_seconds = serializers.FloatField(allow_null=True)
    imported_count = serializers.IntegerField()
    skipped_count = serializers.IntegerField()
    error_count = serializers.IntegerField()


HEALTH_CHOICES = ["up", "down", "unknown"]


class ClusterSerializer(serializers.ModelSerializer):
    """A cluster with its routing state, its health as the proxy last published it (``unknown`` when
    this web process cannot see the proxy's metrics) and the import lag of each partition."""

    health = serializers.SerializerMethodField()
    import_lag = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = ["id", "name", "gateway_address", "weight", "state", "record_source", "health", "import_lag"]

    @extend_schema_field(serializers.ChoiceField(choices=HEALTH_CHOICES))
    def get_health(self, cluster: Cluster) -> str:
        health: dict[int, str] = self.context.get("health", {})
        return health.get(cluster.id, "unknown")

    @extend_schema_field(PartitionLagSerializer(many=True))
    def get_import_lag(self, cluster: Cluster) -> list[dict[str, Any]]:
        lag_by_cluster: dict[int, list[Any]] = self.context.get("import_lag", {})
        return PartitionLagSerializer(lag_by_cluster.get(cluster.id, []), many=True).data


class ProcessDefinitionSerializer(serializers.ModelSerializer):
    key = KeyField(read_only=True)
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)
    deployment_key = KeyField(read_only=True, allow_null=True)

    class Meta:
        model = ProcessDefinition
        fields = [
            "key",
            "cluster",
            "bpmn_process_id",
            "version",
            "version_tag",
            "resource_name",
            "checksum",
            "tenant_id",
            "deployment_key",
            "deployed_at",
            "deleted",
        ]


class ProcessDefinitionDetailSerializer(ProcessDefinitionSerializer):
    class Meta(ProcessDefinitionSerializer.Meta):
        fields = [*ProcessDefinitionSerializer.Meta.fields, "bpmn_xml"]


@extend_schema_field(serializers.ChoiceField(choices=["active", "completed", "canceled"]))
class InstanceStateField(serializers.Field):
    """The filter's words (active, completed, canceled) for the stored instance states."""

    def to_representation(self, value: str) -> str:
        return INSTANCE_STATE_API_NAME.get(value, value)


class ProcessInstanceSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    key = KeyField(read_only=True)
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)
    process_definition_key = KeyField(source="process_definition_id", read_only=True, allow_null=True)
    state = InstanceStateField(read_only=True)
    parent_key = KeyField(source="parent_id", read_only=True, allow_null=True)
    parent_element_instance_key = KeyField(read_only=True, allow_null=True)
    root_key = KeyField(source="root_id", read_only=True, allow_null=True)
    server = serializers.CharField(source="server_id", read_only=True, allow_null=True)

    class Meta:
        model = ProcessInstance
        fields = [
            "key",
            "cluster",
            "partition_id",
            "process_definition_key",
            "bpmn_process_id",
            "version",
            "tenant_id",
            "state",
            "start_date",
            "end_date",
            "parent_key",
            "parent_element_instance_key",
            "root_key",
            "depth",
            "server",
            "incident",
            "subtree_incident",
        ]


class ProcessInstanceDetailSerializer(ProcessInstanceSerializer):
    children_count = serializers.IntegerField(read_only=True)

    class Meta(ProcessInstanceSerializer.Meta):
        fields = [*ProcessInstanceSerializer.Meta.fields, "children_count"]


class ElementInstanceSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    key = KeyField(read_only=True)
    process_instance_key = KeyField(source="process_instance_id", read_only=True, allow_null=True)
    process_definition_key = KeyField(read_only=True, allow_null=True)
    flow_scope_key = KeyField(read_only=True, allow_null=True)

    class Meta:
        model = ElementInstance
        fields = [
            "key",
            "process_instance_key",
            "process_definition_key",
            "bpmn_process_id",
            "flow_scope_key",
            "element_id",
            "element_type",
            "event_type",
            "state",
            "start_date",
            "end_date",
        ]


class VariableSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    """``value`` is null and ``truncated`` true for values above the preview size; ``preview`` then
    holds the beginning of the JSON text."""

    key = KeyField(read_only=True)
    scope_key = KeyField(read_only=True)
    process_instance_key = KeyField(source="process_instance_id", read_only=True, allow_null=True)
    value = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = Variable
        fields = [
            "key",
            "name",
            "scope_key",
            "process_instance_key",
            "value",
            "truncated",
            "preview",
            "size",
            "updated_at",
        ]


class JobSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    key = KeyField(read_only=True)
    process_instance_key = KeyField(source="process_instance_id", read_only=True, allow_null=True)
    element_instance_key = KeyField(source="element_instance_id", read_only=True, allow_null=True)
    type = serializers.CharField(source="job_type", read_only=True)
    custom_headers = serializers.JSONField(read_only=True)

    class Meta:
        model = Job
        fields = [
            "key",
            "process_instance_key",
            "element_instance_key",
            "bpmn_process_id",
            "element_id",
            "type",
            "worker",
            "retries",
            "deadline",
            "state",
            "error_message",
            "error_code",
            "custom_headers",
            "created_at",
            "updated_at",
        ]


class IncidentSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    key = KeyField(read_only=True)
    cluster = serializers.IntegerField(source="cluster_id", read_only=True)
    process_instance_key = KeyField(source="process_instance_id", read_only=True, allow_null=True)
    element_instance_key = KeyField(source="element_instance_id", read_only=True, allow_null=True)
    job_key = KeyField(source="job_id", read_only=True, allow_null=True)
    variable_scope_key = KeyField(read_only=True, allow_null=True)
    root_key = KeyField(read_only=True, allow_null=True)

    class Meta:
        model = Incident
        fields = [
            "key",
            "cluster",
            "process_instance_key",
            "element_instance_key",
            "job_key",
            "bpmn_process_id",
            "element_id",
            "variable_scope_key",
            "root_key",
            "error_type",
            "error_message",
            "state",
            "created_at",
            "resolved_at",
        ]


class IncidentGroupSerializer(serializers.Serializer):
    error_type = serializers.CharField()
    error_message = serializers.CharField()
    count = serializers.IntegerField()


class ServerSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    model = serializers.CharField(source="hardware_model", read_only=True)

    class Meta:
        model = Server
        fields = [
            "serial_number",
            "hostname",
            "model",
            "rack",
            "data_centre",
            "state",
            "is_stub",
            "first_seen_at",
            "updated_at",
        ]


class TimelineInstanceSerializer(ProcessInstanceSerializer):
    """An instance on a server's timeline with its steps in time order."""

    steps = serializers.SerializerMethodField()

    class Meta(ProcessInstanceSerializer.Meta):
        fields = [*ProcessInstanceSerializer.Meta.fields, "steps"]

    @extend_schema_field(ElementInstanceSerializer(many=True))
    def get_steps(self, instance: ProcessInstance) -> list[dict[str, Any]]:
        steps_by_instance: dict[int, list[ElementInstance]] = self.context.get("steps", {})
        return ElementInstanceSerializer(steps_by_instance.get(instance.key, []), many=True).data


class StuckNowSerializer(serializers.Serializer):
    incidents = IncidentSerializer(many=True)
    jobs = JobSerializer(many=True)
    incidents_truncated = serializers.BooleanField()
    jobs_truncated = serializers.BooleanField()


class ServerTimelineSerializer(serializers.Serializer):
    server = ServerSerializer()
    next = serializers.URLField(allow_null=True)
    instances = TimelineInstanceSerializer(many=True)
    stuck = StuckNowSerializer()


class CountByStateSerializer(serializers.Serializer):
    state = serializers.CharField()
    count = serializers.IntegerField()


class ProcessCountSerializer(serializers.Serializer):
    bpmn_process_id = serializers.CharField()
    version = serializers.IntegerField(required=False)
    count = serializers.IntegerField()


class ClusterStatsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()
    weight = serializers.IntegerField()
    health = serializers.ChoiceField(choices=HEALTH_CHOICES)


class ClusterLagSerializer(PartitionLagSerializer):
    cluster_id = serializers.IntegerField()


class StatsSerializer(serializers.Serializer):
    instances_by_state = CountByStateSerializer(many=True)
    active_instances_by_process = ProcessCountSerializer(many=True)
    incidents_by_error = IncidentGroupSerializer(many=True)
    active_incidents_by_process = ProcessCountSerializer(many=True)
    clusters = ClusterStatsSerializer(many=True)
    import_lag = ClusterLagSerializer(many=True)
    operations_by_state = CountByStateSerializer(many=True)


# -- operations and actions (issue 10's services) ------------------------------------------------------


class OperationSerializer(FastRepresentationMixin, serializers.ModelSerializer):
    """An operator action from request to confirmation (DESIGN §6)."""

    actor = serializers.CharField(source="actor_name", read_only=True)
    batch = serializers.IntegerField(source="batch_id", read_only=True, allow_null=True)
    target_key = KeyField(read_only=True, allow_null=True)
    process_instance_key = KeyField(read_only=True, allow_null=True)
    parameters = serializers.JSONField(read_only=True)

    class Meta:
        model = Operation
        fields = [
            "id",
            "action",
            "state",
            "actor",
            "batch",
            "cluster_id",
            "target_key",
            "process_instance_key",
            "parameters",
            "result",
            "error",
            "error_code",
            "already_done",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "confirmed_at",
        ]


class BatchProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    planned = serializers.IntegerField()
    done = serializers.IntegerField()
    confirmed = serializers.IntegerField()
    failed = serializers.IntegerField()
    waiting = serializers.IntegerField()
    pending = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class BatchOperationSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    filter = serializers.JSONField(read_only=True)
    parameters = serializers.JSONField(read_only=True)

    class Meta:
        model = BatchOperation
        fields = [
            "id",
            "action",
            "state",
            "actor",
            "filter",
            "parameters",
            "dry_run_count",
            "total",
            "planning_done",
            "rate_per_second",
            "created_at",
            "finished_at",
            "cancelled_at",
            "cancelled_by",
        ]


class BatchOperationDetailSerializer(BatchOperationSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(BatchOperationSerializer.Meta):
        fields = [*BatchOperationSerializer.Meta.fields, "progress"]

    @extend_schema_field(BatchProgressSerializer)
    def get_progress(self, batch: BatchOperation) -> dict[str, Any]:
        return BatchProgressSerializer(batch_progress(batch=batch)).data


VARIABLES_HELP = "A JSON object: variable name -> JSON value."


class RetryInputSerializer(serializers.Serializer):
    retries = serializers.IntegerField(default=1, min_value=1, max_value=2**31 - 1)


class SkipInputSerializer(serializers.Serializer):
    variables = serializers.DictField(default=dict, help_text=VARIABLES_HELP)


class ReassignInputSerializer(serializers.Serializer):
    assignee = serializers.CharField(required=False, allow_null=True, max_length=255)
    candidate_groups = serializers.ListField(
        child=serializers.CharField(max_length=255), required=False, allow_null=True, max_length=100
    )


class SetVariablesInputSerializer(serializers.Serializer):
    variables = serializers.DictField(help_text=VARIABLES_HELP)
    scope_key = KeyField(required=False, help_text="Default: the process instance itself.")
    local = serializers.BooleanField(default=False)


class JobRetriesInputSerializer(serializers.Serializer):
    retries = serializers.IntegerField(min_value=1, max_value=2**31 - 1)


class CompleteJobInputSerializer(serializers.Serializer):
    variables = serializers.DictField(default=dict, help_text=VARIABLES_HELP)


class FailJobInputSerializer(serializers.Serializer):
    retries = serializers.IntegerField(min_value=0, max_value=2**31 - 1, help_text="0 opens an incident.")
    error_message = serializers.CharField(max_length=4000)
    retry_backoff_ms = serializers.IntegerField(default=0, min_value=0, max_value=24 * 3600 * 1000)


class ThrowErrorInputSerializer(serializers.Serializer):
    error_code = serializers.CharField(max_length=255)
    error_message = serializers.CharField(max_length=4000, allow_blank=True, default="")
    variables = serializers.DictField(default=dict, help_text=VARIABLES_HELP)


class ActivateInstructionSerializer(serializers.Serializer):
    element_id = serializers.CharField(max_length=255, help_text="The element to add a token before.")
    ancestor_key = KeyField(
        required=False,
        allow_null=True,
        help_text="The scope instance to add it in (when several are active).",
    )
    variables = serializers.DictField(
        default=dict, help_text=VARIABLES_HELP + " Set on the process instance."
    )


class ModifyInputSerializer(serializers.Serializer):
    activate = ActivateInstructionSerializer(many=True, required=False, default=list, max_length=100)
    terminate = serializers.ListField(child=KeyField(), default=list, max_length=100)
    preview = serializers.BooleanField(
        default=False, help_text="Check the plan and answer what it will do (200), without applying it."
    )


class ModifyPreviewSerializer(serializers.Serializer):
    plan = serializers.ListField(child=serializers.CharField())


class MappingInstructionSerializer(serializers.Serializer):
    source_element_id = serializers.CharField(
        max_length=255, help_text="An element of the instance's version."
    )
    target_element_id = serializers.CharField(max_length=255, help_text="An element of the target version.")


class MigrateInputSerializer(serializers.Serializer):
    target_version = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="A version of the instance's process."
    )
    target_process_definition_key = KeyField(
        required=False, help_text="Or the target definition's key (its copy on the instance's cluster)."
    )
    mapping_instructions = MappingInstructionSerializer(
        many=True,
        required=False,
        allow_null=True,
        default=None,
        max_length=500,
        help_text="Absent: every element is mapped to the target element with the same id and type.",
    )
    preview = serializers.BooleanField(
        default=False,
        help_text="Check the plan as the engine would and answer what it will do (200), without applying it.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("target_version" in attrs) == ("target_process_definition_key" in attrs):
            raise serializers.ValidationError(
                {"target_version": ["Give either target_version or target_process_definition_key."]}
            )
        return attrs


class MigratePreviewSerializer(serializers.Serializer):
    source_version = serializers.IntegerField()
    target_version = serializers.IntegerField()
    target_process_definition_key = KeyField()
    mapping_instructions = MappingInstructionSerializer(many=True)
    plan = serializers.ListField(child=serializers.CharField())


class MigrationDryRunSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Active instances the filter selects.")
    examined = serializers.IntegerField(help_text="How many of them were checked (at most 10,000).")
    migrate_count = serializers.IntegerField(help_text="Of those examined, how many would be migrated.")
    refuse_count = serializers.IntegerField(help_text="Of those examined, how many would be refused.")
    migrate = serializers.ListField(child=serializers.DictField(), help_text="The first 100: key and plan.")
    refuse = serializers.ListField(
        child=serializers.DictField(), help_text="The first 100: key and Zeebe's reason."
    )
    reasons = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Each refusal reason (instance key blanked) with its count.",
    )


class DeployInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, help_text="Resource name ending in .bpmn or .dmn.")
    content = serializers.CharField(
        max_length=4 * 1024 * 1024, trim_whitespace=False, help_text="The BPMN or DMN XML text."
    )


class DeployedSerializer(serializers.Serializer):
    key = KeyField(help_text="The deployment key.")
    processes = serializers.ListField(child=serializers.DictField())
    decisions = serializers.ListField(child=serializers.DictField())


class StartInputSerializer(serializers.Serializer):
    bpmn_process_id = serializers.CharField(max_length=255)
    version = serializers.IntegerField(default=-1, help_text="-1: the latest version.")
    variables = serializers.DictField(default=dict, help_text=VARIABLES_HELP)


class StartedSerializer(serializers.Serializer):
    process_instance_key = KeyField()
    process_definition_key = KeyField()
    bpmn_process_id = serializers.CharField()
    version = serializers.IntegerField()
    cluster_id = serializers.IntegerField()


class MessageInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    correlation_key = serializers.CharField(max_length=255, allow_blank=True, default="")
    variables = serializers.DictField(default=dict, help_text=VARIABLES_HELP)
    time_to_live_ms = serializers.IntegerField(default=0, min_value=0)


class BatchInputSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["retry", "resolve_incident", "cancel", "set_variables", "modify", "migrate"],
        help_text="retry/resolve_incident select incidents (incident filters); cancel/set_variables/modify/"
        "migrate select process instances (process instance filters; modify: those with a token at the "
        "source; migrate: the filter must give bpmn_process_id and version).",
    )
    filter = serializers.DictField(
        default=dict, help_text="Filter names and values as in the list endpoints."
    )
    parameters = serializers.DictField(
        default=dict,
        help_text="retry: retries; set_variables: variables, local; modify: source_element_id, "
        "target_element_id; migrate: target_version, mapping (optional list of [source, target] element "
        "ids; absent: matched by id and type); any: rate_per_second.",
    )
    dry_run = serializers.BooleanField(
        default=False,
        help_text="Answer the target count without starting (migrate: which instances would be migrated and "
        "which refused, with Zeebe's reason).",
    )


class DryRunSerializer(serializers.Serializer):
    count = serializers.IntegerField()


class ClusterStateInputSerializer(serializers.Serializer):
    allow_no_placement = serializers.BooleanField(
        default=False,
        help_text="Confirm taking the last active cluster out of placement (new instances then have "
        "nowhere to go).",
    )
