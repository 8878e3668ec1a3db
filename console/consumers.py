"""Channels consumers: pages subscribe to live changes of the instances they show.

The importer sends one group event per changed instance after each committed batch
(group name from `instance_group_name`); a page showing that instance re-fetches its parts.
"""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer


def instance_group_name(global_key: int) -> str:
    return f"instance.{global_key}"


class InstanceEventsConsumer(AsyncJsonWebsocketConsumer):
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

    async def instance_changed(self, event: dict) -> None:
        await self.send_json({"type": "instance.changed", "globalKey": event["global_key"]})
