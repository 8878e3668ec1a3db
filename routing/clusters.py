"""Clusters behind the proxy: their configuration, the live set, and where the list comes from.

A :class:`Cluster` is configuration (id, name, gateway address, weight, state; DESIGN §2).
Health is *not* configuration: the proxy's health checker tracks it separately
(:mod:`routing.health`), so swapping the list in never resets what was learned about a cluster.

The list can come from anywhere. A *cluster source* is any callable returning the current list
(of :class:`Cluster` or of dicts shaped like the ``--clusters`` JSON file); the proxy calls it in a
worker thread (so a Django ORM query is fine) at most every second and swaps the list in when it
changed. :func:`file_source` and :func:`static_source` are the two sources the CLI uses.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from routing.keys import UnknownClusterError, check_cluster_id
from routing.security import SPEC_KEYS, SecurityConfigError, UpstreamSecurity

log = logging.getLogger(__name__)


class ClusterState(enum.StrEnum):
    """Operator-chosen state (DESIGN §2); health is tracked separately."""

    ACTIVE = "active"  # gets new instances, serves jobs and operations
    DRAINING = "draining"  # no new instances; jobs and operations still served
    DISABLED = "disabled"  # nothing is routed to it


class ClusterConfigError(ValueError):
    """A cluster list or cluster spec is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Cluster:
    """One Zeebe cluster as configured: where its gateway is and how it takes part in routing."""

    id: int
    address: str
    name: str = ""
    weight: int = 1
    state: ClusterState = ClusterState.ACTIVE
    # TLS/OAuth to reach the gateway (routing/security.py); None = plaintext. Compared, so a
    # changed setting swaps the list in and the proxy opens a new channel.
    security: UpstreamSecurity | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            check_cluster_id(self.id)
        except UnknownClusterError as error:
            raise ClusterConfigError(str(error)) from None
        if not isinstance(self.address, str) or ":" not in self.address:
            raise ClusterConfigError(f"cluster {self.id}: address must be HOST:PORT, got {self.address!r}")
        host, _, port = self.address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ClusterConfigError(
                f"cluster {self.id}: address must be HOST:PORT with a port 1..65535, got {self.address!r}"
            )
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 0:
            raise ClusterConfigError(
                f"cluster {self.id}: weight must be an integer >= 0, got {self.weight!r}"
            )
        if not isinstance(self.state, ClusterState):
            try:
                object.__setattr__(self, "state", ClusterState(str(self.state).lower()))
            except ValueError:
                raise ClusterConfigError(
                    f"cluster {self.id}: state must be one of "
                    f"{', '.join(s.value for s in ClusterState)}, got {self.state!r}"
                ) from None
        if not self.name:
            object.__setattr__(self, "name", f"cluster-{self.id}")

    @property
    def label(self) -> str:
        """How messages name the cluster: ``2 'blue' (127.0.0.1:26500)``."""
        return f"{self.id} {self.name!r} ({self.address})"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Cluster:
        """Build from a ``--clusters`` JSON entry ``{"id", "name", "address", "weight", "state"}``."""
        if not isinstance(data, Mapping):
            raise ClusterConfigError(f"a cluster entry must be an object, got {data!r}")
        unknown = set(data) - {"id", "name", "address", "weight", "state", "security"}
        missing = {"id", "address"} - set(data)
        if missing:
            raise ClusterConfigError(f"cluster entry {dict(data)!r} lacks {', '.join(sorted(missing))}")
        cluster_id = data["id"]
        if isinstance(cluster_id, str) and cluster_id.isdigit():
            cluster_id = int(cluster_id)
        weight = data.get("weight", 1)
        if weight is None:
            weight = 1
        security = data.get("security")
        if not isinstance(security, UpstreamSecurity):
            try:
                security = UpstreamSecurity.from_mapping(security)
            except SecurityConfigError as error:
                raise ClusterConfigError(f"cluster {cluster_id}: security: {error}") from None
        return cls(
            id=cluster_id,
            address=data["address"],
            name=str(data.get("name") or ""),
            weight=weight,
            state=data.get("state") or ClusterState.ACTIVE,
            security=security,
            extra={k: data[k] for k in unknown},
        )

    def to_mapping(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "address": self.address,
            "weight": self.weight,
            "state": self.state.value,
            **({"security": self.security.to_mapping()} if self.security is not None else {}),
        }


