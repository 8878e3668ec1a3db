"""Live updates over the Redis channel layer, as the console runs them in production: the page's
consumer waits quietly on its channel, and the importer sends from another process."""

from __future__ import annotations

import ast
import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from channels.layers import get_channel_layer
from django.conf import settings

from processes.consumers import instance_group_name

REPO_ROOT = Path(__file__).resolve().parents[2]

SENDER = textwrap.dedent(
    """
    import django
    django.setup()
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from processes.consumers import instance_group_name
    async_to_sync(get_channel_layer().group_send)(
        instance_group_name(42), {"type": "instance.changed", "global_key": 42}
    )
    """
)


def test_a_quiet_consumer_gets_an_event_sent_by_another_process(redis_url):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels_redis.core.RedisChannelLayer"

    async def walk() -> dict:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(instance_group_name(42), channel)
        receiving = asyncio.ensure_future(layer.receive(channel))
        # Longer than channels_redis' 5 s blocking pop: with redis-py's default 5 s socket timeout the
        # receive failed here with "Timeout reading from ..." and the page's websocket closed.
        await asyncio.sleep(7)
        assert not receiving.done(), f"the quiet receive ended: {receiving.exception()!r}"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings"}
        sender = await asyncio.create_subprocess_exec(sys.executable, "-c", SENDER, cwd=REPO_ROOT, env=env)
        assert await asyncio.wait_for(sender.wait(), 60) == 0
        message = await asyncio.wait_for(receiving, 10)
        await layer.group_discard(instance_group_name(42), channel)
        return message

    assert asyncio.run(walk()) == {"type": "instance.changed", "global_key": 42}


def test_consumer_module_does_not_import_console():
    # The read/write side names its groups itself (issue 12): processes must not need console/.
    code = "import sys, processes.consumers, processes.importer.events; print([m for m in sys.modules if m.startswith('console')])"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "console.settings"}
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    # django.setup() loads the project's settings and Celery app (console/__init__.py); no page code.
    loaded = ast.literal_eval(out.stdout.strip())
    assert set(loaded) <= {"console", "console.settings", "console.env", "console.celery"}, loaded
