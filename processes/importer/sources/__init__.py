"""Record sources behind one interface (base.RecordSourceReader) and the registry that opens them.

Each source module depends on base.py only; this package imports them all and maps a cluster's
`record_source` to a factory, so there is no import cycle between the interface and the sources.
"""

from __future__ import annotations

from collections.abc import Callable

from processes import source_config
from processes.choices import RecordSource
from processes.importer.sources.base import RecordSourceReader, SourceConfigError, required_config
from processes.importer.sources.elasticsearch import ElasticsearchSource
from processes.importer.sources.engine_log import EngineLogSource
from processes.importer.sources.redis_streams import RedisStreamSource
from processes.models import Cluster

__all__ = ["SOURCES", "RecordSourceReader", "SourceConfigError", "open_source"]


def _engine_log(cluster: Cluster) -> RecordSourceReader:
    config = cluster.record_source_config or {}
    return EngineLogSource(data_dir=required_config(config, "data_dir", cluster))


def _secret(cluster: Cluster, name: str) -> str | None:
    try:
        return source_config.read_secret(
            cluster.record_source_config or {}, name, owner=f"cluster {cluster.id}"
        )
    except source_config.SourceSettingsError as error:
        raise SourceConfigError(str(error)) from None


def _url(cluster: Cluster) -> str:
    config = cluster.record_source_config or {}
    try:
        url = source_config.source_url(config, owner=f"cluster {cluster.id}")
    except source_config.SourceSettingsError as error:
        raise SourceConfigError(str(error)) from None
    return url if url is not None else required_config(config, "url", cluster)


def _redis(cluster: Cluster) -> RecordSourceReader:
    config = cluster.record_source_config or {}
    return RedisStreamSource(
        url=_url(cluster),
        stream_prefix=str(config.get("stream_prefix") or "zeebe"),
        group=str(config.get("group") or "fleetflow-importer"),
        consumer=str(config.get("consumer") or f"importer-cluster-{cluster.id}"),
        username=config.get("username") or None,
        password=_secret(cluster, "password"),
    )


def _elasticsearch(cluster: Cluster) -> RecordSourceReader:
    config = cluster.record_source_config or {}
    password = _secret(cluster, "password")
    return ElasticsearchSource(
        url=_url(cluster),
        index_prefix=str(config.get("index_prefix") or "zeebe-record"),
        basic_auth=(str(config.get("username") or ""), password) if password is not None else None,
        api_key=_secret(cluster, "api_key"),
        ca_certs=config.get("ca_certs") or None,
    )


# record_source -> factory; a new source registers here.
SOURCES: dict[str, Callable[[Cluster], RecordSourceReader]] = {
    RecordSource.ENGINE_LOG: _engine_log,
    RecordSource.REDIS: _redis,
    RecordSource.ELASTICSEARCH: _elasticsearch,
}


def open_source(cluster: Cluster) -> RecordSourceReader:
    factory = SOURCES.get(cluster.record_source)
    if factory is None:
        raise SourceConfigError(f"cluster {cluster.id}: unknown record_source {cluster.record_source!r}")
    return factory(cluster)
