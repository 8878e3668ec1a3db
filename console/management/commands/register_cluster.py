"""`python manage.py register_cluster --id N --name NAME --gateway HOST:PORT --record-source SOURCE
[--config KEY=VALUE ...] [--weight W]`: add a Zeebe cluster to the Cluster table, for deployments set up
from a script (docker-compose.yml's `register-*` services) rather than the admin.

Idempotent: a cluster already registered with the same id and name gets the given address and weight;
one whose record source differs is refused (its imported rows came from the other source), as is an id
taken by another name.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from processes.choices import RecordSource
from processes.models import Cluster
from processes.services import cluster_create, cluster_update


def _key_value(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key.strip():
        raise ValueError(f"--config {text!r} is not KEY=VALUE")
    return key.strip(), value.strip()


class Command(BaseCommand):
    help = "Register a Zeebe cluster (idempotent) in the Cluster table."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--id", type=int, required=True, dest="cluster_id", help="cluster id (1..31)")
        parser.add_argument("--name", required=True)
        parser.add_argument("--gateway", required=True, help="host:port of the cluster's Zeebe gateway")
        parser.add_argument("--record-source", required=True, choices=RecordSource.values)
        parser.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="record source setting (engine_log: data_dir; redis: url, stream_prefix, password_env; elasticsearch: url, index_prefix, api_key_env; see processes/source_config.py)",
        )
        parser.add_argument("--weight", type=int, default=1)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            config = dict(_key_value(item) for item in options["config"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        existing = Cluster.objects.filter(pk=options["cluster_id"]).first()
        try:
            if existing is None:
                cluster = cluster_create(
                    cluster_id=options["cluster_id"],
                    name=options["name"],
                    gateway_address=options["gateway"],
                    weight=options["weight"],
                    record_source=options["record_source"],
                    record_source_config=config,
                )
                self.stdout.write(
                    f"registered cluster {cluster.id} {cluster.name} at {cluster.gateway_address}"
                )
                return
            if existing.name != options["name"]:
                raise CommandError(f"cluster id {existing.id} is already {existing.name!r}")
            if existing.record_source != options["record_source"] or existing.record_source_config != config:
                raise CommandError(
                    f"cluster {existing.id} {existing.name} reads {existing.record_source} "
                    f"{existing.record_source_config}; change its record source in the admin, not here"
                )
            cluster = cluster_update(
                cluster=existing, gateway_address=options["gateway"], weight=options["weight"]
            )
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        self.stdout.write(
            f"cluster {cluster.id} {cluster.name} already registered; address {cluster.gateway_address}"
        )