def parse_cluster_spec(spec: str) -> Cluster:
    """Parse the CLI form ``ID=HOST:PORT[,weight=W][,state=STATE][,name=NAME]``."""
    head, *options = spec.split(",")
    if "=" not in head:
        raise ClusterConfigError(
            f"--cluster {spec!r}: expected ID=HOST:PORT[,weight=W][,state=STATE][,name=NAME]"
        )
    raw_id, address = head.split("=", 1)
    if not raw_id.strip().isdigit():
        raise ClusterConfigError(f"--cluster {spec!r}: cluster id {raw_id!r} is not a number")
    values: dict[str, Any] = {"id": int(raw_id), "address": address.strip()}
    security: dict[str, str] = {}
    for option in options:
        name, sep, value = option.partition("=")
        name = name.strip()
        if sep and name in SPEC_KEYS:
            security[name] = value.strip()
            continue
        if not sep or name not in {"weight", "state", "name"}:
            raise ClusterConfigError(
                f"--cluster {spec!r}: unknown option {option!r} (use weight=, state=, name=, "
                f"or the security settings {', '.join(f'{key}=' for key in SPEC_KEYS)})"
            )
        if name == "weight":
            if not value.strip().isdigit():
                raise ClusterConfigError(f"--cluster {spec!r}: weight {value!r} is not a number")
            values["weight"] = int(value)
        else:
            values[name] = value.strip()
    if security:
        values["security"] = security
    try:
        return Cluster.from_mapping(values)
    except ClusterConfigError as error:
        raise ClusterConfigError(f"--cluster {spec!r}: {error}") from None


def validate_cluster_list(clusters: Iterable[Cluster | Mapping[str, Any]]) -> tuple[Cluster, ...]:
    """Normalise a list from a source; raise ClusterConfigError on duplicates or bad entries."""
    result: list[Cluster] = []
    seen: set[int] = set()
    for entry in clusters:
        cluster = entry if isinstance(entry, Cluster) else Cluster.from_mapping(entry)
        if cluster.id in seen:
            raise ClusterConfigError(f"cluster id {cluster.id} appears twice")
        seen.add(cluster.id)
        result.append(cluster)
    return tuple(sorted(result, key=lambda c: c.id))


ClusterSource = Callable[[], Iterable[Cluster | Mapping[str, Any]]]


def static_source(clusters: Iterable[Cluster]) -> ClusterSource:
    """A source that always returns the same list (the ``--cluster`` CLI form)."""
    frozen = validate_cluster_list(clusters)
    return lambda: frozen


def file_source(path: str | os.PathLike[str]) -> ClusterSource:
    """A source reading a JSON list of ``{"id", "name", "address", "weight", "state"}``.

    Re-reads only when the file's mtime/size changed. A file that is unreadable or invalid raises
    ClusterConfigError (the proxy keeps its previous list and logs the error).
    """
    file_path = Path(path)
    cache: dict[str, Any] = {"stamp": None, "clusters": ()}
    lock = threading.Lock()

    def read() -> tuple[Cluster, ...]:
        with lock:
            try:
                stat = file_path.stat()
            except OSError as error:
                raise ClusterConfigError(f"cannot read cluster file {file_path}: {error}") from None
            stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if stamp == cache["stamp"]:
                cached: tuple[Cluster, ...] = cache["clusters"]
                return cached
            try:
                data = json.loads(file_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise ClusterConfigError(f"cluster file {file_path}: {error}") from None
            if not isinstance(data, list):
                raise ClusterConfigError(f"cluster file {file_path}: expected a JSON list of cluster objects")
            try:
                clusters = validate_cluster_list(data)
            except ClusterConfigError as error:
                raise ClusterConfigError(f"cluster file {file_path}: {error}") from None
            cache["stamp"] = stamp
            cache["clusters"] = clusters
            return clusters

    return read


class ClusterSet:
    """The current cluster list, swapped atomically; readers never see a half-updated list.

    Thread-safe: replacing builds a new immutable tuple and dict and swaps the reference.
    """

    def __init__(self, clusters: Iterable[Cluster | Mapping[str, Any]] = ()) -> None:
        self._clusters: tuple[Cluster, ...] = ()
        self._by_id: dict[int, Cluster] = {}
        self._active: tuple[Cluster, ...] = ()
        self._routable: tuple[Cluster, ...] = ()
        self._listeners: list[Callable[[tuple[Cluster, ...], tuple[Cluster, ...]], None]] = []
        self.replace(clusters)

    def replace(self, clusters: Iterable[Cluster | Mapping[str, Any]]) -> bool:
        """Swap in a new list; return True if it differs from the current one."""
        new = validate_cluster_list(clusters)
        old = self._clusters
        if new == old:
            return False
        self._by_id = {c.id: c for c in new}
        # Derived lists read on every placed call, built once per list (before the swap).
        self._active = tuple(c for c in new if c.state is ClusterState.ACTIVE and c.weight > 0)
        self._routable = tuple(c for c in new if c.state is not ClusterState.DISABLED)
        self._clusters = new
        for listener in list(self._listeners):
            listener(old, new)
        return True

    def on_change(self, listener: Callable[[tuple[Cluster, ...], tuple[Cluster, ...]], None]) -> None:
        """Call ``listener(old, new)`` after each effective replace."""
        self._listeners.append(listener)

    def __iter__(self) -> Iterator[Cluster]:
        return iter(self._clusters)

    def __len__(self) -> int:
        return len(self._clusters)

    @property
    def clusters(self) -> tuple[Cluster, ...]:
        return self._clusters

    def get(self, cluster_id: int) -> Cluster | None:
        return self._by_id.get(cluster_id)

    def routable(self) -> tuple[Cluster, ...]:
        """Clusters anything may be routed to (not disabled)."""
        return self._routable

    def active(self) -> tuple[Cluster, ...]:
        """Clusters that may get new instances (state active, weight > 0)."""
        return self._active
