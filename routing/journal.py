"""Deployment journal: every deployment the proxy accepted, and which clusters have it.

DeployResource goes to every non-disabled cluster (DESIGN §3). A cluster that was down or
failed transiently must still get it, in the original order (so versions line up), when it comes
back; a cluster added later gets the whole history. Redeploying identical content is a no-op in
Zeebe (reference §1.3 "duplicate") **only while it is the latest version** of its process: the
engine (and Zeebe) compare with the latest version's checksum, so replaying an older deployment
after a newer one of the same process creates a new version with the old content. Order per
cluster is therefore the invariant everything here protects.

The journal lives in memory and, given a path, in a JSON file rewritten atomically after each
change (tmp file + rename), so a restarted proxy still knows what a down cluster missed.

Several proxies (and routing channels, routing/channel.py) in front of the same clusters share
one journal by being given the same file (``--journal``). Then the file is the truth:

* every change is made under an exclusive ``flock`` of ``<file>.lock``, on the file re-read
  inside the lock (sequence numbers come from the file, so two processes never reuse one);
* readers re-read it whenever its inode/mtime/size changed (one ``stat`` per read), so a
  deployment made through proxy A is known to proxy B's placement at once;
* delivering to a cluster (live deploys and replays alike) holds ``<file>.cluster-<id>.lock``,
  and the entries still pending are read after taking it, so two processes never interleave
  deployments to one cluster or send one twice out of order;
* each cluster's answer is stored with the entry, so a live deploy whose entry another process
  delivered first (its catch-up loop) still answers with that cluster's real response.

A shared file needs a file system with working ``flock`` between the processes (a local disk;
hosts in front of the same clusters need a shared one, or one proxy per set of clusters).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1

DELIVERY_LOCK_POLL = 0.005
"""Seconds between attempts at a cluster's delivery lock held by another process (the event loop
must not block on it)."""


@dataclass
class JournalEntry:
    """One accepted deployment: its resources and per-cluster delivery outcome."""

    seq: int
    resources: list[tuple[str, bytes]]
    tenant_id: str = ""
    created: float = field(default_factory=time.time)
    delivered: set[int] = field(default_factory=set)
    rejected: dict[int, str] = field(default_factory=dict)
    responses: dict[int, bytes] = field(default_factory=dict)
    """Each cluster's DeployResourceResponse (serialized, cluster-local keys)."""

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
            "responses": {
                str(k): base64.b64encode(v).decode("ascii") for k, v in sorted(self.responses.items())
            },
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
            responses={int(k): base64.b64decode(v) for k, v in data.get("responses", {}).items()},
        )


