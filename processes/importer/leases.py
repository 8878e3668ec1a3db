"""Leases: several `import_records` processes split the (cluster, partition) streams between them.

One ImportLease row per unit of import: a (cluster, partition), or the whole cluster (partition 0)
when its source cannot be read by partition (Redis streams hold every partition, reference §3.9).
Every process registers itself (ImporterProcess) and, about once a second between batches,
runs a round (`Leases.round`):

1. heartbeat: its ImporterProcess row, with its database session (pid, start time);
2. dead importers go: a row that expired, or whose session is gone (the process was killed:
   its connection closed), is deleted, and its leases are free to take at once;
3. renew: its own leases' ``expires_at`` moves on (database clock);
4. balance: the fair share is ceil(units / live importers). Below it, the process takes free,
   expired or dead holders' leases (a compare-and-set on ``token``, which grows by one on every
   change of hands); above the fair share while another live importer holds less than the floor,
   it releases one lease per round (so two processes do not see-saw).

Nothing applied twice or skipped, even when a holder is paused (SIGSTOP) and resumes after its
lease moved on: every batch's transaction starts with `fence`, an UPDATE of the batch's lease
rows that must find them still held by this process with the token it took them with. The row
lock it takes makes a concurrent takeover wait for the batch to commit (and then see the renewed
expiry); a takeover that committed first makes the fence fail, and the stale batch rolls back
(LeaseLost). The projection also compares the stored positions with those the batch was read
after (positions.check_expected), a second fence on the data itself.

A holder paused inside a transaction keeps its row locks until PostgreSQL ends its session
(`idle_in_transaction_session_timeout`, set on the importer's session: IDLE_IN_TRANSACTION_SECONDS),
so a takeover waits that long at most; a holder paused between batches is replaced once its
leases expire (`ttl_seconds`). A killed holder is replaced within a round (its session is gone).
The liveness check reads pg_stat_activity: it assumes direct sessions (not a transaction-pooling
PgBouncer, where backend pids say nothing about a client; there, only expiry hands over).

SQLite (the demo) runs one importer: no leases, everything is granted.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import DatabaseError, connection, transaction

from processes.models import ImporterProcess, ImportLease

logger = logging.getLogger(__name__)

Unit = tuple[int, int]  # (cluster id, partition id); partition 0: the whole cluster
WHOLE_CLUSTER = 0

DEFAULT_TTL_SECONDS = 10.0
ROUND_SECONDS = 1.0
# A takeover waits at most this long for a row a paused holder locked (then it tries next round).
TAKE_LOCK_TIMEOUT_MS = 500
# PostgreSQL ends the session of an importer idle this long inside a transaction (paused, or
# hung): its row locks go with it. Far above the Python work between two statements of a batch.
IDLE_IN_TRANSACTION_SECONDS = 20

_LEASE = ImportLease._meta.db_table
_PROCESS = ImporterProcess._meta.db_table


class LeaseLost(Exception):
    """This process no longer holds a lease a batch needs; the batch rolls back (see `fence`)."""


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"[:128]


class Leases:
    """This process's leases; see the module docstring."""

    def __init__(self, *, holder: str | None = None, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        if ttl_seconds < 2 * ROUND_SECONDS:
            raise ValueError(f"lease ttl must be at least {2 * ROUND_SECONDS:g} s, got {ttl_seconds:g}")
        self.holder = holder or default_holder()
        self.ttl_seconds = ttl_seconds
        self.enabled = connection.vendor == "postgresql"
        # unit -> token this process took it with
        self.held: dict[Unit, int] = {}
        self._units: set[Unit] = set()
        self._known_rows: set[Unit] = set()
        self._session: Any = None
        self._next_round = 0.0
        self._said: str | None = None

    # -- what the runner asks ----------------------------------------------------------------------

    def partitions(self, cluster_id: int) -> dict[int, int]:
        """partition -> token of the cluster's units this process holds (0: the whole cluster)."""
        return {
            partition: token for (cluster, partition), token in self.held.items() if cluster == cluster_id
        }

    def due(self) -> bool:
        return time.monotonic() >= self._next_round

    def round(self, units: Iterable[Unit]) -> None:
        """One round (see the module docstring); `units` are those this process imports."""
        self._next_round = time.monotonic() + ROUND_SECONDS
        self._units = set(units)
        if not self.enabled:
            self.held = dict.fromkeys(self._units, 0)
            return
        self._prepare_session()
        self._heartbeat()
        self._ensure_rows()
        self._renew()
        self._balance()
        self._say_holdings()

    def fence(self, cluster_id: int, partitions: Iterable[int]) -> None:
        """Inside a batch's transaction: the batch's units are still ours (LeaseLost if not)."""
        if not self.enabled:
            return
        wanted = sorted(set(partitions))
        if not wanted:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE \"{_LEASE}\" SET expires_at = now() + %s * interval '1 second' "  # noqa: S608
                "WHERE cluster_id = %s AND partition_id = ANY(%s) AND holder = %s "
                "RETURNING partition_id, token",
                [self.ttl_seconds, cluster_id, wanted, self.holder],
            )
            found = dict(cursor.fetchall())
        lost = [p for p in wanted if found.get(p) is None or found[p] != self.held.get((cluster_id, p))]
        if lost:
            for partition in lost:
                self.held.pop((cluster_id, partition), None)
            raise LeaseLost(
                f"cluster {cluster_id}: lease of partition{'s' if len(lost) > 1 else ''} "
                f"{', '.join(map(str, lost))} moved to another importer; the batch read for it is dropped"
            )

    def close(self) -> None:
        """Hand everything over at once (a clean stop): release the leases, leave the membership."""
        if not self.enabled or (not self.held and self._session is None):
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE \"{_LEASE}\" SET holder = '', expires_at = now() WHERE holder = %s",  # noqa: S608
                    [self.holder],
                )
                cursor.execute(f'DELETE FROM "{_PROCESS}" WHERE holder = %s', [self.holder])  # noqa: S608
        except DatabaseError as error:
            logger.warning("could not release the import leases (they expire by themselves): %s", error)
        self.held.clear()

    # -- the round's steps -------------------------------------------------------------------------

    def _prepare_session(self) -> None:
        connection.ensure_connection()
        raw = connection.connection
        if raw is self._session:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_SECONDS}s'")
        if self._session is not None and self.held:
            # A new session (the database restarted, the connection was lost): the old one's
            # liveness is gone, so others may take the leases; the fence tells, batch by batch.
            logger.warning("importer %s: new database session; re-checking its leases", self.holder)
        self._session = raw

    def _heartbeat(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f'INSERT INTO "{_PROCESS}" (holder, backend_pid, backend_start, started_at, expires_at) '  # noqa: S608
                "SELECT %s, pid, backend_start, now(), now() + %s * interval '1 second' "
                "FROM pg_stat_activity WHERE pid = pg_backend_pid() "
                "ON CONFLICT (holder) DO UPDATE SET backend_pid = EXCLUDED.backend_pid, "
                "backend_start = EXCLUDED.backend_start, expires_at = EXCLUDED.expires_at",
                [self.holder, self.ttl_seconds],
            )
            # Dead importers: expired, or their session is gone (killed). A session another role
            # owns may show no backend_start: judged by its pid alone then.
            cursor.execute(
                f'DELETE FROM "{_PROCESS}" AS member WHERE member.expires_at < now() OR NOT EXISTS ('  # noqa: S608
                "SELECT 1 FROM pg_stat_activity AS activity WHERE activity.pid = member.backend_pid "
                "AND (activity.backend_start IS NULL OR activity.backend_start = member.backend_start))"
            )

    def _ensure_rows(self) -> None:
        missing = self._units - self._known_rows
        if not missing:
            return
        with connection.cursor() as cursor:
            for cluster_id, partition_id in sorted(missing):
                cursor.execute(
                    f'INSERT INTO "{_LEASE}" (cluster_id, partition_id, holder, token) '  # noqa: S608
                    "VALUES (%s, %s, '', 0) ON CONFLICT (cluster_id, partition_id) DO NOTHING",
                    [cluster_id, partition_id],
                )
        self._known_rows |= missing

    def _renew(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE \"{_LEASE}\" SET expires_at = now() + %s * interval '1 second' "  # noqa: S608
                "WHERE holder = %s RETURNING cluster_id, partition_id, token",
                [self.ttl_seconds, self.holder],
            )
            rows = cursor.fetchall()
        now_held = {(cluster_id, partition_id): token for cluster_id, partition_id, token in rows}
        for unit in set(self.held) - set(now_held):
            logger.warning(
                "importer %s: lease of cluster %s %s taken by another importer",
                self.holder,
                unit[0],
                _unit_name(unit),
            )
        self.held = {unit: token for unit, token in now_held.items() if unit in self._units}
        # Units this process no longer imports (a cluster went): let them go.
        for unit in set(now_held) - self._units:
            self._release(unit, now_held[unit])

    def _balance(self) -> None:
        units = sorted(self._units)
        if not units:
            return
        clusters = sorted({cluster_id for cluster_id, _ in units})
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT holder, expires_at > now() + %s * interval '1 second' FROM \"{_PROCESS}\" "  # noqa: S608
                "WHERE expires_at > now()",
                [self.ttl_seconds / 2],
            )
            members = dict(cursor.fetchall())  # holder -> heartbeat recent (not paused)
            cursor.execute(
                "SELECT lease.id, lease.cluster_id, lease.partition_id, lease.holder, lease.token, "  # noqa: S608
                f"lease.expires_at < now() OR lease.holder = '' OR member.holder IS NULL FROM \"{_LEASE}\" AS lease "
                f'LEFT JOIN "{_PROCESS}" AS member ON member.holder = lease.holder AND member.expires_at > now() '
                "WHERE lease.cluster_id = ANY(%s)",
                [clusters],
            )
            rows = [row for row in cursor.fetchall() if (row[1], row[2]) in self._units]
        members.setdefault(self.holder, True)
        total = len(rows)
        target = math.ceil(total / len(members))
        floor = total // len(members)
        holdings: dict[str, int] = dict.fromkeys(members, 0)
        for _, _, _, holder, _, takeable in rows:
            if not takeable and holder in holdings:
                holdings[holder] += 1
        mine = len(self.held)
        if mine < target:
            # Free leases first, then those of dead or expired holders; spread over clusters.
            candidates = sorted(
                (row for row in rows if row[5] and row[3] != self.holder),
                key=lambda row: (row[3] != "", row[2], row[1]),
            )
            for lease_id, cluster_id, partition_id, _, token, _ in candidates:
                if mine >= target:
                    break
                if self._take(lease_id, (cluster_id, partition_id), token):
                    mine += 1
        elif mine > floor and any(
            count < floor and members.get(holder)
            for holder, count in holdings.items()
            if holder != self.holder
        ):
            unit = max(self.held)
            self._release(unit, self.held[unit])
            self.held.pop(unit, None)
            logger.info(
                "importer %s: released cluster %s %s to an importer below its fair share (%d of %d units, "
                "%d importers)",
                self.holder,
                unit[0],
                _unit_name(unit),
                mine - 1,
                total,
                len(members),
            )

    def _take(self, lease_id: int, unit: Unit, token: int) -> bool:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                # A row a paused holder locked inside its batch: try again next round.
                cursor.execute(f"SET LOCAL lock_timeout = '{TAKE_LOCK_TIMEOUT_MS}ms'")
                cursor.execute(
                    f'UPDATE "{_LEASE}" AS lease SET holder = %s, token = lease.token + 1, '  # noqa: S608
                    "expires_at = now() + %s * interval '1 second', acquired_at = now() "
                    "WHERE lease.id = %s AND lease.token = %s AND (lease.holder = '' OR lease.expires_at < now() "
                    f'OR NOT EXISTS (SELECT 1 FROM "{_PROCESS}" AS member '
                    "WHERE member.holder = lease.holder AND member.expires_at > now())) "
                    "RETURNING lease.token",
                    [self.holder, self.ttl_seconds, lease_id, token],
                )
                row = cursor.fetchone()
        except DatabaseError as error:
            if "lock timeout" not in str(error) and "canceling statement" not in str(error):
                raise
            return False
        if row is None:
            return False  # another importer was quicker
        self.held[unit] = row[0]
        logger.info("importer %s: took the lease of cluster %s %s", self.holder, unit[0], _unit_name(unit))
        return True

    def _release(self, unit: Unit, token: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE \"{_LEASE}\" SET holder = '', expires_at = now() "  # noqa: S608
                "WHERE cluster_id = %s AND partition_id = %s AND holder = %s AND token = %s",
                [unit[0], unit[1], self.holder, token],
            )

    def _say_holdings(self) -> None:
        said = ", ".join(f"{cluster_id}/{_unit_name((cluster_id, p))}" for cluster_id, p in sorted(self.held))
        if said != self._said:
            logger.info(
                "importer %s: importing %s", self.holder, said or "nothing (all units held by others)"
            )
            self._said = said


def _unit_name(unit: Unit) -> str:
    return f"partition {unit[1]}" if unit[1] != WHOLE_CLUSTER else "all partitions"


def units_of(cluster_partitions: Mapping[int, Iterable[int] | None]) -> set[Unit]:
    """Units from each cluster's partitions (None: the source cannot be split, one unit)."""
    units: set[Unit] = set()
    for cluster_id, partitions in cluster_partitions.items():
        if partitions is None:
            units.add((cluster_id, WHOLE_CLUSTER))
        else:
            units.update((cluster_id, partition_id) for partition_id in partitions if partition_id > 0)
    return units
