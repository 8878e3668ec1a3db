"""Fleetflow routing: one Zeebe gateway endpoint in front of many clusters (DESIGN §2-3).

``keys`` (global key codec), ``keymap`` (every key-carrying field), ``clusters`` (configuration
and sources), ``core`` (every routing rule), its two adapters ``proxy`` (the gRPC servicer that
``server``/``python -m routing`` serve) and ``channel`` (an in-process ``grpc.aio.Channel`` for
pyzeebe: :func:`connect`), ``activation`` (jobs across clusters) and ``client`` (the synchronous
``Router`` for Celery tasks). No Django imports; see README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from routing.channel import RoutingChannel


def connect(**config: Any) -> RoutingChannel:
    """An in-process routing channel for pyzeebe (``RoutingChannel.from_config(**config)``).

    Imported lazily: ``routing.keys`` users (the Django apps) do not load gRPC through this.
    """
    from routing.channel import RoutingChannel

    return RoutingChannel.from_config(**config)
