"""Source: Elasticsearch `<prefix>_*` indices written by Zeebe's Elasticsearch exporter (reference §3.1).

Thin by design. Per partition (found with a terms aggregation on partitionId) we page with
`sort: position asc` and `search_after: [last committed position]`, so a restart resumes exactly
after the committed position. The document is the record JSON (plus `sequence`, ignored).
Known limit: a record made searchable after a newer one of the same partition (indices refresh
independently) is skipped once the newer one is committed; the exporter's bulk flush and the
one-second refresh make that rare, and Operate-style sequence paging would be the fix.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from processes.importer.records import SourceRecord
from processes.importer.sources.base import sleep_budget


class ElasticsearchSource:
    def __init__(
        self,
        *,
        url: str,
        index_prefix: str = "zeebe-record",
        basic_auth: tuple[str, str] | None = None,
        api_key: str | None = None,
        ca_certs: str | None = None,
    ) -> None:
        from elasticsearch import Elasticsearch

        # Credentials come from processes/source_config.py (named secrets, never stored ones).
        options: dict[str, Any] = {"request_timeout": 30}
        if basic_auth is not None:
            options["basic_auth"] = basic_auth
        if api_key is not None:
            options["api_key"] = api_key
        if ca_certs is not None:
            options["ca_certs"] = ca_certs
        self.client = Elasticsearch(url, **options)
        self.index = f"{index_prefix}_*"
        # The partitions this importer holds (leases.py); None: all of them.
        self._only: frozenset[int] | None = None

    def partitions(self) -> list[int]:
        return self._partitions()

    def restrict(self, partitions: frozenset[int] | None) -> None:
        self._only = partitions

    def _partitions(self) -> list[int]:
        response: Any = self.client.search(
            index=self.index,
            size=0,
            aggs={"partitions": {"terms": {"field": "partitionId", "size": 8192}}},
            ignore_unavailable=True,
            allow_no_indices=True,
        )
        buckets = response.get("aggregations", {}).get("partitions", {}).get("buckets", [])
        return sorted(int(bucket["key"]) for bucket in buckets)

    def fetch(
        self, positions: Mapping[tuple[int, str], int], max_records: int, wait_seconds: float
    ) -> list[SourceRecord]:
        deadline = time.monotonic() + wait_seconds
        while True:
            records = self._fetch_once(positions, max_records)
            if records or time.monotonic() >= deadline:
                return records
            time.sleep(sleep_budget(deadline - time.monotonic()))

    def _fetch_once(self, positions: Mapping[tuple[int, str], int], max_records: int) -> list[SourceRecord]:
        partitions = self._partitions()
        if self._only is not None:
            partitions = [partition_id for partition_id in partitions if partition_id in self._only]
        records: list[SourceRecord] = []
        if not partitions:
            return records
        share = max(1, max_records // len(partitions))
        for partition_id in partitions:
            room = min(share, max_records - len(records))
            if room <= 0:
                break
            response: Any = self.client.search(
                index=self.index,
                query={"term": {"partitionId": partition_id}},
                sort=[{"position": "asc"}],
                search_after=[positions.get((partition_id, ""), 0)],
                size=room,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            for hit in response["hits"]["hits"]:
                source = hit["_source"]
                position = source.get("position") if isinstance(source, dict) else None
                records.append(
                    SourceRecord(
                        payload=source,
                        partition_hint=partition_id,
                        position_hint=position if isinstance(position, int) else None,
                        source_ref=str(hit.get("_id", "")),
                        # Paging is by this very field (search_after), so a bad document must move
                        # the position past it, or every fetch would return it again.
                        position_trusted=isinstance(position, int),
                    )
                )
        return records

    def rewind(self) -> None:
        return None  # reads by position: the next fetch starts from the committed positions

    def acknowledge(self, records: Sequence[SourceRecord]) -> None:
        """Elasticsearch is read by position; nothing to acknowledge."""

    def close(self) -> None:
        self.client.close()