class DeploymentJournal:
    """Ordered deployments and their delivery per cluster; optionally persisted to ``path``
    (and then shared with every process given the same path; see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: list[JournalEntry] = []
        self._next_seq = 1
        self._lock = threading.Lock()
        # Bumped on every change; in_sync() answers from a cache per version, because placement
        # asks it for every new instance.
        self._version = 0
        self._in_sync_cache: dict[int, tuple[int, bool]] = {}
        self._stamp: tuple[int, int, int] | None = None  # the file as last read or written
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._exclusive(refresh=False):
                self._load(initial=True)

    # ----------------------------------------------------------------- file

    def _file_stamp(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _load(self, *, initial: bool = False) -> None:
        assert self.path is not None
        stamp = self._file_stamp()
        if stamp is None:
            self._entries, self._stamp = [], None
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = [JournalEntry.from_json(e) for e in data["entries"]]
            next_seq = int(data.get("nextSeq", 0))
        except (OSError, ValueError, KeyError, TypeError) as error:
            if not initial:  # a file we read before: keep what we have, say so
                log.error(
                    "deployment journal %s became unreadable (%s); keeping the last good copy",
                    self.path,
                    error,
                )
                self._stamp = stamp
                return
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
        self._next_seq = max(next_seq, (self._entries[-1].seq + 1) if self._entries else 1, self._next_seq)
        self._stamp = stamp
        self._version += 1
        if initial:
            log.info("deployment journal: loaded %d entries from %s", len(self._entries), self.path)

    def _refresh(self) -> None:
        """Re-read the file if another process changed it since we last read or wrote it."""
        if self.path is not None and self._file_stamp() != self._stamp:
            self._load()

    @contextlib.contextmanager
    def _exclusive(self, *, refresh: bool = True) -> Iterator[None]:
        """This process's lock, plus the file's when there is one; the file re-read inside."""
        with self._lock:
            if self.path is None:
                yield
                return
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # held for a file read/write only: short
                if refresh:
                    self._refresh()
                yield
            finally:
                os.close(fd)  # releases the flock

    def _save(self) -> None:
        self._version += 1
        if self.path is None:
            return
        payload = json.dumps(
            {
                "version": JOURNAL_VERSION,
                "nextSeq": self._next_seq,
                "entries": [e.to_json() for e in self._entries],
            }
        )
        fd, tmp = tempfile.mkstemp(prefix=".journal-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(payload)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = self._file_stamp()

    def _stored(self, entry: JournalEntry) -> JournalEntry | None:
        """The current object for ``entry``'s seq (a re-read replaces the objects)."""
        for candidate in self._entries:
            if candidate.seq == entry.seq:
                return candidate
        return None

    # ----------------------------------------------------------------- changes

    def append(self, resources: list[tuple[str, bytes]], tenant_id: str = "") -> JournalEntry:
        with self._exclusive():
            entry = JournalEntry(seq=self._next_seq, resources=resources, tenant_id=tenant_id)
            self._next_seq += 1
            self._entries.append(entry)
            self._save()
            return entry

    def _targets(self, entry: JournalEntry) -> list[JournalEntry]:
        """``entry`` and, if a re-read replaced it, the current object of the same seq."""
        stored = self._stored(entry)
        return [entry] if stored is None or stored is entry else [entry, stored]

    def mark_delivered(self, entry: JournalEntry, cluster_id: int, response: bytes | None = None) -> None:
        with self._exclusive():
            for target in self._targets(entry):
                target.delivered.add(cluster_id)
                target.rejected.pop(cluster_id, None)
                if response is not None:
                    target.responses[cluster_id] = response
            self._save()

    def mark_rejected(self, entry: JournalEntry, cluster_id: int, error: str) -> None:
        """A cluster refused it for good (invalid there): stop retrying, keep the reason."""
        with self._exclusive():
            for target in self._targets(entry):
                target.rejected[cluster_id] = error
            self._save()

    def drop(self, entry: JournalEntry) -> None:
        """No cluster accepted it: the client got an error, so it is not a deployment."""
        with self._exclusive():
            stored = self._stored(entry)
            if stored is not None:
                self._entries.remove(stored)
                self._save()

    # ----------------------------------------------------------------- reads

    def pending_for(self, cluster_id: int, up_to_seq: int | None = None) -> list[JournalEntry]:
        """Entries ``cluster_id`` has neither received nor rejected, oldest first."""
        with self._lock:
            self._refresh()
            return [
                e
                for e in self._entries
                if cluster_id not in e.delivered
                and cluster_id not in e.rejected
                and (up_to_seq is None or e.seq <= up_to_seq)
            ]

    def response_for(self, entry: JournalEntry, cluster_id: int) -> bytes | None:
        """The stored answer of ``cluster_id`` to ``entry`` (delivered by whichever process)."""
        with self._lock:
            self._refresh()
            stored = self._stored(entry)
            return stored.responses.get(cluster_id) if stored is not None else None

    def in_sync(self, cluster_id: int) -> bool:
        if self.path is not None:
            with self._lock:
                self._refresh()
        cached = self._in_sync_cache.get(cluster_id)
        if cached is not None and cached[0] == self._version:
            return cached[1]
        result = not self.pending_for(cluster_id)
        self._in_sync_cache[cluster_id] = (self._version, result)
        return result

    @property
    def version(self) -> int:
        """Changes whenever the entries change (here or, once re-read, in another process);
        read it after :attr:`entries` to key a cache derived from them."""
        return self._version

    @property
    def entries(self) -> list[JournalEntry]:
        with self._lock:
            if self.path is not None:
                self._refresh()
            return list(self._entries)

    # ----------------------------------------------------------------- delivery

    @contextlib.asynccontextmanager
    async def delivery_lock(self, cluster_id: int, timeout: float | None) -> AsyncIterator[None]:
        """Exclusive right to deploy to ``cluster_id`` among the processes sharing the file
        (within a process the caller also holds an asyncio lock). Raises TimeoutError after
        ``timeout`` seconds (None: 30)."""
        if self.path is None:
            yield
            return
        fd = os.open(f"{self.path}.cluster-{cluster_id}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + (30.0 if timeout is None else timeout)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"cluster {cluster_id}'s deployments are being delivered by another process"
                        ) from None
                    await asyncio.sleep(DELIVERY_LOCK_POLL)
            yield
        finally:
            os.close(fd)
