"""Fleetflow routing: one Zeebe gateway endpoint in front of many clusters (DESIGN §2-3).

``keys`` (global key codec), ``keymap`` (every key-carrying field), ``clusters`` (configuration
and sources), ``proxy``/``activation``/``server`` (the gRPC gateway proxy, ``python -m routing``)
and ``client`` (the synchronous ``Router`` for Celery tasks). No Django imports; see README.md.
"""
