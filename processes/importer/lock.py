"""One importer per cluster at a time: a PostgreSQL session-level advisory lock.

Two importers of one cluster (an operator mistake, a second replica) would read the same records
and commit positions past entries the other still holds (Redis consumer groups share the
consumer name), losing data. Each importer therefore takes `pg_try_advisory_lock(LOCK_CLASS,
cluster id)` before it reads anything, and a second one waits (it asks again before every batch,
saying once that it waits). The lock belongs to the database session: it goes when the holder's
connection goes, so a holder killed with kill -9 (or cut off from the database) hands over within
moments, and no lease times out early under a slow batch.

A holder that lost its connection (database restart) has lost the lock with it: `held()` notices
the new connection and takes the lock again before the next batch, or waits if another importer
took over meanwhile. `acquired_again` tells the importer to re-read its positions and rewind its
source then, since the other one may have moved both.

The lock is per cluster, i.e. for every (cluster, partition) the cluster has: one importer reads
all of a cluster's partitions (a Redis stream holds records of every partition). Spreading a
cluster's partitions over importers would take the two-key form per partition instead.

SQLite (the demo) has no advisory locks; it runs one importer, so the lock is always granted.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connection

logger = logging.getLogger(__name__)

# First key of the advisory lock (the second is the cluster id): "FFIM" in ASCII, so Fleetflow's
# import locks do not collide with other users of advisory locks in the same database.
LOCK_CLASS = 0x4646494D


class ClusterImportLock:
    def __init__(self, cluster_id: int) -> None:
        self.cluster_id = cluster_id
        self._locked_on: Any = None  # the psycopg connection the lock was taken on
        self._said_waiting = False
        self._held_before = False
        self.acquired_again = False

    def held(self) -> bool:
        """True when this process holds the cluster's lock (taking it if free); never blocks."""
        if connection.vendor != "postgresql":
            return True
        raw = connection.connection
        if raw is not None and raw is self._locked_on and not raw.closed:
            return True
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_CLASS, self.cluster_id])
            (got,) = cursor.fetchone()
        if not got:
            self._locked_on = None
            if not self._said_waiting:
                logger.warning(
                    "cluster %s: another importer holds its import lock; waiting until it stops "
                    "(two importers of one cluster would lose records)",
                    self.cluster_id,
                )
                self._said_waiting = True
            return False
        self._locked_on = connection.connection
        if self._said_waiting or self._held_before:
            logger.info(
                "cluster %s: import lock taken; importing from the committed positions", self.cluster_id
            )
            self.acquired_again = True
        self._said_waiting = False
        self._held_before = True
        return True

    def release(self) -> None:
        raw = connection.connection
        if connection.vendor != "postgresql" or raw is None or raw is not self._locked_on or raw.closed:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_CLASS, self.cluster_id])
        self._locked_on = None
