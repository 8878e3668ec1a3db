"""Each exporter's acknowledged position per partition, durable in the engine's data directory.

`DIR/exporters/<exporter id>.json` holds, per partition, the position of the last record the
exporter's target has confirmed (Zeebe's exporter position, `Controller.updateLastExportedRecordPosition`)
and the exporter's own metadata (the Elasticsearch exporter's per value type `sequence` counters,
reference §3.2). It is written to a temporary file, fsynced and renamed over the old one, then the
directory is fsynced: after a crash (kill -9 or power loss) the file is either the old or the new
version, never a torn one. A restarted engine resumes every exporter right after its position.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("engine.exporters")


class ExporterPositions:
    """The durable (position, metadata) per partition of one exporter."""

    def __init__(self, data_dir: str | Path, exporter_id: str):
        self.directory = Path(data_dir) / "exporters"
        self.path = self.directory / f"{exporter_id}.json"
        self.positions: dict[int, int] = {}
        self.metadata: dict[int, dict[str, Any]] = {}
        self.dirty = False
        self._load()

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        try:
            document = json.loads(text)
            for partition, entry in document["partitions"].items():
                self.positions[int(partition)] = int(entry["position"])
                self.metadata[int(partition)] = dict(entry.get("metadata") or {})
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Only a rename ever replaces the file, so this is outside damage: refuse to guess
            # (starting from 0 would export everything again to a target that has it).
            raise ValueError(
                f"exporter position file {self.path} is unreadable ({exc}); fix or remove it "
                "(removing it exports every record again)"
            ) from None

    def position(self, partition_id: int) -> int:
        return self.positions.get(partition_id, 0)

    def update(self, partition_id: int, position: int, metadata: dict[str, Any] | None = None) -> None:
        """Acknowledge in memory; `flush` makes it durable."""
        self.positions[partition_id] = position
        if metadata is not None:
            self.metadata[partition_id] = metadata
        self.dirty = True

    def save(self, partition_id: int, position: int, metadata: dict[str, Any] | None = None) -> None:
        self.update(partition_id, position, metadata)
        self.flush()

    def flush(self) -> None:
        document = {
            "partitions": {
                str(partition): {"position": pos, "metadata": self.metadata.get(partition, {})}
                for partition, pos in sorted(self.positions.items())
            }
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        # Per process: a child left over from a killed engine may still write for a moment while
        # the restarted engine's child starts; each rename is then still of a whole file.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, separators=(",", ":")))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.dirty = False
