"""Models of the processes app: clusters, and the query models the importer fills (DESIGN §5).

Every Zeebe key is stored as a *global* key (DESIGN §2, routing/keys.py:
``(cluster_id << CLUSTER_SHIFT) | zeebe_key``) in a bigint column, so the console, the API, the
proxy and zbctl share one key space. Zeebe's "no key"
(-1) is stored as NULL. Relations between query models are foreign keys without database
constraints: records of one instance arrive from several partitions and streams in no guaranteed
order (a definition on partition 1, its instances on partition 2), so a row may name a row that is
imported a moment later. Each row keeps the position of the last record applied to it, which makes
re-applying an older record a no-op (at-least-once sources, reference §3.9).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from rest_framework.authtoken.models import TokenProxy

from processes import source_config
from processes.choices import ClusterState, IncidentState, InstanceState, JobState, RecordSource
from routing.keys import MAX_CLUSTER_ID, MIN_CLUSTER_ID
from routing.security import SecurityConfigError, UpstreamSecurity

# Cluster ids live in the top bits of a global key (DESIGN §2, routing/keys.py); 0 is never a cluster.
CLUSTER_ID_MIN = MIN_CLUSTER_ID
CLUSTER_ID_MAX = MAX_CLUSTER_ID
CLUSTER_WEIGHT_MAX = 10_000


class Cluster(models.Model):
    """One Zeebe cluster (real, or the embedded engine) behind the routing layer.

    The primary key is the cluster id that the routing layer encodes into every global key, so it is
    chosen by the operator and never reused for another cluster while keys of the old one exist.
    """

    id = models.PositiveSmallIntegerField(
        primary_key=True,
        validators=[MinValueValidator(CLUSTER_ID_MIN), MaxValueValidator(CLUSTER_ID_MAX)],
        help_text="Cluster id encoded in global keys (1..31).",
    )
    name = models.CharField(max_length=100, unique=True)
    gateway_address = models.CharField(max_length=255, help_text="host:port of the Zeebe gateway (gRPC).")
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MaxValueValidator(CLUSTER_WEIGHT_MAX)],
        help_text="Relative share of new instances among active clusters.",
    )
    state = models.CharField(max_length=16, choices=ClusterState.choices, default=ClusterState.ACTIVE)
    record_source = models.CharField(
        max_length=16, choices=RecordSource.choices, default=RecordSource.ENGINE_LOG
    )
    # Source settings (processes/source_config.py): engine_log {"data_dir"}, redis {"url",
    # "stream_prefix", "password_env"}, elasticsearch {"url", "index_prefix", "api_key_env",
    # "ca_certs"}. Only references to secrets, never a secret: clean() refuses it.
    record_source_config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Where the importer reads this cluster\'s records, e.g. {"url": "redis://redis:6379/0", '
        '"password_env": "REDIS_PASSWORD"}. A password or API key is named by its environment '
        "variable (*_env) or file (*_file), never written here.",
    )
    # How the proxy and the actions reach the gateway: {"tls", "ca", "server_name", "token_url",
    # "client_id", "client_secret_env" | "client_secret_file", "audience", "scope"}
    # (routing/security.py). Only references to the secret, never the secret: clean() refuses it.
    gateway_security = models.JSONField(
        default=dict,
        blank=True,
        help_text='TLS/OAuth to the gateway, e.g. {"tls": true, "ca": "/etc/zeebe/ca.pem", '
        '"token_url": "https://...", "client_id": "...", "client_secret_env": "ZEEBE_SECRET", '
        '"audience": "zeebe-api"}. The secret itself is never stored here.',
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id__gte=CLUSTER_ID_MIN) & models.Q(id__lte=CLUSTER_ID_MAX),
                name="cluster_id_in_key_range",
            ),
            models.CheckConstraint(
                condition=models.Q(weight__lte=CLUSTER_WEIGHT_MAX), name="cluster_weight_bounded"
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in ClusterState]),
                name="cluster_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.id})"

    def clean(self) -> None:
        super().clean()
        try:
            UpstreamSecurity.from_mapping(self.gateway_security or None)
        except SecurityConfigError as error:
            raise ValidationError({"gateway_security": str(error)}) from None
        try:
            source_config.validate(self.record_source, self.record_source_config)
        except source_config.SourceSettingsError as error:
            raise ValidationError({"record_source_config": str(error)}) from None


def _no_constraint_fk(to: str, *, db_column: str, related_name: str, **extra) -> models.ForeignKey:  # type: ignore[no-untyped-def]
    """A nullable foreign key by global key without a database constraint (see the module docstring)."""
    return models.ForeignKey(
        to,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # each model declares the (composite) indexes its queries need
        db_column=db_column,
        related_name=related_name,
        **extra,
    )


class ProcessDefinition(models.Model):
    """A deployed BPMN process (PROCESS CREATED, reference §3.4). The BPMN XML is kept for diagrams.

    The same BPMN is deployed to every cluster (DESIGN §3), so each cluster has its own row and key.
    """

    key = models.BigIntegerField(primary_key=True, help_text="Global process definition key.")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="process_definitions")
    bpmn_process_id = models.CharField(max_length=255)
    version = models.IntegerField()
    version_tag = models.CharField(max_length=255, blank=True, default="")
    resource_name = models.CharField(max_length=512, blank=True, default="")
    bpmn_xml = models.TextField(blank=True, default="")
    checksum = models.CharField(max_length=64, blank=True, default="")
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    deployment_key = models.BigIntegerField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deleted = models.BooleanField(default=False)
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["bpmn_process_id", "-version"]
        indexes = [
            # Process/version pickers and "latest version of X" (DESIGN §7 filters).
            models.Index(fields=["bpmn_process_id", "-version"], name="procdef_process_version_idx"),
            models.Index(fields=["cluster", "bpmn_process_id"], name="procdef_cluster_process_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bpmn_process_id} v{self.version} (cluster {self.cluster_id})"


class ProcessInstance(models.Model):
    """One process instance (the PROCESS element's PROCESS_INSTANCE records), root or called.

    Tree fields: ``parent`` is the calling instance (parentProcessInstanceKey), ``root`` the top of
    the call tree (itself for a root), ``depth`` 0 for a root, and ``tree_path`` the keys from the
    root down to this instance, each followed by "/" (``"<root>/<child>/<self>/"``), so the whole
    subtree of any instance is ``tree_path__startswith=instance.tree_path``: one indexed prefix scan.
    ``server`` comes from the instance's own server variable (settings.FLEETFLOW_SERVER_VARIABLE)
    or, without one, is inherited from the parent. ``incident`` says this instance has an active
    incident; ``subtree_incident`` says this instance or any descendant has one (the roots' flag
    that the instance list shows).
    """

    key = models.BigIntegerField(primary_key=True, help_text="Global process instance key.")
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="process_instances", db_index=False
    )
    partition_id = models.PositiveSmallIntegerField()
    process_definition = _no_constraint_fk(
        "processes.ProcessDefinition", db_column="process_definition_key", related_name="instances"
    )
    bpmn_process_id = models.CharField(max_length=255)
    version = models.IntegerField(default=0)
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    state = models.CharField(max_length=16, choices=InstanceState.choices, default=InstanceState.ACTIVE)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    parent = _no_constraint_fk("self", db_column="parent_key", related_name="children")
    parent_element_instance_key = models.BigIntegerField(
        null=True, blank=True, help_text="Global key of the call activity instance that started this one."
    )
    root = _no_constraint_fk("self", db_column="root_key", related_name="tree_members")
    depth = models.PositiveSmallIntegerField(default=0)
    tree_path = models.CharField(max_length=2000, default="")
    server = models.ForeignKey(
        "servers.Server",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="process_instances",
        db_index=False,  # pi_server_start_idx starts with it
    )
    # True when `server` comes from this instance's own variable, False when inherited.
    server_from_variable = models.BooleanField(default=False)
    incident = models.BooleanField(default=False)
    subtree_incident = models.BooleanField(default=False)
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["-start_date", "-key"]
        indexes = [
            # Instance list: newest first with keyset pagination on (start_date, key), unfiltered and
            # by each filter the console and the API offer (DESIGN §7).
            models.Index(fields=["-start_date", "-key"], name="pi_start_key_idx"),
            models.Index(fields=["state", "-start_date"], name="pi_state_start_idx"),
            models.Index(fields=["bpmn_process_id", "version", "-start_date"], name="pi_process_start_idx"),
            models.Index(fields=["cluster", "-start_date"], name="pi_cluster_start_idx"),
            # Server page: every instance that touched the server, on one timeline.
            models.Index(fields=["server", "-start_date"], name="pi_server_start_idx"),
            # Tree: children of an instance (lazy loading), members of a root's tree.
            models.Index(fields=["parent", "-start_date"], name="pi_parent_idx"),
            models.Index(fields=["root"], name="pi_root_idx"),
            models.Index(fields=["parent_element_instance_key"], name="pi_call_activity_idx"),
            # Whole subtree as one prefix scan; varchar_pattern_ops makes LIKE 'prefix%' indexable on
            # PostgreSQL under any collation (ignored on SQLite).
            models.Index(fields=["tree_path"], name="pi_tree_path_idx", opclasses=["varchar_pattern_ops"]),
            # Root instances only (parent IS NULL), newest first: the default "top-level" list.
            models.Index(
                fields=["-start_date", "-key"], name="pi_roots_idx", condition=models.Q(parent__isnull=True)
            ),
            # Dashboard and "with incidents" filter: small partial index over the affected trees.
            models.Index(
                fields=["-start_date"],
                name="pi_subtree_incident_idx",
                condition=models.Q(subtree_incident=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in InstanceState]),
                name="process_instance_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bpmn_process_id} #{self.key}"


class InstanceCount(models.Model):
    """How many process instances one (cluster, partition) holds per process id, version and state:
    the dashboard figures (GET /api/v1/stats/) without counting every instance on each request.

    Kept exact by PostgreSQL itself, not by the importer: statement-level AFTER INSERT / UPDATE /
    DELETE triggers on the process instance table aggregate their transition tables and add the
    deltas here (``count = count + EXCLUDED.count``), in the writing transaction, whatever wrote
    the rows (the importer's COPY or INSERT ... ON CONFLICT, the ORM, a manual fix); a TRUNCATE
    empties it. Migration 0008 installs the triggers and fills the table from the existing rows.

    Rows are per (cluster, partition), the partition decoded from the instance's global key
    (routing/keys.py): two importers hold different partitions of a cluster (importer/leases.py)
    and so never wait for each other's counter rows. A row whose count fell to 0 stays (readers
    drop it; the rows are bounded by the processes and versions ever seen). On SQLite (the demo)
    nothing fills the table and the selectors count the instances themselves.
    """

    cluster_id = models.PositiveSmallIntegerField()  # no foreign key: see the migration
    partition_id = models.PositiveSmallIntegerField()
    bpmn_process_id = models.CharField(max_length=255)
    version = models.IntegerField()
    state = models.CharField(max_length=16, choices=InstanceState.choices)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # The triggers' ON CONFLICT target.
            models.UniqueConstraint(
                fields=["cluster_id", "partition_id", "bpmn_process_id", "version", "state"],
                name="instance_count_unique",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"cluster {self.cluster_id} partition {self.partition_id}: "
            f"{self.count} x {self.bpmn_process_id} v{self.version} {self.state}"
        )


class ElementInstance(models.Model):
    """One BPMN element instance of a process instance (PROCESS_INSTANCE records of every element
    type except the PROCESS itself, which is the ProcessInstance row, and SEQUENCE_FLOW)."""

    key = models.BigIntegerField(primary_key=True, help_text="Global element instance key.")
    cluster = models.ForeignKey(
        Cluster, on_delete=models.CASCADE, related_name="element_instances", db_index=False
    )
    partition_id = models.PositiveSmallIntegerField()
    process_instance = _no_constraint_fk(
        "processes.ProcessInstance", db_column="process_instance_key", related_name="element_instances"
    )
    process_definition_key = models.BigIntegerField(null=True, blank=True)
    bpmn_process_id = models.CharField(max_length=255, blank=True, default="")
    flow_scope_key = models.BigIntegerField(null=True, blank=True)
    element_id = models.CharField(max_length=255)
    element_type = models.CharField(max_length=40, help_text="bpmnElementType (reference §3.6).")
    event_type = models.CharField(max_length=20, blank=True, default="")
    state = models.CharField(max_length=16, choices=InstanceState.choices, default=InstanceState.ACTIVE)
    start_date = models.DateTimeField(null=True, blank=True)
    end_date = models.DateTimeField(null=True, blank=True)
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["start_date", "key"]
        indexes = [
            # Instance detail: history and per-element overlays of one instance.
            models.Index(fields=["process_instance", "start_date"], name="ei_instance_start_idx"),
            models.Index(fields=["process_instance", "element_id"], name="ei_instance_element_idx"),
            # Process statistics: how many instances wait in each element of a definition.
            models.Index(fields=["process_definition_key", "element_id", "state"], name="ei_definition_idx"),
            models.Index(fields=["flow_scope_key"], name="ei_flow_scope_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in InstanceState]),
                name="element_instance_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.element_id} #{self.key}"


class Job(models.Model):
    """A job of a service or user task (JOB records; activation from JOB_BATCH ACTIVATED)."""

    key = models.BigIntegerField(primary_key=True, help_text="Global job key.")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="jobs", db_index=False)
    partition_id = models.PositiveSmallIntegerField()
    process_instance = _no_constraint_fk(
        "processes.ProcessInstance", db_column="process_instance_key", related_name="jobs"
    )
    element_instance = _no_constraint_fk(
        "processes.ElementInstance", db_column="element_instance_key", related_name="jobs"
    )
    process_definition_key = models.BigIntegerField(null=True, blank=True)
    bpmn_process_id = models.CharField(max_length=255, blank=True, default="")
    element_id = models.CharField(max_length=255, blank=True, default="")
    job_type = models.CharField("type", max_length=255)
    worker = models.CharField(max_length=255, blank=True, default="")
    retries = models.IntegerField(default=0)
    retry_backoff_ms = models.BigIntegerField(default=0)
    deadline = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.CREATED)
    error_message = models.TextField(blank=True, default="")
    error_code = models.CharField(max_length=255, blank=True, default="")
    custom_headers = models.JSONField(default=dict, blank=True)
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Timestamp of the last record applied."
    )
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["-created_at", "-key"]
        indexes = [
            models.Index(fields=["process_instance"], name="job_instance_idx"),
            models.Index(fields=["element_instance"], name="job_element_idx"),
            # "What is stuck now": open jobs by type, and a worker's jobs.
            models.Index(fields=["state", "job_type"], name="job_state_type_idx"),
            models.Index(fields=["worker", "state"], name="job_worker_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in JobState]), name="job_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_type} job #{self.key}"

    @property
    def handed_back(self) -> bool:
        """The last failure recorded is the routing proxy returning a job it could not deliver
        (retries unchanged), not a worker's failure: screens show it as a hand-back."""
        # Imported here: routing.activation pulls in grpc and pyzeebe, which processes.models'
        # other users (the importer, every manage.py command) need not load.
        from routing.activation import is_hand_back

        return is_hand_back(self.error_message)


class Incident(models.Model):
    """An incident (INCIDENT records). ``root_key`` and ``tree_path`` copy the owning instance's tree
    fields so that "does this subtree have an active incident" is one indexed query."""

    key = models.BigIntegerField(primary_key=True, help_text="Global incident key.")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="incidents", db_index=False)
    partition_id = models.PositiveSmallIntegerField()
    process_instance = _no_constraint_fk(
        "processes.ProcessInstance", db_column="process_instance_key", related_name="incidents"
    )
    element_instance = _no_constraint_fk(
        "processes.ElementInstance", db_column="element_instance_key", related_name="incidents"
    )
    job = _no_constraint_fk("processes.Job", db_column="job_key", related_name="incidents")
    process_definition_key = models.BigIntegerField(null=True, blank=True)
    bpmn_process_id = models.CharField(max_length=255, blank=True, default="")
    element_id = models.CharField(max_length=255, blank=True, default="")
    variable_scope_key = models.BigIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=64)
    error_message = models.TextField(blank=True, default="")
    state = models.CharField(max_length=16, choices=IncidentState.choices, default=IncidentState.ACTIVE)
    created_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    root_key = models.BigIntegerField(null=True, blank=True)
    tree_path = models.CharField(
        max_length=2000, blank=True, default="", help_text='"" until the instance is known.'
    )
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["-created_at", "-key"]
        indexes = [
            # Incidents page grouped by error, dashboard counts by error and by process.
            models.Index(fields=["state", "error_type"], name="incident_state_type_idx"),
            models.Index(fields=["state", "bpmn_process_id"], name="incident_state_process_idx"),
            models.Index(fields=["state", "-created_at"], name="incident_state_created_idx"),
            models.Index(fields=["process_instance"], name="incident_instance_idx"),
            models.Index(fields=["element_instance"], name="incident_element_idx"),
            models.Index(fields=["job"], name="incident_job_idx"),
            # Subtree incident flags: active incidents of one tree, filtered by path prefix.
            models.Index(fields=["root_key", "state"], name="incident_root_state_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=[choice.value for choice in IncidentState]),
                name="incident_state_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.error_type} incident #{self.key}"


class Variable(models.Model):
    """A variable of one scope (VARIABLE records; the key is stable across CREATED/UPDATED).

    ``value`` holds the JSON value when its JSON text is at most
    settings.FLEETFLOW_VARIABLE_PREVIEW_BYTES bytes. Larger values keep ``value`` NULL,
    ``truncated`` True and a ``preview`` (the first bytes of the JSON text); the full text lives in
    VariableValue and is fetched on demand (processes.selectors.variable_full_value). A JSON null
    is ``value`` NULL with ``truncated`` False.
    """

    key = models.BigIntegerField(primary_key=True, help_text="Global variable key.")
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="variables", db_index=False)
    partition_id = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=255)
    scope_key = models.BigIntegerField(help_text="Global key of the scope (element or process instance).")
    process_instance = _no_constraint_fk(
        "processes.ProcessInstance", db_column="process_instance_key", related_name="variables"
    )
    process_definition_key = models.BigIntegerField(null=True, blank=True)
    bpmn_process_id = models.CharField(max_length=255, blank=True, default="")
    value = models.JSONField(null=True, blank=True)
    truncated = models.BooleanField(default=False)
    preview = models.TextField(blank=True, default="")
    size = models.PositiveIntegerField(default=0, help_text="Bytes of the value's JSON text.")
    tenant_id = models.CharField(max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(
        null=True, blank=True, help_text="Timestamp of the last record applied."
    )
    position = models.BigIntegerField(default=0, help_text="Position of the last record applied.")

    class Meta:
        ordering = ["scope_key", "name"]
        indexes = [
            # Variables per scope on the instance detail page.
            models.Index(fields=["scope_key", "name"], name="variable_scope_name_idx"),
            models.Index(fields=["process_instance", "name"], name="variable_instance_name_idx"),
            # Instance list filter "variable name = value": narrow by name first.
            models.Index(fields=["name"], name="variable_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.scope_key}"


class VariableValue(models.Model):
    """The full JSON text of a variable too large to keep inline (see Variable)."""

    variable = models.OneToOneField(
        Variable, primary_key=True, on_delete=models.CASCADE, db_column="variable_key", related_name="full"
    )
    json_text = models.TextField()

    def __str__(self) -> str:
        return f"full value of variable #{self.variable_id}"


class ImportPosition(models.Model):
    """How far the importer got in one record stream of a cluster, and what it saw there.

    One row per (cluster, partition, stream). ``stream`` is "" for sources that deliver a
    partition's records in log order (engine log, Elasticsearch); Redis has one stream per value
    type (reference §3.9), each in log order, so it keeps one watermark per value-type stream.
    A record at or below ``position`` was imported and is skipped when seen again. The row is
    updated in the same transaction as the rows the records produced. Partition 0 collects the
    counters of records whose partition could not be read (malformed input).
    Lag (DESIGN §5) = now - ``last_record_timestamp``.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="import_positions")
    partition_id = models.PositiveSmallIntegerField()
    stream = models.CharField(max_length=64, blank=True, default="")
    source = models.CharField(max_length=16, choices=RecordSource.choices, default=RecordSource.ENGINE_LOG)
    position = models.BigIntegerField(default=0)
    last_record_timestamp = models.DateTimeField(null=True, blank=True)
    imported_count = models.BigIntegerField(default=0, help_text="Records applied (or known and ignored).")
    skipped_count = models.BigIntegerField(default=0, help_text="Records of an unknown value type or intent.")
    error_count = models.BigIntegerField(default=0, help_text="Malformed records (see RecordImportError).")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "partition_id", "stream"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "partition_id", "stream"], name="import_position_unique"
            ),
        ]

    def __str__(self) -> str:
        stream = f" {self.stream}" if self.stream else ""
        return f"cluster {self.cluster_id} partition {self.partition_id}{stream} @ {self.position}"


class ImportLease(models.Model):
    """Which importer process imports one (cluster, partition) now (processes/importer/leases.py).

    Several `import_records` processes split a fleet's partitions between them, one lease per
    (cluster, partition); ``partition_id`` 0 stands for the whole cluster when its source cannot
    be split by partition (Redis: one stream per value type holds every partition, reference
    §3.9). ``holder`` "" is a free lease. The holder renews ``expires_at`` (database clock) with
    every batch and between batches; ``token`` grows by one whenever the lease changes hands, and
    every batch checks it inside its own transaction, so a holder paused while its lease moved on
    cannot commit what it read before.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="import_leases")
    partition_id = models.PositiveSmallIntegerField()
    holder = models.CharField(max_length=128, blank=True, default="")
    token = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    acquired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster", "partition_id"]
        constraints = [
            models.UniqueConstraint(fields=["cluster", "partition_id"], name="import_lease_unique"),
        ]

    def __str__(self) -> str:
        unit = f"partition {self.partition_id}" if self.partition_id else "all partitions"
        return f"cluster {self.cluster_id} {unit}: {self.holder or 'free'} (token {self.token})"


class ImporterProcess(models.Model):
    """A running `import_records` process, for the fair share of leases (processes/importer/leases.py).

    Refreshed by its process every second or so. A row whose ``expires_at`` passed, or whose
    database session (``backend_pid`` started at ``backend_start``) is gone, is a dead importer:
    its leases are free to take at once, so a process killed with kill -9 hands over within
    seconds, and one that is paused (SIGSTOP) once its row expires.
    """

    holder = models.CharField(max_length=128, unique=True)
    backend_pid = models.IntegerField()
    backend_start = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["holder"]

    def __str__(self) -> str:
        return self.holder


class RecordImportError(models.Model):
    """A record the importer could not read (bad JSON, missing or mistyped fields), kept for operators.

    The record is skipped, never retried: ``raw_excerpt`` holds its beginning for diagnosis. A row
    whose message says "stored with changes" is a record that was imported with a value
    PostgreSQL cannot hold made storable (NUL escaped as \u0000, a text cut to its column).
    A gap in an engine log is one row too (``source_ref`` "log-gap:<partition>:<position>").
    ``source_ref`` identifies the record in its source (log position, Redis entry id, ES document id)
    so that a redelivered copy is not stored twice.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="import_errors")
    partition_id = models.PositiveSmallIntegerField(default=0)
    position = models.BigIntegerField(null=True, blank=True)
    stream = models.CharField(max_length=64, blank=True, default="")
    source_ref = models.CharField(max_length=128, blank=True, default="")
    message = models.TextField()
    raw_excerpt = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["cluster", "-created_at"], name="import_error_cluster_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "stream", "source_ref"],
                name="import_error_source_ref_unique",
                condition=~models.Q(source_ref=""),
            ),
        ]

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} partition {self.partition_id} position {self.position}: {self.message}"


class SkippedRecordSample(models.Model):
    """One sample per kind (value type, intent) of record the importer skipped as unknown.

    Records of a value type or intent the projection does not know are counted in
    ImportPosition.skipped_count; this keeps the first one of each kind (and how many were seen),
    so an operator can see what a newer broker sends that the console does not show yet.
    """

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="skipped_samples")
    value_type = models.CharField(max_length=64)
    intent = models.CharField(max_length=64)
    partition_id = models.PositiveSmallIntegerField(default=0)
    position = models.BigIntegerField(null=True, blank=True, help_text="Position of the sampled record.")
    raw_excerpt = models.TextField(blank=True, default="")
    count = models.BigIntegerField(default=0, help_text="Records of this kind skipped so far.")
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["cluster", "value_type", "intent"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "value_type", "intent"], name="skipped_sample_kind_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"cluster {self.cluster_id}: {self.count} x {self.value_type} {self.intent}"


class ApiToken(TokenProxy):
    """An API token as the admin names it: by its first characters only (DESIGN §8).

    DRF's admin named a token by its key (page titles, the delete confirmation), and a key is as
    good as its user's password; it is shown once, by `issue_token`. A proxy of DRF's own (same
    table, rows addressed by their user), with nothing but its name changed."""

    class Meta:
        proxy = True
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.key[:4]}… ({self.user})"
