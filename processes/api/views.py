"""API views (CONVENTIONS §5): a ViewSet is a queryset from a selector, a serializer and a FilterSet.

Reads go through processes.selectors, actions through the action services (issue 10). The base view
holds the parts every endpoint shares: role permission and queryset restriction, key validation of
the path, keyset pagination, and refusal of unknown query parameters (a typo in a filter name must not
silently return everything).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Model, QuerySet
from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from processes import selectors, services
from processes.api import serializers as api
from processes.api.pagination import KeysetPagination
from processes.api.permissions import RolePermission, restrict
from processes.filters import (
    INSTANCE_STATE_API_NAME,
    IncidentFilterSet,
    ProcessInstanceFilterSet,
    parse_global_key,
)
from processes.models import Cluster, ElementInstance, Incident, Job, ProcessInstance
from processes.operations import selectors as operation_selectors
from processes.operations import services as operations
from processes.operations.models import BatchOperation, Operation
from processes.roles import Role
from servers.models import Server
from servers.selectors import server_list

JsonRows = list[dict[str, Any]]
KEY_PATTERN = r"[^/]+"  # anything up to the next slash: a malformed key gets a 400 naming it, not a 404
PAGINATION_PARAMS = frozenset({"cursor", "page_size"})
# Bounds of the unpaginated parts of a response (grouped counts, "stuck now").
GROUP_LIMIT = 500
STUCK_LIMIT = 100


def accepted(operation: Operation) -> Response:
    """Actions answer 202 with the operation: it runs after the request, through a Celery task."""
    return Response(api.OperationSerializer(operation).data, status=status.HTTP_202_ACCEPTED)


class FleetflowViewSet(viewsets.GenericViewSet):
    permission_classes = [RolePermission]
    pagination_class = KeysetPagination
    filter_backends = [DjangoFilterBackend]
    lookup_field = "key"
    lookup_value_regex = KEY_PATTERN
    key_lookup = True  # the path parameter is a global key (validated), else a plain value

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and permissions first: 401/403 win
        if request.method == "GET":
            unknown = sorted(set(request.query_params) - self.allowed_query_params())
            if unknown:
                raise serializers.ValidationError({name: ["Unknown query parameter."] for name in unknown})
            # An empty value is not "no filter" here (it is for the console's forms): a script that sends
            # ?state= has a bug, and answering with everything would hide it.
            empty = sorted(name for name, values in request.query_params.lists() if "" in values)
            if empty:
                raise serializers.ValidationError({name: ["Empty value."] for name in empty})

    def allowed_query_params(self) -> frozenset[str]:
        allowed = set(PAGINATION_PARAMS)
        filterset_class = getattr(self, "filterset_class", None)
        if self.action == "list" and filterset_class is not None:
            allowed |= set(filterset_class.base_filters)
        return frozenset(allowed)

    def get_queryset(self) -> QuerySet[Any]:
        return restrict(super().get_queryset(), self.request)

    def lookup_value(self) -> Any:
        raw = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        if self.lookup_field == "id":
            if not (isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 18):
                raise serializers.ValidationError(
                    {"id": [f"{str(raw)[:40]!r} is not an id (a whole number)."]}
                )
            return int(raw)
        if not self.key_lookup:
            return raw
        try:
            return parse_global_key(raw)
        except DjangoValidationError as error:
            raise serializers.ValidationError({self.lookup_field: error.messages}) from error

    def get_object(self) -> Any:
        return self.find(self.get_queryset())

    def find(self, queryset: QuerySet[Any]) -> Any:
        # No list filters on a detail lookup: ?state=... must not turn an existing key into a 404.
        value = self.lookup_value()
        obj = queryset.filter(**{self.lookup_field: value}).first()
        if obj is None:
            raise Http404(f"No {queryset.model._meta.verbose_name} with {self.lookup_field} {value}.")
        self.check_object_permissions(self.request, obj)
        return obj

    def input(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        """The request body, validated by ``serializer_class`` (400 naming the field otherwise)."""
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def paginated(
        self, queryset: QuerySet[Any], serializer_class: type[serializers.BaseSerializer], **context: Any
    ) -> Response:
        page = self.paginate_queryset(restrict(queryset, self.request))
        data = serializer_class(page, many=True, context={**self.get_serializer_context(), **context}).data
        return self.get_paginated_response(data)


class ListRetrieveViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, FleetflowViewSet):
    detail_serializer_class: type[serializers.BaseSerializer] | None = None
    detail_queryset: QuerySet[Any] | None = None

    def get_queryset(self) -> QuerySet[Any]:
        if self.action != "list" and self.detail_queryset is not None:
            return restrict(self.detail_queryset.all(), self.request)
        return super().get_queryset()

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action == "retrieve" and self.detail_serializer_class is not None:
            return self.detail_serializer_class
        return super().get_serializer_class()


# -- clusters ------------------------------------------------------------------------------------------


def cluster_context() -> dict[str, Any]:
    lag_by_cluster: dict[int, list[Any]] = defaultdict(list)
    for lag in selectors.import_lag():
        lag_by_cluster[lag.cluster_id].append(lag)
    return {"import_lag": lag_by_cluster, "health": selectors.proxy_cluster_health()}


class ClusterViewSet(ListRetrieveViewSet):
    """Clusters with routing state, health and import lag per partition (DESIGN §2, §5)."""

    queryset = selectors.cluster_list()
    serializer_class = api.ClusterSerializer
    lookup_field = "id"
    lookup_value_regex = KEY_PATTERN
    key_lookup = False

    action_roles = {"drain": Role.ADMIN, "enable": Role.ADMIN, "disable": Role.ADMIN}

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), **cluster_context()}

    def change_state(self, request: Request, change: str) -> Response:
        cluster: Cluster = self.get_object()
        allow = bool(self.input(api.ClusterStateInputSerializer)["allow_no_placement"])
        if change == "drain":
            services.cluster_drain(cluster=cluster, allow_no_placement=allow)
        elif change == "disable":
            services.cluster_disable(cluster=cluster, allow_no_placement=allow)
        else:
            services.cluster_activate(cluster=cluster)
        cluster.refresh_from_db()
        return Response(api.ClusterSerializer(cluster, context=self.get_serializer_context()).data)

    @extend_schema(request=api.ClusterStateInputSerializer, responses=api.ClusterSerializer)
    @action(detail=True, methods=["post"])
    def drain(self, request: Request, id: str) -> Response:
        """Admin: no new instances go to the cluster; it serves jobs and operations until its instances end."""
        return self.change_state(request, "drain")

    @extend_schema(request=None, responses=api.ClusterSerializer)
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, id: str) -> Response:
        """Admin: the cluster is active again (gets new instances)."""
        return self.change_state(request, "enable")

    @extend_schema(request=api.ClusterStateInputSerializer, responses=api.ClusterSerializer)
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, id: str) -> Response:
        """Admin: nothing is routed to the cluster."""
        return self.change_state(request, "disable")


# -- process definitions -------------------------------------------------------------------------------


class ProcessDefinitionViewSet(ListRetrieveViewSet):
    queryset = selectors.process_definition_list()
    detail_queryset = selectors.process_definition_detail()
    serializer_class = api.ProcessDefinitionSerializer
    detail_serializer_class = api.ProcessDefinitionDetailSerializer

    @extend_schema(request=api.DeployInputSerializer, responses={201: api.DeployedSerializer})
    @action(detail=False, methods=["post"])
    def deploy(self, request: Request) -> Response:
        """Deploy a BPMN or DMN resource to every cluster (through the gateway proxy). The engine's
        refusal comes back as 400 with its text, naming the invalid element."""
        given = self.input(api.DeployInputSerializer)
        deployed = operations.deploy_resource(
            actor=request.user, name=given["name"], content=given["content"].encode()
        )
        return Response(
            api.DeployedSerializer(
                {"key": deployed.key, "processes": deployed.processes, "decisions": deployed.decisions}
            ).data,
            status=status.HTTP_201_CREATED,
        )


# -- process instances ---------------------------------------------------------------------------------


class ProcessInstanceViewSet(ListRetrieveViewSet):
    """Process instances, newest first, with every filter of the console list (processes.filters)."""

    queryset = selectors.process_instance_list()
    detail_queryset = selectors.process_instance_detail()
    serializer_class = api.ProcessInstanceSerializer
    detail_serializer_class = api.ProcessInstanceDetailSerializer
    filterset_class = ProcessInstanceFilterSet

    def get_object(self) -> Any:
        if self.action == "cancel":  # the service needs parent and state, not the detail annotation
            return self.find(restrict(ProcessInstance.objects.defer("tree_path"), self.request))
        return super().get_object()

    def instance(self) -> ProcessInstance:
        # Sub-resources need only the tree path and the key; the detail annotation is not needed here.
        instance: ProcessInstance = self.find(
            restrict(ProcessInstance.objects.only("key", "tree_path"), self.request)
        )
        return instance

    @extend_schema(responses=api.ProcessInstanceSerializer(many=True))
    @action(detail=True, methods=["get"])
    def tree(self, request: Request, key: str) -> Response:
        """Every instance the instance called, at any depth, by depth then start (one prefix scan)."""
        return self.paginated(
            selectors.instance_subtree(instance=self.instance(), include_self=False).defer("tree_path"),
            api.ProcessInstanceSerializer,
        )

    @extend_schema(responses=api.ElementInstanceSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="element-instances")
    def element_instances(self, request: Request, key: str) -> Response:
        return self.paginated(
            selectors.instance_element_instances(instance=self.instance()), api.ElementInstanceSerializer
        )

    @extend_schema(methods=["GET"], responses=api.VariableSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=api.SetVariablesInputSerializer,
        responses={202: api.OperationSerializer},
        description="Set variables on the instance or one of its scopes (an operation, answered 202).",
    )
    @action(detail=True, methods=["get", "post"])
    def variables(self, request: Request, key: str) -> Response:
        instance = self.instance()
        if request.method == "GET":
            return self.paginated(selectors.instance_variables(instance=instance), api.VariableSerializer)
        given = self.input(api.SetVariablesInputSerializer)
        scope_key = given.get("scope_key", instance.key)
        if (
            scope_key != instance.key
            and not selectors.instance_element_instances(instance=instance).filter(key=scope_key).exists()
        ):
            raise serializers.ValidationError(
                {"scope_key": [f"{scope_key} is not a scope of instance {instance.key}."]}
            )
        operation = operations.operation_set_variables(
            actor=request.user,
            scope_key=scope_key,
            variables=given["variables"],
            local=given["local"],
        )
        return accepted(operation)

    @extend_schema(request=None, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, key: str) -> Response:
        """Cancel a root instance (the instances it called end with it)."""
        instance = self.get_object()
        return accepted(operations.operation_cancel(actor=request.user, process_instance=instance))

    @extend_schema(request=api.StartInputSerializer, responses={201: api.StartedSerializer})
    @action(detail=False, methods=["post"])
    def start(self, request: Request) -> Response:
        """Start an instance of a definition with variables; the gateway proxy places it."""
        given = self.input(api.StartInputSerializer)
        started = operations.start_instance(
            actor=request.user,
            bpmn_process_id=given["bpmn_process_id"],
            version=given["version"],
            variables=given["variables"],
        )
        return Response(api.StartedSerializer(started.__dict__).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=api.ModifyInputSerializer,
        responses={202: api.OperationSerializer, 200: api.ModifyPreviewSerializer},
    )
    @action(detail=True, methods=["post"])
    def modify(self, request: Request, key: str) -> Response:
        """Modify the instance with one plan: add tokens before elements (`activate`) and cancel
        tokens (`terminate`). What Zeebe would refuse is refused first (400, Zeebe's reason)."""
        instance: ProcessInstance = self.find(restrict(ProcessInstance.objects.defer("tree_path"), request))
        given = self.input(api.ModifyInputSerializer)
        activate = [dict(item) for item in given["activate"]]
        if given["preview"]:  # POST: operators only, like the action itself (RolePermission)
            _, _, lines, _ = operations.modify_preview(
                process_instance=instance, activate=activate, terminate=given["terminate"]
            )
            return Response({"plan": lines})
        return accepted(
            operations.operation_modify(
                actor=request.user, process_instance=instance, activate=activate, terminate=given["terminate"]
            )
        )

    @extend_schema(
        request=api.MigrateInputSerializer,
        responses={202: api.OperationSerializer, 200: api.MigratePreviewSerializer},
    )
    @action(detail=True, methods=["post"])
    def migrate(self, request: Request, key: str) -> Response:
        """Migrate a root instance to another version of its process with one plan: element mappings
        (absent: matched by id and type). What Zeebe would refuse is refused first (400, Zeebe's
        reason), nothing written; `preview` answers what would happen."""
        instance: ProcessInstance = self.find(restrict(ProcessInstance.objects.defer("tree_path"), request))
        given = self.input(api.MigrateInputSerializer)
        mapping = given.get("mapping_instructions")
        arguments: dict[str, Any] = {
            "process_instance": instance,
            "target_version": given.get("target_version"),
            "target_process_definition_key": given.get("target_process_definition_key"),
            "mapping": [dict(item) for item in mapping] if mapping is not None else None,
        }
        if given["preview"]:  # POST: operators only, like the action itself (RolePermission)
            plan = operations.migration_plan(**arguments)
            if plan.check.refusal is not None:
                raise operations.OperationRejected(plan.check.refusal, plan.check.about)
            return Response(
                {
                    "source_version": plan.source.version,
                    "target_version": plan.target.version,
                    "target_process_definition_key": str(plan.target.key),
                    "mapping_instructions": [
                        {"source_element_id": source, "target_element_id": target}
                        for source, target in plan.mapping
                    ],
                    "plan": plan.check.lines,
                }
            )
        return accepted(operations.operation_migrate(actor=request.user, **arguments))

    @extend_schema(responses=api.OperationSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="operations")
    def instance_operations(self, request: Request, key: str) -> Response:
        instance = self.instance()
        return self.paginated(
            operation_selectors.operations_for_instance(process_instance_key=instance.key),
            api.OperationSerializer,
        )

    @extend_schema(responses=api.JobSerializer(many=True))
    @action(detail=True, methods=["get"])
    def jobs(self, request: Request, key: str) -> Response:
        return self.paginated(selectors.instance_jobs(instance=self.instance()), api.JobSerializer)

    @extend_schema(responses=api.IncidentSerializer(many=True))
    @action(detail=True, methods=["get"])
    def incidents(self, request: Request, key: str) -> Response:
        return self.paginated(selectors.instance_incidents(instance=self.instance()), api.IncidentSerializer)


# -- incidents -----------------------------------------------------------------------------------------


class IncidentViewSet(ListRetrieveViewSet):
    queryset = selectors.incident_list()
    serializer_class = api.IncidentSerializer
    filterset_class = IncidentFilterSet

    @extend_schema(responses=api.IncidentGroupSerializer(many=True))
    @action(detail=False, methods=["get"], url_path="by-error", pagination_class=None)
    def by_error(self, request: Request) -> Response:
        """Active incidents counted per error type and message, largest groups first (at most 500)."""
        groups = restrict(selectors.incidents_by_error(), request)[:GROUP_LIMIT]
        return Response(api.IncidentGroupSerializer(groups, many=True).data)

    @extend_schema(request=api.RetryInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, key: str) -> Response:
        """Retry: a job incident gets `retries` and is resolved; other incidents are resolved."""
        incident: Incident = self.get_object()
        given = self.input(api.RetryInputSerializer)
        return accepted(
            operations.operation_retry(actor=request.user, incident=incident, retries=given["retries"])
        )


# -- element instances and jobs (actions on one step) --------------------------------------------------


class ElementInstanceViewSet(mixins.RetrieveModelMixin, FleetflowViewSet):
    queryset = selectors.element_instance_detail()
    serializer_class = api.ElementInstanceSerializer

    @extend_schema(request=api.SkipInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, key: str) -> Response:
        """Skip a stuck step: it counts as done with `variables` and the flow takes its outgoing path."""
        element: ElementInstance = self.get_object()
        given = self.input(api.SkipInputSerializer)
        return accepted(
            operations.operation_skip(
                actor=request.user, element_instance=element, variables=given["variables"]
            )
        )

    @extend_schema(request=api.ReassignInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def reassign(self, request: Request, key: str) -> Response:
        """Hand a stuck manual step to another assignee and/or candidate groups."""
        element: ElementInstance = self.get_object()
        given = self.input(api.ReassignInputSerializer)
        return accepted(
            operations.operation_reassign(
                actor=request.user,
                element_instance=element,
                assignee=given.get("assignee"),
                candidate_groups=given.get("candidate_groups"),
            )
        )


class JobViewSet(mixins.RetrieveModelMixin, FleetflowViewSet):
    queryset = selectors.job_detail()
    serializer_class = api.JobSerializer

    @extend_schema(request=api.JobRetriesInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def retries(self, request: Request, key: str) -> Response:
        job: Job = self.get_object()
        given = self.input(api.JobRetriesInputSerializer)
        return accepted(
            operations.operation_update_retries(actor=request.user, job=job, retries=given["retries"])
        )

    @extend_schema(request=api.CompleteJobInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, key: str) -> Response:
        """Complete a job by hand (its worker is gone), with variables."""
        job: Job = self.get_object()
        given = self.input(api.CompleteJobInputSerializer)
        return accepted(
            operations.operation_complete_job(actor=request.user, job=job, variables=given["variables"])
        )

    @extend_schema(request=api.FailJobInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"])
    def fail(self, request: Request, key: str) -> Response:
        """Fail a job by hand with retries (0 opens an incident) and a message."""
        job: Job = self.get_object()
        given = self.input(api.FailJobInputSerializer)
        return accepted(
            operations.operation_fail_job(
                actor=request.user,
                job=job,
                retries=given["retries"],
                error_message=given["error_message"],
                retry_backoff_ms=given["retry_backoff_ms"],
            )
        )

    @extend_schema(request=api.ThrowErrorInputSerializer, responses={202: api.OperationSerializer})
    @action(detail=True, methods=["post"], url_path="throw-error")
    def throw_error(self, request: Request, key: str) -> Response:
        """Throw a BPMN error from a job by hand; a matching error catch event takes over."""
        job: Job = self.get_object()
        given = self.input(api.ThrowErrorInputSerializer)
        return accepted(
            operations.operation_throw_error(
                actor=request.user,
                job=job,
                error_code=given["error_code"],
                error_message=given["error_message"],
                variables=given["variables"],
            )
        )


class MessageViewSet(FleetflowViewSet):
    """Publish a message to every cluster (a subscription may be on any)."""

    serializer_class = api.MessageInputSerializer
    queryset = Operation.objects.none()

    @extend_schema(request=api.MessageInputSerializer, responses={202: api.OperationSerializer})
    def create(self, request: Request) -> Response:
        given = self.input(api.MessageInputSerializer)
        return accepted(
            operations.operation_publish_message(
                actor=request.user,
                name=given["name"],
                correlation_key=given["correlation_key"],
                variables=given["variables"],
                time_to_live_ms=given["time_to_live_ms"],
            )
        )


# -- operations and batches ----------------------------------------------------------------------------


class OperationViewSet(ListRetrieveViewSet):
    """The operations log, newest first."""

    queryset = operation_selectors.operation_list()
    serializer_class = api.OperationSerializer
    lookup_field = "id"
    lookup_value_regex = KEY_PATTERN
    key_lookup = False


class BatchOperationViewSet(mixins.CreateModelMixin, ListRetrieveViewSet):
    queryset = operation_selectors.batch_list()
    serializer_class = api.BatchOperationSerializer
    detail_serializer_class = api.BatchOperationDetailSerializer
    lookup_field = "id"
    lookup_value_regex = KEY_PATTERN
    key_lookup = False

    @extend_schema(
        request=api.BatchInputSerializer,
        responses={
            200: PolymorphicProxySerializer(
                component_name="BatchDryRun",
                serializers=[api.DryRunSerializer, api.MigrationDryRunSerializer],
                resource_type_field_name=None,
            ),
            202: api.BatchOperationDetailSerializer,
        },
        description="With dry_run the answer is the number of targets the filter selects now (200; for "
        "migrate, which would be migrated and which refused and why); without, the batch starts (202).",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = self.input(api.BatchInputSerializer)
        if given["dry_run"] and given["action"] == "migrate":
            report = operations.batch_migrate_dry_run(
                actor=request.user, filter=given["filter"], parameters=given["parameters"]
            )
            data = dict(report.__dict__)
            data["migrate"] = [{**item, "key": str(item["key"])} for item in report.migrate]
            data["refuse"] = [{**item, "key": str(item["key"])} for item in report.refuse]
            return Response(data)
        if given["dry_run"]:
            count = operations.batch_operation_dry_run(
                actor=request.user,
                action=given["action"],
                filter=given["filter"],
                parameters=given["parameters"],
            )
            return Response({"count": count})
        batch = operations.batch_operation_start(
            actor=request.user, action=given["action"], filter=given["filter"], parameters=given["parameters"]
        )
        return Response(api.BatchOperationDetailSerializer(batch).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=api.BatchOperationDetailSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, id: str) -> Response:
        batch: BatchOperation = self.get_object()
        batch = operations.batch_operation_cancel(actor=request.user, batch=batch)
        return Response(api.BatchOperationDetailSerializer(batch).data)


# -- servers -------------------------------------------------------------------------------------------


class ServerViewSet(ListRetrieveViewSet):
    queryset = server_list()
    serializer_class = api.ServerSerializer
    lookup_field = "serial_number"
    lookup_url_kwarg = "serial"
    key_lookup = False

    @extend_schema(responses=api.ServerTimelineSerializer)
    @action(detail=True, methods=["get"])
    def timeline(self, request: Request, serial: str) -> Response:
        """Every instance that touched the server (called instances included), newest first and paginated,
        each with its steps in time order; and what is stuck now (active incidents, open jobs)."""
        server: Server = self.get_object()
        paginator = KeysetPagination()
        instances = paginator.paginate_queryset(
            selectors.server_instances(server_id=server.serial_number), request, view=self
        )
        steps: dict[int, list[Model]] = defaultdict(list)
        for step in selectors.server_instance_steps(instance_keys=[instance.key for instance in instances]):
            if step.process_instance_id is not None:
                steps[step.process_instance_id].append(step)
        active_keys = selectors.server_active_instance_keys(server_id=server.serial_number)
        incidents = list(
            selectors.server_open_incidents(server_id=server.serial_number, active_keys=active_keys)[
                : STUCK_LIMIT + 1
            ]
        )
        jobs = list(
            selectors.server_open_jobs(server_id=server.serial_number, active_keys=active_keys)[
                : STUCK_LIMIT + 1
            ]
        )
        context = {**self.get_serializer_context(), "steps": steps}
        return Response(
            {
                "server": api.ServerSerializer(server).data,
                "next": paginator.get_next_link(),
                "instances": api.TimelineInstanceSerializer(instances, many=True, context=context).data,
                "stuck": {
                    "incidents": api.IncidentSerializer(incidents[:STUCK_LIMIT], many=True).data,
                    "jobs": api.JobSerializer(jobs[:STUCK_LIMIT], many=True).data,
                    "incidents_truncated": len(incidents) > STUCK_LIMIT,
                    "jobs_truncated": len(jobs) > STUCK_LIMIT,
                },
            }
        )

    def allowed_query_params(self) -> frozenset[str]:
        return PAGINATION_PARAMS


# -- statistics ----------------------------------------------------------------------------------------


class StatsViewSet(FleetflowViewSet):
    """Dashboard figures in one response."""

    serializer_class = api.StatsSerializer
    pagination_class = None  # type: ignore[assignment]
    queryset = selectors.cluster_list()

    @extend_schema(responses=api.StatsSerializer)
    def summary(self, request: Request) -> Response:
        context = cluster_context()
        clusters = list(self.get_queryset())
        by_state = selectors.instance_counts_by_state()
        return Response(
            {
                "instances_by_state": [
                    {"state": INSTANCE_STATE_API_NAME.get(state, state), "count": count}
                    for state, count in sorted(by_state.items())
                ],
                "active_instances_by_process": selectors.active_instance_counts_by_process()[:GROUP_LIMIT],
                "incidents_by_error": api.IncidentGroupSerializer(
                    selectors.incidents_by_error()[:GROUP_LIMIT], many=True
                ).data,
                "active_incidents_by_process": selectors.active_incident_counts_by_process()[:GROUP_LIMIT],
                "clusters": [
                    {
                        "id": cluster.id,
                        "name": cluster.name,
                        "state": cluster.state,
                        "weight": cluster.weight,
                        "health": context["health"].get(cluster.id, "unknown"),
                    }
                    for cluster in clusters
                ],
                "import_lag": api.ClusterLagSerializer(
                    [lag for lags in context["import_lag"].values() for lag in lags], many=True
                ).data,
                "operations_by_state": self.operations_by_state(),
            }
        )

    def operations_by_state(self) -> JsonRows:
        rows = Operation.objects.order_by().values("state").annotate(count=Count("id")).order_by("state")
        return [{"state": row["state"], "count": row["count"]} for row in rows]
