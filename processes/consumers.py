"""Channels consumers of the processes app: a page subscribes to live changes of one instance.

The importer (processes.importer.events) sends one ``instance.changed`` event per changed instance
to the instance's group and to its root's group after each committed batch; group names come from
``instance_group_name`` here, so the read/write side names its groups itself and knows nothing of
pages. The console mounts the consumer (console/routing.py); a page showing the instance re-fetches
its parts when an event arrives.
"""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer


def instance_group_name(global_key: int) -> str:
    return f"instance.{global_key}"


class InstanceEventsConsumer(AsyncJsonWebsocketConsumer):
    """Joins the group of the instance in the URL; logged-in users only (viewers included: reads)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group_name = instance_group_name(int(self.scope["url_route"]["kwargs"]["global_key"]))
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group_name"):
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        # Read-only channel: the page never sends anything the server acts on.
        return None

    async def instance_changed(self, event: dict[str, Any]) -> None:
        # Keys as strings: global keys exceed 2**53 and would lose digits as JavaScript numbers.
        await self.send_json({"type": "instance.changed", "globalKey": str(event["global_key"])})
