"""Reads of the servers app (CONVENTIONS §4).

A server's timeline (the instances that touched it, what is stuck now) is a query over process data
and lives in processes.selectors: servers/ does not import processes (issue 9).
"""

from __future__ import annotations

from django.db.models import QuerySet

from servers.models import Server


def server_list() -> QuerySet[Server]:
    return Server.objects.order_by("serial_number")
