"""Record sources behind one interface (base.RecordSourceReader) and the registry that opens them.

Each source module depends on base.py only; this package imports them all and maps a cluster's
`record_source` to a factory, so there is no import cycle between the interface and the sources.
"""

from __future__ import annotations

from collections.abc import Callable

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


def _redis(cluster: Cluster) -> RecordSourceReader:
    config = cluster.record_source_config or {}
    return RedisStreamSource(
        url=required_config(config, "url", cluster),
        stream_prefix=str(config.get("stream_prefix") or "zeebe"),
        group=str(config.get("group") or "fleetflow-importer"),
        consumer=str(config.get("consumer") or f"importer-cluster-{cluster.id}"),
    )


def _elasticsearch(cluster: Cluster) -> RecordSourceReader:
    config = cluster.record_source_config or {}
    return ElasticsearchSource(
        url=required_config(config, "url", cluster),
        index_prefix=str(config.get("index_prefix") or "zeebe-record"),
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
