"""The interface every record source implements (the registry that opens one is in __init__).

The runner drives a source like this::

    records = source.fetch(positions, max_records, wait_seconds)   # outside any transaction
    projection.apply_batch(records)                                  # one transaction, commits
    source.acknowledge(records)                                      # after the commit only

`positions` maps (partition id, stream) to the last position committed, so a source that can seek
(engine log, Elasticsearch) resumes right after it; a source that tracks delivery itself (Redis
consumer groups) may ignore it: the projection skips what is at or below the positions anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from processes.importer.records import SourceRecord
from processes.models import Cluster


class SourceConfigError(ValueError):
    """A cluster's record_source_config is missing something the source needs."""


class RecordSourceReader(Protocol):
    def fetch(
        self, positions: Mapping[tuple[int, str], int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        """Up to `max_records` records after `positions`; waits up to `wait_seconds` when there are none."""
        ...

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        """Called once the batch holding `records` is committed."""
        ...

    def rewind(self) -> None:
        """The records fetched since the last acknowledge were not committed: deliver them again.

        Sources that read by position need nothing here (the runner asks again from the committed
        positions); a source that tracks delivery itself (a Redis consumer group) must re-read its
        pending entries, or a later batch would move the positions past them and they would be
        skipped as already imported.
        """
        ...

    def close(self) -> None: ...


class PartitionedSource(Protocol):
    """A source that can be read by partition (engine log, Elasticsearch), so that several
    importers can split a cluster between them (leases.py). A source without these methods (a
    Redis stream holds every partition) is one unit of import for the whole cluster."""

    def partitions(self) -> list[int]:
        """The partitions the source has records of now."""
        ...

    def restrict(self, partitions: frozenset[int] | None) -> None:
        """Read only these partitions from now on (None: all)."""
        ...


def required_config(config: Mapping[str, object], name: str, cluster: Cluster) -> str:
    value = config.get(name)
    if not isinstance(value, str) or not value:
        raise SourceConfigError(
            f"cluster {cluster.id} ({cluster.name}): record_source {cluster.record_source!r} needs "
            f"record_source_config[{name!r}] (a non-empty text)"
        )
    return value


def sleep_budget(wait_seconds: float) -> float:
    """Polling interval for sources without a blocking read."""
    return max(0.0, min(wait_seconds, 0.2))
