"""Exporters of the embedded engine: the partition logs, fed to Redis streams or Elasticsearch.

`python -m engine ... --export redis://HOST:PORT[/DB] --export http://HOST:9200` (repeatable).
Each exporter has its own acknowledged position per partition in `DATA/exporters/` and reads the
log files on its own thread (runner.py), inside one child process of the engine (process.py,
__main__.py) so that exporting never takes CPU from command processing; the formats are the zeebe-redis-exporter's JSON streams
(redis_streams.py, reference §3.9) and the Zeebe Elasticsearch exporter's indices and bulk
requests (elasticsearch.py, reference §3.1-3.7).
"""

from __future__ import annotations

from engine.exporters.runner import Exporter, ExporterConfigError, ExporterRunner

__all__ = ["Exporter", "ExporterConfigError", "ExporterRunner", "exporter_for"]


def exporter_for(url: str) -> Exporter:
    """The exporter an `--export` URL names; ExporterConfigError says what is wrong with it."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    try:
        if scheme in ("redis", "rediss"):
            from engine.exporters.redis_streams import RedisStreamsExporter

            return RedisStreamsExporter(url)
        if scheme in ("http", "https"):
            from engine.exporters.elasticsearch import ElasticsearchExporter

            return ElasticsearchExporter(url)
    except ExporterConfigError:
        raise
    except ValueError as exc:  # urllib's parse errors (a bad port, an unclosed IPv6 bracket)
        raise ExporterConfigError(f"--export {url}: {exc}") from None
    raise ExporterConfigError(
        f"--export {url}: unknown exporter; use redis://HOST:PORT[/DB] (Redis streams) "
        "or http://HOST:9200 (Elasticsearch)"
    )
