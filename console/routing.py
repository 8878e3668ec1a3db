"""Websocket routes served by Channels consumers."""

from django.urls import path

from processes.consumers import InstanceEventsConsumer

websocket_urlpatterns = [
    path("ws/instances/<int:global_key>/", InstanceEventsConsumer.as_asgi()),
]
