"""Deployment journal: every deployment the proxy accepted, and which clusters have it.

DeployResource goes to every non-disabled cluster (DESIGN §3). A cluster that was down or
failed transiently must still get it, in the original order (so versions line up), when it comes
back; a cluster added later gets the whole history. Redeploying identical content is a no-op in
Zeebe (reference §1.3 "duplicate"), so a replay after an ambiguous failure is harmless.

The journal lives in memory and, given a path, in a JSON file rewritten atomically after each
change (tmp file + rename), so a restarted proxy still knows what a down cluster missed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1


@dataclass
class JournalEntry:
    """One accepted deployment: its resources and per-cluster delivery outcome."""

    seq: int
    resources: list[tuple[str, bytes]]
    tenant_id: str = ""
    created: float = field(default_factory=time.time)
    delivered: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)

    @property
    def resource_names(self) -> list[str]:
        return [name for name, _ in self.resources]

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "tenantId": self.tenant_id,
            "created": self.created,
            "resources": [
                {"name": name, "content": base64.b64encode(content).decode("ascii")}
                for name, content in self.resources
            ],
            "delivered": sorted(self.delivered),
            "rejected": {str(k): v for k, v in sorted(self.rejected.items())},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JournalEntry:
        return cls(
            seq=int(data["seq"]),
            tenant_id=str(data.get("tenantId", "")),
            created=float(data.get("created", 0.0)),
            resources=[(str(r["name"]), base64.b64decode(r["content"])) for r in data["resources"]],
            delivered={int(c) for c in data.get("delivered", [])},
            rejected={int(k): str(v) for k, v in data.get("rejected", {}).items()},
        )


class DeploymentJournal:
    """Ordered deployments and their delivery per cluster; optionally persisted to ``path``."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: list[JournalEntry] = []
        self._next_seq = 1
        self._lock = threading.Lock()
        # Bumped on every change; in_sync() answers from a cache per version, because placement
        # asks it for every new instance and the journal only grows.
        self._version = 0
        self._in_sync_cache: dict[int, tuple[int, bool]] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = [JournalEntry.from_json(e) for e in data["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as error:
            # Keep the unreadable file for inspection rather than overwriting what it held.
            backup = self.path.with_suffix(f".unreadable-{int(time.time())}")
            os.replace(self.path, backup)
            log.error(
                "deployment journal %s is unreadable (%s); moved it to %s, starting empty",
                self.path,
                error,
                backup,
            )
            return
        self._entries = sorted(entries, key=lambda e: e.seq)
        self._next_seq = (self._entries[-1].seq + 1) if self._entries else 1
        log.info("deployment journal: loaded %d entries from %s", len(self._entries), self.path)

    def _save(self) -> None:
        self._version += 1
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps({"version": JOURNAL_VERSION, "entries": [e.to_json() for e in self._entries]})
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def append(self, resources: list[tuple[str, bytes]], tenant_id: str = "") -> JournalEntry:
        with self._lock:
            entry = JournalEntry(seq=self._next_seq, resources=resources, tenant_id=tenant_id)
            self._next_seq += 1
            self._entries.append(entry)
            self._save()
            return entry

    def mark_delivered(self, entry: JournalEntry, cluster_id: int) -> None:
        with self._lock:
            entry.delivered.add(cluster_id)
            entry.rejected.pop(cluster_id, None)
            self._save()

    def mark_rejected(self, entry: JournalEntry, cluster_id: int, error: str) -> None:
        """A cluster refused it for good (invalid there): stop retrying, keep the reason."""
        with self._lock:
            entry.rejected[cluster_id] = error
            self._save()

    def drop(self, entry: JournalEntry) -> None:
        """No cluster accepted it: the client got an error, so it is not a deployment."""
        with self._lock:
            if entry in self._entries:
                self._entries.remove(entry)
                self._save()

    def pending_for(self, cluster_id: int, up_to_seq: int | None = None) -> list[JournalEntry]:
        """Entries ``cluster_id`` has neither received nor rejected, oldest first."""
        return [
            e
            for e in self._entries
            if cluster_id not in e.delivered
            and cluster_id not in e.rejected
            and (up_to_seq is None or e.seq <= up_to_seq)
        ]

    def in_sync(self, cluster_id: int) -> bool:
        cached = self._in_sync_cache.get(cluster_id)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        result = not self.pending_for(cluster_id)
        self._in_sync_cache[cluster_id] = (self._version, result)
        return result

    @property
    def entries(self) -> list[JournalEntry]:
        return list(self._entries)
