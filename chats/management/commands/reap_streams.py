"""`manage.py reap_streams`: settle answers a stopped server left `streaming` (run by `make run`
before it serves)."""

from typing import Any

from asgiref.sync import async_to_sync
from django.core.management.base import BaseCommand

from chats import relay
from chats.reaper import messages_reap, messages_reap_orphans


class Command(BaseCommand):
    help = (
        "Mark answers left `streaming` by a stopped server as interrupted: those with a stale "
        "heartbeat and, with Redis, those whose process's liveness key is gone."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        reaped = messages_reap()
        # Without Redis this command cannot tell a server that runs from one that stopped (it is
        # a process of its own): only the heartbeat decides then.
        if relay.enabled():
            reaped += async_to_sync(messages_reap_orphans)()
        self.stdout.write(f"reaper: {reaped} interrupted answer(s)")
